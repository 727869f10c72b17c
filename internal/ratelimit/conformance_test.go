package ratelimit_test

import (
	"testing"

	"github.com/ovosgw/gateway/internal/ratelimit"
	"github.com/ovosgw/gateway/internal/ratelimit/ratelimittest"
)

func TestLimiterConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, rate float64, burst int) (ratelimittest.Limiter, ratelimittest.Limiter) {
		l, err := ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst})
		if err != nil {
			t.Fatal(err)
		}
		return l, l
	})
}

func TestCapsConformance(t *testing.T) {
	ratelimittest.RunCaps(t, func(t *testing.T, max int) (ratelimittest.Caps, ratelimittest.Caps) {
		c := ratelimit.NewCaps(max)
		return c, c
	})
}
