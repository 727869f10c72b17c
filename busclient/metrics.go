package busclient

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the link's Prometheus metrics (gateway_bus_link_up and
// its frame and reconnect counters), read from its own counters at scrape
// time so that the read and write paths pay nothing for them. The gateway
// registers them under the label bus, the link's position.
func (c *Client) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gateway", Name: name, Help: help},
			func() float64 { return float64(f(c.Stats())) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gateway", Name: "bus_link_up", Help: "1 while the bus link is up."}, func() float64 {
			if c.Connected() {
				return 1
			}
			return 0
		}),
		counter("bus_frames_in_total", "Frames read from the bus.", func(s Stats) uint64 { return s.FramesIn }),
		counter("bus_frames_out_total", "Frames written to the bus.", func(s Stats) uint64 { return s.FramesOut }),
		counter("bus_reconnects_total", "Bus reconnections after the first connection.", func(s Stats) uint64 { return s.Reconnects }),
		counter("bus_frames_dropped_total", "Bus frames that did not parse.", func(s Stats) uint64 { return s.Dropped }),
	}
}
