package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ovosgw/gateway/middleware"
)

type countLimiter struct {
	left map[string]int
}

func (c *countLimiter) Allow(key string) (bool, time.Duration) {
	if c.left[key] <= 0 {
		return false, 3 * time.Second
	}
	c.left[key]--
	return true, 0
}

func TestRateLimit(t *testing.T) {
	l := &countLimiter{left: map[string]int{"addr:192.0.2.1": 1}}
	h := middleware.ClientIP(nil)(middleware.RateLimit(l, middleware.ByAddr)(ok))
	for i, want := range []int{200, 429} {
		w := serve(t, h, httptest.NewRequest("POST", "/", nil))
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d", i, w.Code, want)
		}
		if want == 429 {
			if w.Header().Get("Retry-After") != "3" {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
			if p := problemOf(t, w); p.Type != "/problems/rate-limited" {
				t.Fatalf("problem %+v", p)
			}
		}
	}
}

// pairLimiter checks both keys in one call, and counts the calls.
type pairLimiter struct {
	countLimiter
	pairs int
}

func (p *pairLimiter) AllowPair(key string, other middleware.Limiter, key2 string) (bool, time.Duration) {
	p.pairs++
	ok1, r1 := p.Allow(key)
	ok2, r2 := other.Allow(key2)
	return ok1 && ok2, max(r1, r2)
}

// RateLimitPair checks both limits in one step when it can, and refuses
// when either refuses; without a PairLimiter it checks them in turn; an
// empty key is not limited.
func TestRateLimitPair(t *testing.T) {
	byName := func(name string) func(r *http.Request) string {
		return func(r *http.Request) string { return r.Header.Get(name) }
	}
	req := func(client, addr string) *http.Request {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("C", client)
		r.Header.Set("A", addr)
		return r
	}
	a := &pairLimiter{countLimiter: countLimiter{left: map[string]int{"c1": 2, "c2": 5}}}
	b := &countLimiter{left: map[string]int{"a1": 3}}
	h := middleware.RateLimitPair(a, byName("C"), b, byName("A"))(ok)
	for i, c := range []struct {
		client, addr string
		want         int
	}{
		{"c1", "a1", 200}, {"c1", "a1", 200}, {"c1", "a1", 429}, // the client's limit
		{"c2", "a1", 429}, // the address's (the refused one took its token)
		{"c2", "", 200},   // no address: the client's alone
	} {
		if w := serve(t, h, req(c.client, c.addr)); w.Code != c.want {
			t.Fatalf("request %d: %d, want %d", i+1, w.Code, c.want)
		}
	}
	if a.pairs != 4 {
		t.Fatalf("%d checks in one step, want 4", a.pairs)
	}
	// Without a PairLimiter: in turn, as two RateLimit.
	c := &countLimiter{left: map[string]int{"c1": 1}}
	d := &countLimiter{left: map[string]int{"a1": 5}}
	h = middleware.RateLimitPair(c, byName("C"), d, byName("A"))(ok)
	for i, want := range []int{200, 429} {
		if w := serve(t, h, req("c1", "a1")); w.Code != want {
			t.Fatalf("in turn, request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if d.left["a1"] != 4 {
		t.Fatalf("in turn, the address's limit was checked after a refusal: %d left", d.left["a1"])
	}
}
