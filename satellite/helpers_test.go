package satellite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/embedded/skills"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// waitFor bounds every wait of these tests: a failure shows as a timeout,
// never as a slow pass.
const waitFor = 20 * time.Second

// localBus is a device's messagebus: the embedded bus served over TCP on
// 127.0.0.1, restartable on the same address.
type localBus struct {
	t    *testing.T
	addr string
	URL  string
	mu   sync.Mutex
	bus  *messagebus.Bus
	srv  *http.Server
}

func startLocalBus(t *testing.T) *localBus {
	t.Helper()
	l := &localBus{t: t, addr: "127.0.0.1:0"}
	l.start()
	t.Cleanup(l.stop)
	return l
}

func (l *localBus) start() {
	l.t.Helper()
	var ln net.Listener
	// The port may take a moment to be free again.
	gatewaytest.EventuallyWithin(l.t, waitFor, "listening on "+l.addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", l.addr)
		return err == nil
	})
	b, err := messagebus.New(messagebus.Config{})
	if err != nil {
		l.t.Fatal(err)
	}
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	l.mu.Lock()
	l.addr, l.URL, l.bus, l.srv = ln.Addr().String(), "ws://"+ln.Addr().String()+messagebus.Route, b, srv
	l.mu.Unlock()
}

// stop closes the bus (its peers see the link drop) and its listener.
func (l *localBus) stop() {
	l.mu.Lock()
	b, srv := l.bus, l.srv
	l.bus, l.srv = nil, nil
	l.mu.Unlock()
	if b == nil {
		return
	}
	_ = b.Close()
	_ = srv.Close()
}

// restart stops the bus and serves a new one on the same address.
func (l *localBus) restart() {
	l.stop()
	l.start()
}

// peer is a bus client run until the test ends, with quick reconnects.
func peer(t *testing.T, url, name string) *busclient.Client {
	t.Helper()
	c, err := busclient.New(busclient.Config{URL: url, Name: name, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: testLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, name, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// runUntilCleanup runs fn until the test ends and checks it returned nil.
func runUntilCleanup(t *testing.T, name string, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(waitFor):
			t.Errorf("%s did not stop", name)
		}
	})
}

// localAssistant runs the built-in skills on the local bus with only the
// greeting: "hello" is handled locally, "tell me a joke" fails.
func localAssistant(t *testing.T, url string) {
	t.Helper()
	c := peer(t, url, "local-skills")
	s, err := skills.New(skills.Config{Enabled: []string{skills.SkillGreeting}, Logger: testLogger(t, nil)}, c)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "local skills", s.Run)
}

// device plays the device's own listener: it says utterances on the local
// bus and sees every frame there.
type device struct {
	c      *busclient.Client
	frames chan *api.Frame
}

func newDevice(t *testing.T, url string) *device {
	t.Helper()
	d := &device{frames: make(chan *api.Frame, 4096)}
	d.c = peer(t, url, "device")
	cancel := d.c.Subscribe(func(f *api.Frame) {
		select {
		case d.frames <- f:
		default:
		}
	})
	t.Cleanup(cancel)
	return d
}

// say emits a recognizer_loop:utterance as the device's microphone does,
// retrying while the local bus comes back.
func (d *device) say(t *testing.T, text, sessionID string, extra map[string]any) {
	t.Helper()
	ctx := map[string]any{"source": "audio", "destination": []string{"skills"}, "session": map[string]any{"session_id": sessionID}}
	for k, v := range extra {
		ctx[k] = v
	}
	data, _ := json.Marshal(map[string]any{"utterances": []string{text}, "lang": "en-us"})
	cb, _ := json.Marshal(ctx)
	gatewaytest.EventuallyWithin(t, waitFor, fmt.Sprintf("the bus to take %q", text), func() bool {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := d.c.Send(sctx, api.Message{Type: api.TypeUtterance, Data: data, Context: cb})
		if err != nil && !errors.Is(err, busclient.ErrNotConnected) {
			t.Fatal(err)
		}
		return err == nil
	})
}

// next returns the next frame for which match is true.
func (d *device) next(t *testing.T, what string, match func(*api.Frame) bool) *api.Frame {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case f := <-d.frames:
			if match(f) {
				return f
			}
		case <-timeout:
			t.Fatalf("no %s on the local bus within %v", what, waitFor)
		}
	}
}

// speakFor matches a speak addressed to the device's speaker by the bridge.
func speakFor(sessionID string) func(*api.Frame) bool {
	return func(f *api.Frame) bool {
		return f.Type == api.TypeSpeak && f.Route.Destination.Has("audio") && f.Route.Source.Has("satellite") && f.Route.SessionID == sessionID
	}
}

// speakText is a speak frame's utterance.
func speakText(t *testing.T, f *api.Frame) string {
	t.Helper()
	var d struct {
		Utterance string `json:"utterance"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Utterance
}

// logRecorder is a slog.Handler that keeps every record, to check the
// bridge's decisions, and copies them to the test log when verbose.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[]logRec
	next slog.Handler
	with []slog.Attr
}

type logRec struct {
	msg   string
	attrs map[string]string
}

func newLogRecorder(t *testing.T) *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, recs: &[]logRec{}, next: verboseHandler(t)}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	rec := logRec{msg: r.Message, attrs: map[string]string{}}
	for _, a := range l.with {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, rec)
	l.mu.Unlock()
	if l.next != nil {
		return l.next.Handle(ctx, r)
	}
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.with = append(append([]slog.Attr{}, l.with...), as...)
	if l.next != nil {
		c.next = l.next.WithAttrs(as)
	}
	return &c
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// count is how many records have msg and, if utterance is not "", that
// utterance.
func (l *logRecorder) count(msg, utterance string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range *l.recs {
		if r.msg == msg && (utterance == "" || r.attrs["utterance"] == utterance) {
			n++
		}
	}
	return n
}

// wait waits until count(msg, utterance) reaches n.
func (l *logRecorder) wait(t *testing.T, n int, msg, utterance string) {
	t.Helper()
	gatewaytest.EventuallyWithin(t, waitFor, fmt.Sprintf("%d logs %q for %q", n, msg, utterance), func() bool {
		return l.count(msg, utterance) >= n
	})
}

func verboseHandler(t *testing.T) slog.Handler {
	if !testing.Verbose() {
		return nil
	}
	return slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
}

func testLogger(t *testing.T, h slog.Handler) *slog.Logger {
	if h != nil {
		return slog.New(h)
	}
	if v := verboseHandler(t); v != nil {
		return slog.New(v)
	}
	return nil
}

// gatewayClient registers id on g and returns its API client.
func gatewayClient(t *testing.T, g *gatewaytest.Gateway, id string) (*apiclient.Client, api.Secret) {
	t.Helper()
	key := api.Secret(g.CreateClient(t, id))
	c, err := apiclient.New(apiclient.Config{
		BaseURL: g.URL, ClientID: id, AccessKey: key,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Logger: testLogger(t, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// sentTotal reads gateway_utterances_sent_total: the utterances the gateway
// put on its bus.
func sentTotal(t *testing.T, g *gatewaytest.Gateway) int {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "gateway_utterances_sent_total "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("no gateway_utterances_sent_total in /metrics:\n%s", b)
	return 0
}

// metricSum sums the samples of a metric (all its labels) in /metrics.
func metricSum(t *testing.T, g *gatewaytest.Gateway, name string) int {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return int(sum)
}
