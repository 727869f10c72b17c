package hub

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the hub's Prometheus metrics (open streams, events
// published and sent, slow streams dropped, gaps), read from its own
// counters at scrape time so that publishing pays nothing for them.
func (h *Server) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gateway", Name: name, Help: help},
			func() float64 { return float64(f(h.Stats())) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gateway", Name: "streams_open", Help: "Open event streams."},
			func() float64 { return float64(h.Stats().Subscribers) }),
		counter("stream_events_published_total", "Events published to clients.", func(s Stats) uint64 { return s.Published }),
		counter("stream_events_sent_total", "Events handed to open streams.", func(s Stats) uint64 { return s.Delivered }),
		counter("streams_dropped_slow_total", "Streams closed for falling behind.", func(s Stats) uint64 { return s.DroppedSlow }),
		counter("stream_gaps_total", "Streams that resumed with a gap.", func(s Stats) uint64 { return s.Gaps }),
	}
}
