package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/store"
)

// scrape returns the registry's text exposition.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, "\n"+l+"\n") {
			t.Errorf("/metrics lacks the line %s", l)
		}
	}
}

// recBus is the bus under the real bridge: it takes every frame.
type recBus struct{}

func (recBus) Send(context.Context, api.Message) error { return nil }
func (recBus) Request(ctx context.Context, _ api.Message, _ func(*api.Frame) bool) (*api.Frame, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (recBus) Connected() bool { return true }

// TestRegisterReadsComponents: the exported counters are the components' own,
// read at scrape time, from real ones: a stream hub, the bus bridge, a bus
// link that never connected, the ban keeper and the blacklist over a SQLite
// store.
func TestRegisterReadsComponents(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bl, err := blacklist.New(ctx, blacklist.Config{Static: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}, st)
	if err != nil {
		t.Fatal(err)
	}
	bn, err := bans.New(bans.Config{After: 2}, bl)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	br, err := bridge.New(bridge.Config{}, recBus{}, h)
	if err != nil {
		t.Fatal(err)
	}
	link, err := busclient.New(busclient.Config{URL: "ws://127.0.0.1:1/core"})
	if err != nil {
		t.Fatal(err)
	}

	m := New()
	m.RegisterBus("1", append(link.Collectors(), br.BusCollectors(0)...)...)
	m.Register(slices.Concat(h.Collectors(), br.Collectors(), bn.Collectors())...)
	m.Register(BlacklistEntries(bl))
	before := scrape(t, m)
	wantLines(t, before,
		`gateway_streams_open 0`,
		`gateway_stream_events_published_total 0`,
		`gateway_utterances_sent_total 0`,
		`gateway_bans_total 0`,
		`gateway_bus_link_up{bus="1"} 0`,
		`gateway_blacklist_entries{source="config"} 1`,
	)

	sub := h.Subscribe("kitchen", "s1", "")
	defer sub.Close()
	for range 3 {
		h.Publish("kitchen", api.Event{Name: api.EventMessage, Data: []byte(`{}`)})
	}
	if _, err := br.Send(ctx, bridge.Utterance{ClientID: "kitchen", SessionID: "s1", Text: "hello", Lang: "en-us"}, false); err != nil {
		t.Fatal(err)
	}
	attacker := netip.MustParseAddr("198.51.100.9")
	bn.Failed(ctx, attacker, "wrong key")
	if !bn.Failed(ctx, attacker, "wrong key") {
		t.Fatal("the second failure did not ban (After: 2)")
	}

	wantLines(t, scrape(t, m),
		`gateway_streams_open 1`,
		`gateway_stream_events_published_total 3`,
		`gateway_stream_events_sent_total 3`,
		`gateway_utterances_sent_total 1`,
		`gateway_utterances_pending 1`,
		`gateway_bus_utterances_in_flight{bus="1"} 1`,
		`gateway_failed_attempts_total 2`,
		`gateway_bans_total 1`,
		`gateway_blacklist_entries{source="auto"} 1`,
		`gateway_blacklist_entries{source="config"} 1`,
	)
}

type dryRun struct {
	in  *bridge.Intent
	err error
}

func (d dryRun) Intent(context.Context, bridge.Utterance) (*bridge.Intent, error) { return d.in, d.err }

// TestDirectMetrics: what the gateway records itself (auth failures,
// utterance latencies, dry runs) appears with its labels, and the timed dry
// run answers as the one it wraps.
func TestDirectMetrics(t *testing.T) {
	m := New()
	m.AuthFailed("expired")
	m.AuthFailed("expired")
	m.AuthFailed("invalid")
	m.ObserveUtterance("speak", 3*time.Millisecond)
	m.ObserveUtterance("done", 2*time.Second)

	want := &bridge.Intent{Name: "joke", Type: "joke.skill:Joke"}
	in, err := TimeDryRun(m, dryRun{in: want}).Intent(context.Background(), bridge.Utterance{Text: "a joke"})
	if in != want || err != nil {
		t.Fatalf("timed dry run = %v, %v; want the wrapped one's answer", in, err)
	}
	boom := errors.New("bus down")
	if _, err := TimeDryRun(m, dryRun{err: boom}).Intent(context.Background(), bridge.Utterance{}); !errors.Is(err, boom) {
		t.Fatalf("timed dry run error = %v, want the wrapped one's", err)
	}

	out := scrape(t, m)
	wantLines(t, out,
		`gateway_auth_failures_total{reason="expired"} 2`,
		`gateway_auth_failures_total{reason="invalid"} 1`,
		`gateway_utterance_latency_seconds_count{event="speak"} 1`,
		`gateway_utterance_latency_seconds_count{event="done"} 1`,
		`gateway_utterance_latency_seconds_bucket{event="speak",le="0.005"} 1`,
		`gateway_utterance_latency_seconds_bucket{event="done",le="1"} 0`,
		`gateway_intent_dry_run_seconds_count 2`,
	)
	_, build, _ := strings.Cut(out, "\ngateway_build_info{")
	if build, _, _ = strings.Cut(build, "\n"); !strings.HasSuffix(build, "} 1") {
		t.Errorf("gateway_build_info line %q, want value 1", build)
	}
}
