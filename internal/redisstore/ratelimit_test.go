package redisstore

import (
	"testing"

	"github.com/ovosgw/gateway/internal/ratelimit/ratelimittest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// Redis passes the rate limiters' conformance suite, two stores on one
// redis-server standing for two replicas.
func TestRateLimiterConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := 0
	ratelimittest.Run(t, func(t *testing.T, rate float64, burst int) (ratelimittest.Limiter, ratelimittest.Limiter) {
		n++
		name := "t" + string(rune('0'+n))
		a, err := open(t, srv).RateLimiter(name, rate, burst)
		if err != nil {
			t.Fatal(err)
		}
		b, err := open(t, srv).RateLimiter(name, rate, burst)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

// Redis out of reach: the limit lets requests go (what they do needs Redis
// and answers 503 there).
func TestRateLimiterFailsOpen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	l, err := open(t, srv).RateLimiter("x", 1.0/3600, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("first check refused")
	}
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("second check allowed with redis up")
	}
	srv.Stop()
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("with redis stopped the check refused")
	}
}

// Two limits checked in one step: refused when either is, each counted.
func TestRateLimiterAllowPair(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv)
	perClient, err := s.RateLimiter("c", 1.0/3600, 3)
	if err != nil {
		t.Fatal(err)
	}
	perAddr, err := s.RateLimiter("a", 1.0/3600, 4)
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for range 5 {
		if ok, _ := perClient.AllowPair("client:x", perAddr, "addr:y"); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("5 pairs under a client burst of 3: %d allowed", allowed)
	}
	// The address took a token from each of the 5: none left for another
	// client from it.
	ok, retry := perClient.AllowPair("client:z", perAddr, "addr:y")
	if ok || retry <= 0 {
		t.Fatalf("another client from a spent address: %v %s", ok, retry)
	}
	if ok, _ := perClient.AllowPair("client:z", perAddr, "addr:w"); !ok {
		t.Fatal("another client from another address refused")
	}
}
