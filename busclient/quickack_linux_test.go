//go:build linux

package busclient_test

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/ovosgw/gateway/internal/embedded/messagebus"
)

// quickAckOf reads TCP_QUICKACK back from c's socket. Linux answers 1 unless
// the connection is in delayed-ACK ("pingpong") mode.
func quickAckOf(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// delayAcks puts c's socket in delayed-ACK mode, as Linux does by itself
// once a connection writes soon after reading.
func delayAcks(t *testing.T, c *net.TCPConn) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 0)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	if got := quickAckOf(t, c); got != 0 {
		t.Fatalf("TCP_QUICKACK reads %d after clearing it: the kernel does not report it", got)
	}
}

// TestQuickAckRearmed holds the fix for the stock bus's latency (issue 16):
// a bus with Nagle's algorithm on (ovos-messagebus) holds every frame of a
// burst after the first until that one is acknowledged, so the link must
// leave delayed-ACK mode after each of its writes (which is what enters it)
// and each of its reads, with no setting to turn on. The socket option is
// read back from the real TCP connection right after the write returns and
// right after the frame is delivered.
func TestQuickAckRearmed(t *testing.T) {
	env := startTCPBus(t, messagebus.Config{})
	cfg := env.config("a")
	var mu sync.Mutex
	var conns []*net.TCPConn
	cfg.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			mu.Lock()
			conns = append(conns, tc)
			mu.Unlock()
		}
		return c, err
	}
	a := start(t, cfg)
	a.connect(t)
	mu.Lock()
	if len(conns) != 1 {
		mu.Unlock()
		t.Fatalf("%d connections dialled, want 1", len(conns))
	}
	tc := conns[0]
	mu.Unlock()
	raw := env.raw(t)
	for i := range 5 {
		delayAcks(t, tc)
		a.send(t, msg("ping", "", ""))
		if got := quickAckOf(t, tc); got != 1 {
			t.Fatalf("%d: TCP_QUICKACK %d after a write, want 1", i, got)
		}
		if got := rawRead(t, raw); got != `{"type":"ping","data":{},"context":{}}` {
			t.Fatalf("%d: raw got %s", i, got)
		}
		delayAcks(t, tc)
		rawWrite(t, raw, `{"type":"pong"}`)
		rawRead(t, raw) // the bus echoes the raw peer too
		if f := a.next(t); f.Type != "pong" {
			t.Fatalf("%d: got %s", i, f.Raw)
		}
		if got := quickAckOf(t, tc); got != 1 {
			t.Fatalf("%d: TCP_QUICKACK %d after a read, want 1", i, got)
		}
	}
}
