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
