// Package metrics exposes the gateway's Prometheus metrics, all named with
// the prefix "gateway_". Counters kept by the components themselves (bus
// link, stream hub, bridge) are read at scrape time, so the hot paths pay
// nothing for them.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/buildinfo"
	"github.com/ovosgw/gateway/internal/buses"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/intentgate"
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

// Bridge is the bus bridge as metrics read it: its counters, in all and by
// bus position.
type Bridge interface {
	Stats() bridge.Stats
	BusStats(pos int) bridge.BusStats
}

// Bans is the automatic ban keeper as metrics read it.
type Bans interface{ Stats() bans.Stats }

// Gate is the protected-intent gate as metrics read it.
type Gate interface{ Stats() intentgate.Stats }

// Blacklist lists the blacklist's entries (read at scrape time).
type Blacklist interface {
	List(ctx context.Context) ([]api.BlacklistEntry, error)
}

// Sources are the components whose counters are exported; any may be nil.
type Sources struct {
	// Buses are the bus links in configured order; their metrics carry the
	// label bus, the position from "1" (buses.Label).
	Buses     []BusLink
	Hub       Hub
	Bridge    Bridge
	Bans      Bans
	Gate      Gate
	Blacklist Blacklist
}

// Metrics owns the registry and the metrics the gateway updates directly.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	dryRun       prometheus.Histogram
}

// latencyBuckets suit the bus path: sub-millisecond on the embedded bus,
// tens of milliseconds on a real assistant, seconds for slow skills.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New builds the registry with the Go and process collectors and the
// metrics the gateway updates directly; Watch adds the components' own
// counters.
func New() *Metrics {
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
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "utterance_latency_seconds",
			Help:    "Time from an utterance's acceptance to its first speak (event=speak) and to its end (event=done).",
			Buckets: latencyBuckets,
		}, []string{"event"}),
		dryRun: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "intent_dry_run_seconds",
			Help:    "Time the bus took to say which intent would match (intent.service.intent.get).",
			Buckets: latencyBuckets,
		}),
	}
	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; its labels say which build runs: the module version, the VCS revision and the Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.authFailures, m.latency, m.dryRun, build,
	)
	return m
}

// Watch registers the components' counters, read at scrape time.
func (m *Metrics) Watch(src Sources) {
	reg := m.reg
	for i, b := range src.Buses {
		bus := prometheus.Labels{"bus": buses.Label(i)}
		reg.MustRegister(
			busGauge("bus_link_up", "1 while the bus link is up.", bus, func() float64 {
				if b.Connected() {
					return 1
				}
				return 0
			}),
			busCounter("bus_frames_in_total", "Frames read from the bus.", bus, func() uint64 { return b.Stats().FramesIn }),
			busCounter("bus_frames_out_total", "Frames written to the bus.", bus, func() uint64 { return b.Stats().FramesOut }),
			busCounter("bus_reconnects_total", "Bus reconnections after the first connection.", bus, func() uint64 { return b.Stats().Reconnects }),
			busCounter("bus_frames_dropped_total", "Bus frames that did not parse.", bus, func() uint64 { return b.Stats().Dropped }),
		)
		if br := src.Bridge; br != nil {
			pos := i
			reg.MustRegister(busGauge("bus_utterances_in_flight", "Utterances sent on the bus and not ended yet.", bus, func() float64 {
				return float64(br.BusStats(pos).Pending)
			}))
			for _, s := range []struct {
				status string
				get    func(bridge.BusStats) uint64
			}{
				{"handled", func(s bridge.BusStats) uint64 { return s.Handled }},
				{"intent_failure", func(s bridge.BusStats) uint64 { return s.IntentFailure }},
				{"timeout", func(s bridge.BusStats) uint64 { return s.Timeout }},
				{"error", func(s bridge.BusStats) uint64 { return s.Error }},
			} {
				get := s.get
				reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
					Namespace: Namespace, Name: "bus_utterances_total",
					Help:        "Utterances sent on the bus, by final status.",
					ConstLabels: prometheus.Labels{"bus": buses.Label(i), "status": s.status},
				}, func() float64 { return float64(get(br.BusStats(pos))) }))
			}
		}
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
			gauge("utterances_pending", "Utterances (and dry runs) waiting for their end.", func() float64 { return float64(br.Stats().Pending) }),
		)
	}
	if bn := src.Bans; bn != nil {
		reg.MustRegister(
			counter("bans_total", "Automatic bans made.", func() uint64 { return bn.Stats().Bans }),
			counter("failed_attempts_total", "Failed attempts counted towards bans.", func() uint64 { return bn.Stats().Failures }),
		)
	}
	if g := src.Gate; g != nil {
		for _, s := range []struct {
			outcome string
			get     func(intentgate.Stats) uint64
		}{
			{"password_required", func(s intentgate.Stats) uint64 { return s.PasswordRequired }},
			{"password_invalid", func(s intentgate.Stats) uint64 { return s.PasswordInvalid }},
			{"password_refused", func(s intentgate.Stats) uint64 { return s.PasswordRefused }},
			{"unlocked", func(s intentgate.Stats) uint64 { return s.Unlocked }},
			{"dry_run_failed", func(s intentgate.Stats) uint64 { return s.DryRunFailures }},
		} {
			get := s.get
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Name: "protected_intent_checks_total",
				Help:        "Protected-intent checks by outcome.",
				ConstLabels: prometheus.Labels{"outcome": s.outcome},
			}, func() float64 { return float64(get(g.Stats())) }))
		}
	}
	if bl := src.Blacklist; bl != nil {
		reg.MustRegister(&blacklistCollector{bl: bl, desc: prometheus.NewDesc(Namespace+"_blacklist_entries", "Blacklist entries in force by source (config, admin, auto).", []string{"source"}, nil)})
	}
}

// blacklistCollector counts the blacklist's entries by source at scrape time.
type blacklistCollector struct {
	bl   Blacklist
	desc *prometheus.Desc
}

func (c *blacklistCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *blacklistCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := c.bl.List(ctx)
	if err != nil {
		return
	}
	counts := map[string]int{api.BlacklistConfig: 0, api.BlacklistAdmin: 0, api.BlacklistAuto: 0}
	for _, e := range list {
		// Only the known sources are labels: a source read from the store
		// is not taken on trust as a new series.
		if _, ok := counts[e.Source]; ok {
			counts[e.Source]++
		}
	}
	for src, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), src)
	}
}

// ObserveUtterance records an utterance latency (bridge.Config.Observe).
func (m *Metrics) ObserveUtterance(ev string, d time.Duration) {
	m.latency.WithLabelValues(ev).Observe(d.Seconds())
}

// DryRun is the bus's answer to "which intent would match".
type DryRun interface {
	Intent(ctx context.Context, u bridge.Utterance) (*bridge.Intent, error)
}

// TimeDryRun wraps a dry run so that its latency is recorded.
func (m *Metrics) TimeDryRun(d DryRun) DryRun { return timedDryRun{d, m.dryRun} }

type timedDryRun struct {
	DryRun
	h prometheus.Histogram
}

func (t timedDryRun) Intent(ctx context.Context, u bridge.Utterance) (*bridge.Intent, error) {
	start := time.Now()
	in, err := t.DryRun.Intent(ctx, u)
	t.h.Observe(time.Since(start).Seconds())
	return in, err
}

func busGauge(name, help string, bus prometheus.Labels, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: bus}, f)
}

func busCounter(name, help string, bus prometheus.Labels, f func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: bus}, func() float64 { return float64(f()) })
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
// Every label value comes from a fixed set, whatever the client sends: the
// route is the router's pattern (or "unmatched"), the method one of RFC
// 9110's or "other", the status a valid code or "other". A label taken from
// the request itself (a made-up method, a path) would let anyone grow
// /metrics and the process without bound, one series per new value.
func (m *Metrics) ObserveRequest(r *http.Request, route string, status int, d time.Duration) {
	method := MethodLabel(r.Method)
	m.requests.WithLabelValues(route, method, statusLabel(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// MethodLabel is the metrics label of an HTTP method: the method itself if
// it is one of RFC 9110's (section 9) or PATCH (RFC 5789), else "other".
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// statusLabel is the metrics label of a status: its code when it is a valid
// one (100-599), else "other".
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// AuthFailed counts a refused credential by reason.
func (m *Metrics) AuthFailed(reason string) {
	m.authFailures.WithLabelValues(reason).Inc()
}
