// Package metrics exposes the gateway's Prometheus metrics, all named with
// the prefix "gateway_": the registry, and the metrics the gateway updates
// directly (HTTP requests, refused credentials, latencies). The components
// that keep counters of their own (bus link, stream hub, bridge, bans,
// intent gate) each offer Prometheus collectors that read them at scrape
// time, so the hot paths pay nothing for them; this package only registers
// them and imports none of those packages.
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
	"github.com/ovosgw/gateway/internal/buildinfo"
)

// Namespace prefixes every metric.
const Namespace = "gateway"

// Blacklist lists the blacklist's entries (read at scrape time).
type Blacklist interface {
	List(ctx context.Context) ([]api.BlacklistEntry, error)
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

// Register adds the components' own collectors (their Collectors methods:
// the hub's, the bridge's, the bans', the gate's), read at scrape time. A
// metric registered twice is a wiring mistake, and panics.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
}

// RegisterBus adds the collectors of one bus (its link's, and the bridge's
// for its position) under the label bus, its position from "1"
// (buses.Label).
func (m *Metrics) RegisterBus(label string, cs ...prometheus.Collector) {
	prometheus.WrapRegistererWith(prometheus.Labels{"bus": label}, m.reg).MustRegister(cs...)
}

// BlacklistEntries is the collector of the blacklist's entries in force by
// source, counted at scrape time.
func BlacklistEntries(bl Blacklist) prometheus.Collector {
	return &blacklistCollector{bl: bl, desc: prometheus.NewDesc(Namespace+"_blacklist_entries", "Blacklist entries in force by source (config, admin, auto).", []string{"source"}, nil)}
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

// DryRun is the bus's answer to "which intent would match" (the bridge's
// Intent, for the protected-intent gate), over its utterance U and intent I.
type DryRun[U, I any] interface {
	Intent(ctx context.Context, u U) (I, error)
}

// TimeDryRun wraps a dry run so that its latency is recorded.
func TimeDryRun[U, I any](m *Metrics, d DryRun[U, I]) DryRun[U, I] {
	return timedDryRun[U, I]{d, m.dryRun}
}

type timedDryRun[U, I any] struct {
	DryRun[U, I]
	h prometheus.Histogram
}

func (t timedDryRun[U, I]) Intent(ctx context.Context, u U) (I, error) {
	start := time.Now()
	in, err := t.DryRun.Intent(ctx, u)
	t.h.Observe(time.Since(start).Seconds())
	return in, err
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
