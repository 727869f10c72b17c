package intentgate

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the gate's Prometheus metrics (protected-intent checks
// by outcome), read from its own counters at scrape time.
func (g *Gate) Collectors() []prometheus.Collector {
	byOutcome := func(outcome string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "gateway", Name: "protected_intent_checks_total",
			Help:        "Protected-intent checks by outcome.",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(f(g.Stats())) })
	}
	return []prometheus.Collector{
		byOutcome("password_required", func(s Stats) uint64 { return s.PasswordRequired }),
		byOutcome("password_invalid", func(s Stats) uint64 { return s.PasswordInvalid }),
		byOutcome("password_refused", func(s Stats) uint64 { return s.PasswordRefused }),
		byOutcome("unlocked", func(s Stats) uint64 { return s.Unlocked }),
		byOutcome("dry_run_failed", func(s Stats) uint64 { return s.DryRunFailures }),
	}
}
