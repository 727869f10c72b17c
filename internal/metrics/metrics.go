// Package metrics exposes the gateway's Prometheus metrics, all named with
// the prefix "gateway_". Counters kept by the components themselves (bus
// link, stream hub, bridge) are read at scrape time, so the hot paths pay
// nothing for them.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/hub"
)

// Namespace prefixes every metric.
const Namespace = "gateway"

// BusLink is the bus link as metrics read it.
type BusLink interface {
	Connected() bool
	Stats() busclient.Stats
}

// Hub is the stream hub as metrics read it.
type Hub interface{ Stats() hub.Stats }

// Bridge is the bus bridge as metrics read it.
type Bridge interface{ Stats() bridge.Stats }

// Sources are the components whose counters are exported; any may be nil.
type Sources struct {
	Bus    BusLink
	Hub    Hub
	Bridge Bridge
}

// Metrics owns the registry and the metrics the gateway updates directly.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

// New builds the registry with the Go and process collectors and the
// gateway's own metrics.
func New(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request durations by route pattern and method (streams: their whole life).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "auth_failures_total",
			Help: "Refused credentials by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.authFailures,
	)
	if b := src.Bus; b != nil {
		reg.MustRegister(
			gauge("bus_link_up", "1 while the bus link is up.", func() float64 {
				if b.Connected() {
					return 1
				}
				return 0
			}),
			counter("bus_frames_in_total", "Frames read from the bus.", func() uint64 { return b.Stats().FramesIn }),
			counter("bus_frames_out_total", "Frames written to the bus.", func() uint64 { return b.Stats().FramesOut }),
			counter("bus_reconnects_total", "Bus reconnections after the first connection.", func() uint64 { return b.Stats().Reconnects }),
			counter("bus_frames_dropped_total", "Bus frames that did not parse.", func() uint64 { return b.Stats().Dropped }),
		)
	}
	if h := src.Hub; h != nil {
		reg.MustRegister(
			gauge("streams_open", "Open event streams.", func() float64 { return float64(h.Stats().Subscribers) }),
			counter("stream_events_published_total", "Events published to clients.", func() uint64 { return h.Stats().Published }),
			counter("stream_events_sent_total", "Events handed to open streams.", func() uint64 { return h.Stats().Delivered }),
			counter("streams_dropped_slow_total", "Streams closed for falling behind.", func() uint64 { return h.Stats().DroppedSlow }),
			counter("stream_gaps_total", "Streams that resumed with a gap.", func() uint64 { return h.Stats().Gaps }),
		)
	}
	if br := src.Bridge; br != nil {
		for _, s := range []struct {
			status string
			get    func(bridge.Stats) uint64
		}{
			{"handled", func(s bridge.Stats) uint64 { return s.Handled }},
			{"intent_failure", func(s bridge.Stats) uint64 { return s.IntentFailure }},
			{"timeout", func(s bridge.Stats) uint64 { return s.Timeout }},
			{"error", func(s bridge.Stats) uint64 { return s.Error }},
		} {
			get := s.get
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Name: "utterances_total",
				Help:        "Utterances by final status.",
				ConstLabels: prometheus.Labels{"status": s.status},
			}, func() float64 { return float64(get(br.Stats())) }))
		}
		reg.MustRegister(
			counter("utterances_sent_total", "Utterances put on the bus.", func() uint64 { return br.Stats().Sent }),
			counter("utterances_refused_total", "Utterances refused by the bridge (bus down, too many pending).", func() uint64 { return br.Stats().Refused }),
			counter("bus_frames_routed_total", "Bus frames delivered to a client.", func() uint64 { return br.Stats().Routed }),
			counter("bus_frames_unrouted_total", "Bus frames for no client of this gateway.", func() uint64 { return br.Stats().Unrouted }),
		)
	}
	return m
}

func gauge(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f)
}

func counter(name, help string, f func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, func() float64 { return float64(f()) })
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records a finished HTTP request (handlers.Config.Observe).
func (m *Metrics) ObserveRequest(r *http.Request, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
}

// AuthFailed counts a refused credential by reason.
func (m *Metrics) AuthFailed(reason string) {
	m.authFailures.WithLabelValues(reason).Inc()
}
