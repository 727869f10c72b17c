package busclient_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/busframe"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  busclient.Config
		ok   bool
	}{
		{"defaults", busclient.Config{URL: "ws://127.0.0.1:8181/core"}, true},
		{"wss", busclient.Config{URL: "wss://bus.example:8181/core"}, true},
		{"userinfo", busclient.Config{URL: "ws://u:p@127.0.0.1:8181/core"}, true},
		{"no URL", busclient.Config{}, false},
		{"http scheme", busclient.Config{URL: "http://127.0.0.1:8181/core"}, false},
		{"no scheme", busclient.Config{URL: "127.0.0.1:8181/core"}, false},
		{"no host", busclient.Config{URL: "ws:///core"}, false},
		{"bad URL", busclient.Config{URL: "ws://[::1/core"}, false},
		{"negative handshake", busclient.Config{URL: "ws://h/core", HandshakeTimeout: -1}, false},
		{"negative backoff", busclient.Config{URL: "ws://h/core", MinBackoff: -1}, false},
		{"max below min", busclient.Config{URL: "ws://h/core", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, false},
		{"max below default min", busclient.Config{URL: "ws://h/core", MaxBackoff: time.Millisecond}, false},
		{"negative size", busclient.Config{URL: "ws://h/core", MaxMessageSize: -1}, false},
		{"negative queue", busclient.Config{URL: "ws://h/core", SendQueue: -1}, false},
		{"negative ping", busclient.Config{URL: "ws://h/core", PingInterval: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := busclient.New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("error leaks userinfo: %v", err)
			}
			if c != nil && c.Connected() {
				t.Fatal("connected before Run")
			}
		})
	}
}

func TestSendReceive(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			env := tr.start(t, messagebus.Config{})
			a, b := start(t, env.config("a")), start(t, env.config("b"))
			a.connect(t)
			b.connect(t)

			m := msg(api.TypeUtterance, `{"utterances":["hello there"],"lang":"en-US"}`,
				`{"source":"gateway:a","destination":["skills"],"session":{"session_id":"s1"}}`)
			a.send(t, m)
			want, _ := m.MarshalJSON()
			f := b.next(t)
			if !bytes.Equal(f.Raw, want) {
				t.Fatalf("b got %s, want %s", f.Raw, want)
			}
			if !f.Route.Source.Has("gateway:a") || !f.Route.Destination.Has("skills") || f.Route.SessionID != "s1" {
				t.Fatalf("route %+v", f.Route)
			}

			b.send(t, msg(api.TypeSpeak, `{"utterance":"hi"}`, `{"source":["skills"],"destination":"gateway:a"}`))
			// a's own utterance came back from the bus before b's reply:
			// the first frame a sees must be the reply.
			if f := a.next(t); f.Type != api.TypeSpeak || !f.Route.Destination.Has("gateway:a") {
				t.Fatalf("a got %s", f.Raw)
			}
			a.quiet(t)
			if s := a.Stats(); s.FramesOut != 1 || s.FramesIn != 3 || s.Echoes != 1 || s.Dropped != 0 || s.Reconnects != 0 {
				t.Fatalf("a stats %+v", s)
			}
			if st := a.Status(); !st.Connected || st.Since.IsZero() || st.LastError != "" {
				t.Fatalf("a status %+v", st)
			}
		})
	}
}

func TestEchoSuppressionIsByExactBytes(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	a := start(t, env.config("a"))
	a.connect(t)
	raw := env.raw(t)

	m := msg(api.TypeUtterance, `{"utterances":["hi"]}`, `{"source":"gateway:a","destination":["skills"]}`)
	mine, _ := m.MarshalJSON()
	a.send(t, m)
	a.send(t, m) // twice: both echoes are ours
	for range 2 {
		if got := rawRead(t, raw); got != string(mine) {
			t.Fatalf("raw peer got %s", got)
		}
	}
	// Frames that look like ours but are another peer's.
	others := []string{
		`{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"gateway:b","destination":["skills"]}}`,
		`{"type": "recognizer_loop:utterance", "data": {"utterances": ["hi"]}, "context": {"source": "gateway:a", "destination": ["skills"]}}`,
		// Byte-identical, but sent after both echoes were consumed.
		string(mine),
	}
	for _, o := range others {
		rawWrite(t, raw, o)
	}
	for _, o := range others {
		if f := a.next(t); string(f.Raw) != o {
			t.Fatalf("a got %s, want %s", f.Raw, o)
		}
	}
	a.quiet(t)
	if s := a.Stats(); s.Echoes != 2 || s.FramesOut != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// fixtureDir holds the real OVOS wire transcripts (docs/bus.md).
const fixtureDir = "../testdata/ovos-wire"

// fixture reads one transcript of testdata/ovos-wire.
func fixture(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer f.Close()
	var frames []json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Frame json.RawMessage `json:"frame"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		frames = append(frames, line.Frame)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return frames
}

func TestRealOVOSFramesFromAnotherPeer(t *testing.T) {
	frames := fixture(t, "intent-handled.jsonl")
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			env := tr.start(t, messagebus.Config{})
			a := start(t, env.config("a"))
			a.connect(t)
			raw := env.raw(t)
			for _, fr := range frames {
				rawWrite(t, raw, string(fr))
			}
			var stringSource, listSource int
			for i, fr := range frames {
				f := a.next(t)
				if !bytes.Equal(f.Raw, fr) {
					t.Fatalf("frame %d: got %s", i, f.Raw)
				}
				switch {
				case f.Type == api.TypeConnected:
					if f.Route.SessionID != api.DefaultSessionID {
						t.Fatalf("connected: session %q", f.Route.SessionID)
					}
				case f.Route.Source.Has("go-gateway"): // the utterance: source a string, destination a list
					stringSource++
					if !f.Route.Destination.Has(api.DestinationSkills) || bytes.Contains(fr, []byte(`"source":[`)) {
						t.Fatalf("frame %d route %+v", i, f.Route)
					}
				default: // replies: source a list, destination a string
					listSource++
					if !f.Route.Source.Has(api.DestinationSkills) || !f.Route.Destination.Has("go-gateway") ||
						!bytes.Contains(fr, []byte(`"source":["skills"]`)) {
						t.Fatalf("frame %d %q route %+v", i, f.Type, f.Route)
					}
				}
				if f.Type != api.TypeConnected && f.Route.SessionID != "gw-sess-1" {
					t.Fatalf("frame %d %q: session %q", i, f.Type, f.Route.SessionID)
				}
			}
			if stringSource == 0 || listSource == 0 {
				t.Fatalf("fixture lacks a form: %d string-source, %d list-source", stringSource, listSource)
			}
			if got := frames[len(frames)-1]; !bytes.Contains(got, []byte(api.TypeUtteranceHandled)) {
				t.Fatalf("last fixture frame is not %s", api.TypeUtteranceHandled)
			}
		})
	}
}

func TestMalformedFramesAreDropped(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	a := start(t, env.config("a"))
	a.connect(t)
	raw := env.raw(t)
	for i, tc := range []struct {
		name  string
		typ   int
		frame string
	}{
		{"not JSON", websocket.TextMessage, "hello bus"},
		{"JSON array", websocket.TextMessage, `[{"type":"speak"}]`},
		{"type missing", websocket.TextMessage, `{"data":{},"context":{}}`},
		{"type empty", websocket.TextMessage, `{"type":"","data":{}}`},
		{"type a number", websocket.TextMessage, `{"type":42}`},
		{"data a string", websocket.TextMessage, `{"type":"speak","data":"hello"}`},
		{"context a list", websocket.TextMessage, `{"type":"speak","context":[]}`},
		{"truncated", websocket.TextMessage, `{"type":"speak","data":{"utt`},
		{"empty", websocket.TextMessage, ""},
		{"JSON null", websocket.TextMessage, "null"},
		{"binary junk", websocket.BinaryMessage, "\x00\xff\xfe"},
		{"long junk", websocket.TextMessage, strings.Repeat("\xff<junk>", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := raw.WriteMessage(tc.typ, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			good := `{"type":"good","data":{"after":"` + tc.name + `"},"context":{}}`
			rawWrite(t, raw, good)
			if f := a.next(t); string(f.Raw) != good {
				t.Fatalf("got %s, want the good frame", f.Raw)
			}
			if s := a.Stats(); s.Dropped != uint64(i+1) {
				t.Fatalf("Dropped = %d, want %d", s.Dropped, i+1)
			}
		})
	}
	if !a.Connected() {
		t.Fatal("bad frames dropped the link")
	}
}

func TestOversizeFrameDropsLinkAndReconnects(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	ev := newLinkEvents()
	cfg := env.config("a")
	cfg.MaxMessageSize = 512
	cfg.OnLink = ev.hook
	a := start(t, cfg)
	ev.want(t, true)
	a.connect(t)
	raw := env.raw(t)
	rawWrite(t, raw, `{"type":"big","data":{"x":"`+strings.Repeat("a", 1024)+`"}}`)
	if e := ev.want(t, false); e.err == nil {
		t.Fatal("link down without a cause")
	}
	ev.want(t, true)
	a.connect(t)
	rawWrite(t, raw, `{"type":"small"}`)
	if f := a.next(t); f.Type != "small" {
		t.Fatalf("got %s", f.Raw)
	}
	if s := a.Stats(); s.Reconnects != 1 {
		t.Fatalf("Reconnects = %d", s.Reconnects)
	}
}

// responder answers mycroft.skills.is_ready like ovos-core would (swapping
// source and destination), after a decoy reply meant for someone else.
func responder(t *testing.T, raw *websocket.Conn) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := raw.ReadMessage()
			if err != nil {
				return
			}
			f, err := busframe.Parse(b)
			if err != nil || f.Type != api.TypeSkillsIsReady {
				continue
			}
			resp := api.TypeSkillsIsReady + ".response"
			for _, s := range []string{
				`{"type":"` + resp + `","data":{"status":false},"context":{"source":["skills"],"destination":"gateway:other"}}`,
				`{"type":"` + resp + `","data":{"status":true},"context":{"source":["skills"],"destination":"` + f.Route.Source[0] + `"}}`,
			} {
				if err := raw.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
					return
				}
			}
		}
	}()
	return done
}

func TestRequest(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	a := start(t, env.config("a"))
	a.connect(t)
	raw := env.raw(t)
	done := responder(t, raw)
	t.Cleanup(func() { _ = raw.Close(); <-done })

	isReady := msg(api.TypeSkillsIsReady, `{}`, `{"source":"gateway:a","destination":["skills"]}`)
	forA := func(f *api.Frame) bool {
		return f.Type == api.TypeSkillsIsReady+".response" && f.Route.Destination.Has("gateway:a")
	}
	for _, tc := range []struct {
		name    string
		m       api.Message
		match   func(*api.Frame) bool
		timeout time.Duration
		wantErr error
	}{
		{"answered", isReady, forA, waitFor, nil},
		{"nobody answers", msg(api.TypeIntentGet, `{"utterance":"x"}`, `{"source":"gateway:a"}`), forA, 50 * time.Millisecond, context.DeadlineExceeded},
		{"own echo never matches", isReady, func(f *api.Frame) bool { return f.Type == api.TypeSkillsIsReady }, 50 * time.Millisecond, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			f, err := a.Request(ctx, tc.m, tc.match)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Contains(f.Data, []byte(`"status":true`)) {
				t.Fatalf("reply %s", f.Raw)
			}
		})
	}
	if _, err := a.Request(context.Background(), isReady, nil); err == nil {
		t.Fatal("Request without match succeeded")
	}
}

func TestSendErrors(t *testing.T) {
	never, err := busclient.New(busclient.Config{URL: "ws://127.0.0.1:1/core"})
	if err != nil {
		t.Fatal(err)
	}
	down := start(t, busclient.Config{
		URL:            "ws://127.0.0.1:1/core",
		NetDialContext: func(context.Context, string, string) (net.Conn, error) { return nil, errNoDial },
		MinBackoff:     time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	gatewaytest.Eventually(t, "a failed dial", func() bool { return down.Status().LastError != "" })
	if st := down.Status(); st.Connected || !strings.Contains(st.LastError, errNoDial.Error()) {
		t.Fatalf("status %+v", st)
	}
	env := startMemoryBus(t, messagebus.Config{})
	up := start(t, env.config("up"))
	up.connect(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	good := msg("x", "", "")
	for _, tc := range []struct {
		name     string
		c        *busclient.Client
		ctx      context.Context
		m        api.Message
		wantErr  error
		anyError bool
	}{
		{"never run", never, context.Background(), good, busclient.ErrNotConnected, false},
		{"bus unreachable", down.Client, context.Background(), good, busclient.ErrNotConnected, false},
		{"context cancelled", up.Client, cancelled, good, context.Canceled, false},
		{"no type", up.Client, context.Background(), msg("", "", ""), nil, true},
		{"data not an object", up.Client, context.Background(), msg("x", "[1]", ""), nil, true},
		{"context not JSON", up.Client, context.Background(), msg("x", "", "{oops"), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Send(tc.ctx, tc.m)
			switch {
			case tc.anyError && (err == nil || errors.Is(err, busclient.ErrNotConnected)):
				t.Fatalf("err = %v, want a marshal error", err)
			case !tc.anyError && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if s := up.Stats(); s.FramesOut != 0 {
		t.Fatalf("refused frames were written: %+v", s)
	}
	if _, err := down.Request(context.Background(), good, func(*api.Frame) bool { return true }); !errors.Is(err, busclient.ErrNotConnected) {
		t.Fatalf("Request while down: %v", err)
	}
}

// restartable is a bus that can go away and come back at the same address.
type restartable struct {
	name  string
	setup func(t *testing.T) (cfg busclient.Config, stop func(), restart func() busEnv)
}

func restartables() []restartable {
	return []restartable{
		{"tcp", func(t *testing.T) (busclient.Config, func(), func() busEnv) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			var bus *messagebus.Bus
			var srv *httptest.Server
			serve := func(ln net.Listener) busEnv {
				bus = newBus(t, messagebus.Config{})
				srv = httptest.NewUnstartedServer(bus.Handler())
				_ = srv.Listener.Close()
				srv.Listener = ln
				srv.Start()
				t.Cleanup(srv.Close)
				t.Cleanup(func() { _ = bus.Close() })
				return busEnv{bus: bus, url: "ws://" + addr + "/core"}
			}
			env := serve(ln)
			stop := func() { _ = bus.Close(); srv.Close() }
			restart := func() busEnv {
				var ln net.Listener
				gatewaytest.Eventually(t, "the address again", func() bool {
					ln, err = net.Listen("tcp", addr)
					return err == nil
				})
				return serve(ln)
			}
			return env.config("a"), stop, restart
		}},
		{"memory", func(t *testing.T) (busclient.Config, func(), func() busEnv) {
			var cur atomic.Pointer[messagebus.Bus]
			cur.Store(newBus(t, messagebus.Config{}))
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				return cur.Load().DialContext(ctx, network, addr)
			}
			env := busEnv{url: "ws://embedded/core", dial: dial}
			stop := func() { _ = cur.Load().Close() }
			restart := func() busEnv {
				b := newBus(t, messagebus.Config{})
				cur.Store(b)
				return busEnv{bus: b, url: env.url, dial: b.DialContext}
			}
			return env.config("a"), stop, restart
		}},
	}
}

func TestBusGoesAwayAndComesBack(t *testing.T) {
	for _, rb := range restartables() {
		t.Run(rb.name, func(t *testing.T) {
			cfg, stop, restart := rb.setup(t)
			ev := newLinkEvents()
			cfg.OnLink = ev.hook
			a := start(t, cfg)
			ev.want(t, true)
			a.connect(t)
			a.send(t, msg("before", "", ""))

			stop()
			if e := ev.want(t, false); e.err == nil {
				t.Fatal("OnLink(false) without a cause")
			}
			if a.Connected() {
				t.Fatal("Connected after the bus went away")
			}
			if err := a.Send(context.Background(), msg("lost", "", "")); !errors.Is(err, busclient.ErrNotConnected) {
				t.Fatalf("Send while down: %v", err)
			}
			gatewaytest.Eventually(t, "a failed redial", func() bool { return a.Status().LastError != "" })

			env := restart()
			ev.want(t, true)
			a.connect(t)
			raw := env.raw(t)
			a.send(t, msg("after", `{"n":1}`, ""))
			if got := rawRead(t, raw); got != `{"type":"after","data":{"n":1},"context":{}}` {
				t.Fatalf("raw peer got %s", got)
			}
			rawWrite(t, raw, `{"type":"welcome.back"}`)
			if f := a.next(t); f.Type != "welcome.back" {
				t.Fatalf("got %s", f.Raw)
			}
			if s := a.Stats(); s.Reconnects != 1 || s.FramesOut != 2 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestRunReturnsPromptlyOnCancel(t *testing.T) {
	const forever = time.Hour
	for _, tc := range []struct {
		name string
		// setup returns a config and a wait for the state to cancel in.
		setup func(t *testing.T) (busclient.Config, func(*running))
	}{
		{"mid-backoff", func(t *testing.T) (busclient.Config, func(*running)) {
			return busclient.Config{
					URL:            "ws://bus.invalid/core",
					NetDialContext: func(context.Context, string, string) (net.Conn, error) { return nil, errNoDial },
					MinBackoff:     forever, MaxBackoff: forever,
				}, func(r *running) {
					gatewaytest.Eventually(t, "the first failure", func() bool { return r.Status().LastError != "" })
				}
		}},
		{"mid-dial", func(t *testing.T) (busclient.Config, func(*running)) {
			dialing := make(chan struct{}, 1)
			return busclient.Config{
					URL: "ws://bus.invalid/core",
					NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
						dialing <- struct{}{}
						<-ctx.Done()
						return nil, ctx.Err()
					},
					HandshakeTimeout: forever,
				}, func(*running) {
					<-dialing
				}
		}},
		{"mid-handshake", func(t *testing.T) (busclient.Config, func(*running)) {
			// A server that accepts TCP and never answers the upgrade.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// Handed over once the upgrade request has come in: the
				// client is then waiting for the answer.
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					_ = c.Close()
					return
				}
				accepted <- c
			}()
			t.Cleanup(func() {
				_ = ln.Close()
				select {
				case c := <-accepted:
					_ = c.Close()
				default:
				}
			})
			return busclient.Config{URL: "ws://" + ln.Addr().String() + "/core", HandshakeTimeout: forever},
				func(*running) {
					c := <-accepted // the upgrade request went out
					accepted <- c
				}
		}},
		{"connected", func(t *testing.T) (busclient.Config, func(*running)) {
			env := startMemoryBus(t, messagebus.Config{})
			cfg := env.config("a")
			t.Cleanup(func() {
				gatewaytest.Eventually(t, "the bus to see the client leave", func() bool { return env.bus.Peers() == 0 })
			})
			return cfg, func(r *running) { r.connect(t) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ready := tc.setup(t)
			ev := newLinkEvents()
			cfg.OnLink = ev.hook
			r := start(t, cfg)
			ready(r)
			r.stop(t) // fails if Run does not return
			if r.Connected() {
				t.Fatal("Connected after Run returned")
			}
			if tc.name == "connected" {
				ev.want(t, true)
				if e := ev.want(t, false); e.err != nil {
					t.Fatalf("clean shutdown reported %v", e.err)
				}
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	r := start(t, busclient.Config{
		URL:            "ws://bus.invalid/core",
		NetDialContext: func(context.Context, string, string) (net.Conn, error) { return nil, errNoDial },
	})
	gatewaytest.Eventually(t, "Run to start", func() bool { return r.Status().LastError != "" })
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("second concurrent Run succeeded")
	}
}

func TestCleanCloseSendsCloseFrame(t *testing.T) {
	got := make(chan error, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(messagebus.ConnectedFrame))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				got <- err
				return
			}
		}
	}))
	defer srv.Close()
	r := start(t, busclient.Config{URL: wsURL(srv)})
	r.connect(t)
	r.stop(t)
	select {
	case err := <-got:
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("server saw %v, want close 1000", err)
		}
	case <-time.After(waitFor):
		t.Fatal("server saw nothing")
	}
}

func TestCredentialsNeverShow(t *testing.T) {
	const user, pass = "bususer", "s3cretpw"
	bus := newBus(t, messagebus.Config{})
	var sawAuth atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
			sawAuth.Store(true)
		}
		bus.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = bus.Close() })

	for _, tc := range []struct {
		name    string
		url     string
		connect bool
	}{
		{"reachable", strings.Replace(wsURL(srv), "ws://", "ws://"+user+":"+pass+"@", 1), true},
		{"unreachable", "ws://" + user + ":" + pass + "@127.0.0.1:1/core", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs gatewaytest.Buffer
			r := start(t, busclient.Config{
				URL:        tc.url,
				Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
			})
			if tc.connect {
				r.connect(t)
				if !sawAuth.Load() {
					t.Fatal("userinfo was not sent as Basic auth")
				}
			} else {
				gatewaytest.Eventually(t, "a failed dial", func() bool { return r.Status().LastError != "" })
			}
			r.stop(t)
			for what, s := range map[string]string{"LastError": r.Status().LastError, "logs": logs.String()} {
				if strings.Contains(s, pass) || strings.Contains(s, user) {
					t.Fatalf("%s shows credentials: %s", what, s)
				}
			}
			if !strings.Contains(logs.String(), "messagebus") {
				t.Fatal("nothing logged: the check above proves nothing")
			}
		})
	}
}

func TestWSS(t *testing.T) {
	bus := newBus(t, messagebus.Config{})
	srv := httptest.NewTLSServer(bus.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = bus.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	a := start(t, busclient.Config{
		URL:       "wss" + strings.TrimPrefix(srv.URL, "https") + "/core",
		TLSConfig: &tls.Config{RootCAs: roots},
	})
	a.connect(t)
	b := start(t, busclient.Config{
		URL:       "wss" + strings.TrimPrefix(srv.URL, "https") + "/core",
		TLSConfig: &tls.Config{RootCAs: roots},
	})
	b.connect(t)
	a.send(t, msg("over.tls", "", ""))
	if f := b.next(t); f.Type != "over.tls" {
		t.Fatalf("got %s", f.Raw)
	}
}

func TestSubscribeCancel(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	a := start(t, env.config("a"))
	a.connect(t)
	raw := env.raw(t)
	extra := make(chan string, 8)
	cancel := a.Subscribe(func(f *api.Frame) { extra <- f.Type })
	rawWrite(t, raw, `{"type":"one"}`)
	a.next(t)
	cancel()
	cancel() // idempotent
	rawWrite(t, raw, `{"type":"two"}`)
	if f := a.next(t); f.Type != "two" {
		t.Fatalf("got %s", f.Raw)
	}
	if got := len(extra); got != 1 || <-extra != "one" {
		t.Fatalf("cancelled subscriber got %d frames", got)
	}
}

// TestWatchLink: a callback registered after the client was built (as the
// bus bridge is) is told of the link going down and up again, as
// Config.OnLink is; a cancelled one is not.
func TestWatchLink(t *testing.T) {
	env := startMemoryBus(t, messagebus.Config{})
	ev, watched, cancelled := newLinkEvents(), newLinkEvents(), newLinkEvents()
	cfg := env.config("a")
	cfg.MaxMessageSize = 512
	cfg.OnLink = ev.hook
	a := start(t, cfg)
	ev.want(t, true)
	a.connect(t)
	defer a.WatchLink(watched.hook)()
	a.WatchLink(cancelled.hook)()
	rawWrite(t, env.raw(t), `{"type":"big","data":{"x":"`+strings.Repeat("a", 1024)+`"}}`)
	ev.want(t, false)
	if e := watched.want(t, false); e.err == nil {
		t.Fatal("the watcher was told of a link down without its cause")
	}
	ev.want(t, true)
	watched.want(t, true)
	select {
	case e := <-cancelled.ch:
		t.Fatalf("a cancelled watcher was told (%v, %v)", e.up, e.err)
	default:
	}
}
