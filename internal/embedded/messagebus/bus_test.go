package messagebus_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// waitFor bounds how long a test waits for something that must happen; it is
// a guard against hangs, not a timing assertion.
const waitFor = 5 * time.Second

func newBus(t *testing.T, cfg messagebus.Config) *messagebus.Bus {
	t.Helper()
	b, err := messagebus.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// transport dials raw websocket peers to a bus, over TCP or in memory.
type transport struct {
	name string
	dial func(t *testing.T, b *messagebus.Bus) *websocket.Conn
}

func transports() []transport {
	return []transport{
		{"tcp", func(t *testing.T, b *messagebus.Bus) *websocket.Conn {
			t.Helper()
			srv := httptest.NewServer(b.Handler())
			t.Cleanup(srv.Close)
			return dialRaw(t, websocket.DefaultDialer, "ws"+strings.TrimPrefix(srv.URL, "http")+"/core")
		}},
		{"memory", func(t *testing.T, b *messagebus.Bus) *websocket.Conn {
			t.Helper()
			return dialRaw(t, &websocket.Dialer{NetDialContext: b.DialContext}, "ws://embedded/core")
		}},
	}
}

func dialRaw(t *testing.T, d *websocket.Dialer, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  messagebus.Config
		ok   bool
	}{
		{"defaults", messagebus.Config{}, true},
		{"negative size", messagebus.Config{MaxMessageSize: -1}, false},
		{"negative queue", messagebus.Config{PeerQueue: -1}, false},
		{"negative ping", messagebus.Config{PingInterval: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := messagebus.New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New err = %v, want ok=%v", err, tc.ok)
			}
			if b != nil {
				_ = b.Close()
			}
		})
	}
}

func TestConnectedFirst(t *testing.T) {
	const want = `{"type":"connected","data":{},"context":{"session":{"session_id":"default"}}}`
	if messagebus.ConnectedFrame != want {
		t.Fatalf("ConnectedFrame = %s", messagebus.ConnectedFrame)
	}
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			b := newBus(t, messagebus.Config{})
			other := tr.dial(t, b)
			if got := read(t, other); got != want {
				t.Fatalf("first frame = %s", got)
			}
			// A peer joining while frames flow still sees connected first.
			write(t, other, `{"type":"busy","data":{},"context":{}}`)
			c := tr.dial(t, b)
			if got := read(t, c); got != want {
				t.Fatalf("first frame = %s", got)
			}
			if n := b.Peers(); n != 2 {
				t.Fatalf("Peers = %d, want 2", n)
			}
		})
	}
}

func TestRelaysToAllIncludingSender(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			b := newBus(t, messagebus.Config{})
			peers := make([]*websocket.Conn, 3)
			for i := range peers {
				peers[i] = tr.dial(t, b)
				read(t, peers[i]) // connected
			}
			gatewaytest.Eventually(t, "3 peers", func() bool { return b.Peers() == 3 })
			frames := []string{
				`{"type":"speak","data":{"utterance":"hi"},"context":{"source":["skills"],"destination":"x"}}`,
				"  {\"type\":\"spaced\" ,\"data\":{} }\n", // verbatim, not re-encoded
				`not json at all`, // relayed too, like the real bus
				`[1,2,3]`,
			}
			// Each frame from a different sender, read by all before the
			// next: order across senders is not defined, only per sender.
			for i, f := range frames {
				write(t, peers[i%len(peers)], f)
				for j, p := range peers {
					if got := read(t, p); got != f {
						t.Fatalf("peer %d got %q, want %q", j, got, f)
					}
				}
			}
		})
	}
}

func TestSlowPeerIsDisconnectedWithoutStallingOthers(t *testing.T) {
	// In memory, a peer that does not read blocks its writer once the
	// pipe's buffer is full (256 KiB), and then its queue fills: 100 frames
	// of 8 KiB are more than both.
	b := newBus(t, messagebus.Config{PeerQueue: 4})
	pad := strings.Repeat("x", 8<<10)
	d := &websocket.Dialer{NetDialContext: b.DialContext}
	fast := dialRaw(t, d, "ws://embedded/core")
	slow := dialRaw(t, d, "ws://embedded/core")
	read(t, fast)
	gatewaytest.Eventually(t, "2 peers", func() bool { return b.Peers() == 2 })

	// The fast peer sends in lockstep (one frame, then its echo), so its own
	// queue never holds more than one; the slow one never reads.
	for i := range 100 {
		want := fmt.Sprintf(`{"type":"n%d","data":{"pad":%q}}`, i, pad)
		write(t, fast, want)
		if got := read(t, fast); got != want {
			t.Fatalf("fast peer got %s, want %s", got, want)
		}
	}
	gatewaytest.Eventually(t, "slow peer dropped", func() bool { return b.Peers() == 1 })
	// The slow peer finds its connection gone once it reads again.
	_ = slow.SetReadDeadline(time.Now().Add(waitFor))
	var err error
	for err == nil {
		_, _, err = slow.ReadMessage()
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow peer still connected: %v", err)
	}
}

func TestReadLimitDisconnectsOnlyTheSender(t *testing.T) {
	b := newBus(t, messagebus.Config{MaxMessageSize: 1024})
	d := &websocket.Dialer{NetDialContext: b.DialContext}
	big, other := dialRaw(t, d, "ws://embedded/core"), dialRaw(t, d, "ws://embedded/core")
	read(t, big)
	read(t, other)
	write(t, big, `{"type":"big","data":{"x":"`+strings.Repeat("a", 2048)+`"}}`)
	_ = big.SetReadDeadline(time.Now().Add(waitFor))
	_, _, err := big.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("big sender: err = %v, want close 1009", err)
	}
	write(t, other, `{"type":"small"}`)
	if got := read(t, other); got != `{"type":"small"}` {
		t.Fatalf("other got %s", got)
	}
	gatewaytest.Eventually(t, "1 peer", func() bool { return b.Peers() == 1 })
}

func TestNotFoundElsewhere(t *testing.T) {
	b := newBus(t, messagebus.Config{})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/core/", "/other"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestOriginRefused: an upgrade that carries an Origin header comes from a
// web page (bus peers send none), whatever the Origin says, "null" and the
// bus's own address included: refused with 403, over TCP and in memory, and
// no peer joins. Without an Origin a peer joins.
func TestOriginRefused(t *testing.T) {
	b := newBus(t, messagebus.Config{})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/core"
	dialers := map[string]*websocket.Dialer{"tcp": websocket.DefaultDialer, "memory": {NetDialContext: b.DialContext}}
	for name, d := range dialers {
		u := url
		if name == "memory" {
			u = "ws://embedded/core"
		}
		for _, origin := range []string{"https://evil.example", "null", srv.URL, "http://localhost", ""} {
			c, resp, err := d.Dial(u, http.Header{"Origin": []string{origin}})
			if err == nil {
				c.Close()
				t.Fatalf("%s: Origin %q joined the bus", name, origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s: Origin %q: %v (%v), want 403", name, origin, err, resp)
			}
		}
	}
	if n := b.Peers(); n != 0 {
		t.Fatalf("%d peers joined with an Origin", n)
	}
	c := dialRaw(t, websocket.DefaultDialer, url)
	if got := read(t, c); got != messagebus.ConnectedFrame {
		t.Fatalf("got %s", got)
	}
}

// TestSecret: with Config.Secret a network peer joins only with
// "Authorization: Bearer <secret>" (401 otherwise); in-process peers need
// none; an Origin is refused even with the secret.
func TestSecret(t *testing.T) {
	const secret = "correct horse battery staple"
	b := newBus(t, messagebus.Config{Secret: secret})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/core"
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, auth := range []string{"", "Bearer wrong", "Basic " + secret, "Bearer " + secret + "x", secret, basic(secret, "wrong"), basic("gateway", secret+"x")} {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		c, resp, err := websocket.DefaultDialer.Dial(url, h)
		if err == nil {
			c.Close()
			t.Fatalf("Authorization %q joined the bus", auth)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %v (%v), want 401", auth, err, resp)
		}
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + secret}, "Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("secret with an Origin: %v (%v), want 403", err, resp)
	}
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + secret}})
	if err != nil {
		t.Fatalf("with the secret: %v", err)
	}
	defer c.Close()
	if got := read(t, c); got != messagebus.ConnectedFrame {
		t.Fatalf("got %s", got)
	}
	// Basic with the secret as the password: what a bus client sends for a
	// URL with credentials (another gateway's GATEWAY_BUS_URL).
	c2, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {basic("gateway", secret)}})
	if err != nil {
		t.Fatalf("Basic with the secret: %v", err)
	}
	defer c2.Close()
	if got := read(t, c2); got != messagebus.ConnectedFrame {
		t.Fatalf("Basic: got %s", got)
	}
	mem := dialRaw(t, &websocket.Dialer{NetDialContext: b.DialContext}, "ws://embedded/core")
	if got := read(t, mem); got != messagebus.ConnectedFrame {
		t.Fatalf("in memory: got %s", got)
	}
}

func TestClose(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			b := newBus(t, messagebus.Config{})
			peers := []*websocket.Conn{tr.dial(t, b), tr.dial(t, b)}
			for _, p := range peers {
				read(t, p)
			}
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			for i, p := range peers {
				_ = p.SetReadDeadline(time.Now().Add(waitFor))
				_, _, err := p.ReadMessage()
				if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
					t.Errorf("peer %d: err = %v, want close 1001", i, err)
				}
			}
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
			case <-time.After(waitFor):
				t.Fatal("Close did not return")
			}
			if n := b.Peers(); n != 0 {
				t.Fatalf("Peers after Close = %d", n)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := b.DialContext(context.Background(), "tcp", "embedded:80"); err == nil {
				t.Fatal("DialContext after Close succeeded")
			}
		})
	}
}

func TestUpgradeAfterCloseRefused(t *testing.T) {
	b := newBus(t, messagebus.Config{})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	_ = b.Close()
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/core", nil)
	if err == nil {
		t.Fatal("dial after Close succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("resp = %v, want 503", resp)
	}
}

func TestDialContextCancelled(t *testing.T) {
	b := newBus(t, messagebus.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the server accepted first or the context won; never a hang.
	if c, err := b.DialContext(ctx, "tcp", "embedded:80"); err == nil {
		_ = c.Close()
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkRelay(b *testing.B) {
	bus, err := messagebus.New(messagebus.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	d := &websocket.Dialer{NetDialContext: bus.DialContext}
	c, _, err := d.Dial("ws://embedded/core", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"type":"speak","data":{"utterance":"hello"},"context":{"source":["skills"],"destination":"gateway:x"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || !bytes.Equal(got, msg) {
			b.Fatalf("read %q, %v", got, err)
		}
	}
}
