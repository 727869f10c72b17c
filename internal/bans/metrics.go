package bans

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the bans' Prometheus metrics (bans made, failed
// attempts counted), read from their own counters at scrape time.
func (b *Bans) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gateway", Name: name, Help: help},
			func() float64 { return float64(f(b.Stats())) })
	}
	return []prometheus.Collector{
		counter("bans_total", "Automatic bans made.", func(s Stats) uint64 { return s.Bans }),
		counter("failed_attempts_total", "Failed attempts counted towards bans.", func(s Stats) uint64 { return s.Failures }),
	}
}
