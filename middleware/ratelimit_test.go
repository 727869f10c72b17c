package middleware_test

import (
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
