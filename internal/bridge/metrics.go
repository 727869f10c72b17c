package bridge

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the bridge's Prometheus metrics over all buses
// (utterances by final status, sent, refused and pending; bus frames routed
// and unrouted), read from its own counters at scrape time so that the
// utterance path pays nothing for them.
func (b *Bridge) Collectors() []prometheus.Collector {
	counter := func(name, help string, labels prometheus.Labels, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gateway", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(b.Stats())) })
	}
	byStatus := func(status string, f func(Stats) uint64) prometheus.Collector {
		return counter("utterances_total", "Utterances by final status.", prometheus.Labels{"status": status}, f)
	}
	return []prometheus.Collector{
		byStatus("handled", func(s Stats) uint64 { return s.Handled }),
		byStatus("intent_failure", func(s Stats) uint64 { return s.IntentFailure }),
		byStatus("timeout", func(s Stats) uint64 { return s.Timeout }),
		byStatus("error", func(s Stats) uint64 { return s.Error }),
		counter("utterances_sent_total", "Utterances put on the bus.", nil, func(s Stats) uint64 { return s.Sent }),
		counter("utterances_refused_total", "Utterances refused by the bridge (bus down, too many pending).", nil, func(s Stats) uint64 { return s.Refused }),
		counter("bus_frames_routed_total", "Bus frames delivered to a client.", nil, func(s Stats) uint64 { return s.Routed }),
		counter("bus_frames_unrouted_total", "Bus frames for no client of this gateway.", nil, func(s Stats) uint64 { return s.Unrouted }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gateway", Name: "utterances_pending", Help: "Utterances (and dry runs) waiting for their end."},
			func() float64 { return float64(b.Stats().Pending) }),
	}
}

// BusCollectors returns the Prometheus metrics of the bus at position pos
// (utterances in flight on it, and by final status). The gateway registers
// them under the label bus, as it does the link's own.
func (b *Bridge) BusCollectors(pos int) []prometheus.Collector {
	byStatus := func(status string, f func(BusStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "gateway", Name: "bus_utterances_total",
			Help:        "Utterances sent on the bus, by final status.",
			ConstLabels: prometheus.Labels{"status": status},
		}, func() float64 { return float64(f(b.BusStats(pos))) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gateway", Name: "bus_utterances_in_flight", Help: "Utterances sent on the bus and not ended yet."},
			func() float64 { return float64(b.BusStats(pos).Pending) }),
		byStatus("handled", func(s BusStats) uint64 { return s.Handled }),
		byStatus("intent_failure", func(s BusStats) uint64 { return s.IntentFailure }),
		byStatus("timeout", func(s BusStats) uint64 { return s.Timeout }),
		byStatus("error", func(s BusStats) uint64 { return s.Error }),
	}
}
