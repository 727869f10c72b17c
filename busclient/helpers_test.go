package busclient_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
)

// waitFor bounds every wait in these tests; it guards against hangs and is
// never a timing assertion.
const waitFor = 5 * time.Second

// busEnv is a real messagebus reachable one way: over TCP through
// httptest, or in memory through Bus.DialContext.
type busEnv struct {
	bus  *messagebus.Bus
	url  string
	dial func(ctx context.Context, network, addr string) (net.Conn, error) // nil for TCP
}

type transport struct {
	name  string
	start func(t *testing.T, cfg messagebus.Config) busEnv
}

func transports() []transport {
	return []transport{{"tcp", startTCPBus}, {"memory", startMemoryBus}}
}

func newBus(t testing.TB, cfg messagebus.Config) *messagebus.Bus {
	t.Helper()
	b, err := messagebus.New(cfg)
	if err != nil {
		t.Fatalf("messagebus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func startTCPBus(t *testing.T, cfg messagebus.Config) busEnv {
	t.Helper()
	b := newBus(t, cfg)
	srv := httptest.NewServer(b.Handler())
	// Cleanups run last-in first-out: the bus closes its hijacked
	// websockets before the server closes.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = b.Close() })
	return busEnv{bus: b, url: wsURL(srv)}
}

func startMemoryBus(t *testing.T, cfg messagebus.Config) busEnv {
	t.Helper()
	b := newBus(t, cfg)
	return busEnv{bus: b, url: "ws://embedded/core", dial: b.DialContext}
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/core"
}

// config returns a client config for env with small test backoffs.
func (e busEnv) config(name string) busclient.Config {
	return busclient.Config{
		URL:            e.url,
		Name:           name,
		NetDialContext: e.dial,
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
	}
}

// raw dials a plain gorilla peer and reads its connected frame.
func (e busEnv) raw(t *testing.T) *websocket.Conn {
	t.Helper()
	d := &websocket.Dialer{NetDialContext: e.dial}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := d.DialContext(ctx, e.url, nil)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != messagebus.ConnectedFrame {
		t.Fatalf("raw peer first frame %q, %v", b, err)
	}
	return c
}

// running is a client whose Run goroutine the test owns.
type running struct {
	*busclient.Client
	frames chan *api.Frame // every delivered frame
	cancel context.CancelFunc
	done   chan error
}

// start creates a client, subscribes a collector, runs it, and stops it at
// cleanup (asserting that Run returned nil).
func start(t *testing.T, cfg busclient.Config) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := busclient.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &running{Client: c, frames: make(chan *api.Frame, 1024), done: make(chan error, 1)}
	c.Subscribe(func(f *api.Frame) {
		select {
		case r.frames <- f:
		default:
			t.Errorf("collector full, frame %q lost", f.Type)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		r.done <- nil // let a later stop (cleanup) pass
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
	}
}

// connect waits for the link and consumes the connected frame.
func (r *running) connect(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	if f := r.next(t); f.Type != api.TypeConnected {
		t.Fatalf("first frame %q, want connected", f.Type)
	}
}

func (r *running) next(t *testing.T) *api.Frame {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(waitFor):
		t.Fatal("no frame arrived")
		return nil
	}
}

// quiet asserts that no frame is waiting. Call it only after a later frame
// (a marker) has been seen: frames arrive in order, so nothing earlier can
// still come.
func (r *running) quiet(t *testing.T) {
	t.Helper()
	select {
	case f := <-r.frames:
		t.Fatalf("unexpected frame %s", f.Raw)
	default:
	}
}

func (r *running) send(t *testing.T, m api.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.Send(ctx, m); err != nil {
		t.Fatalf("Send %q: %v", m.Type, err)
	}
}

func msg(typ, data, ctx string) api.Message {
	return api.Message{Type: typ, Data: []byte(data), Context: []byte(ctx)}
}

func rawWrite(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

func rawRead(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("raw read: %v", err)
	}
	return string(b)
}

// linkEvents records OnLink calls.
type linkEvents struct {
	ch chan linkEvent
}

type linkEvent struct {
	up  bool
	err error
}

func newLinkEvents() *linkEvents { return &linkEvents{ch: make(chan linkEvent, 64)} }

func (l *linkEvents) hook(up bool, err error) {
	select {
	case l.ch <- linkEvent{up, err}:
	default:
	}
}

func (l *linkEvents) want(t *testing.T, up bool) linkEvent {
	t.Helper()
	select {
	case e := <-l.ch:
		if e.up != up {
			t.Fatalf("OnLink(%v, %v), want up=%v", e.up, e.err, up)
		}
		return e
	case <-time.After(waitFor):
		t.Fatalf("no OnLink(%v)", up)
		return linkEvent{}
	}
}

// testLogger logs through t at debug level, so the log paths run (with -race)
// and show up on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var errNoDial = errors.New("test: dialing refused")
