package busclient_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
)

// TestBackoff checks, on synctest's fake clock, that redials wait a jittered
// exponential backoff within [MinBackoff, MaxBackoff], reset after a
// successful connection, and that Run returns at once when cancelled
// mid-backoff.
func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const minB, maxB = 100 * time.Millisecond, 1600 * time.Millisecond
		bus, err := messagebus.New(messagebus.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dials := make(chan time.Time, 64)
		var attempt int
		const succeedAt = 8 // the 8th dial reaches the bus
		c, err := busclient.New(busclient.Config{
			URL: "ws://embedded/core",
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				attempt++
				dials <- time.Now()
				if attempt == succeedAt {
					return bus.DialContext(ctx, network, addr)
				}
				return nil, errNoDial
			},
			MinBackoff: minB,
			MaxBackoff: maxB,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()

		var times []time.Time
		for len(times) < succeedAt {
			times = append(times, <-dials)
		}
		// Connected now: the link is up until the bus goes away.
		synctest.Wait()
		if !c.Connected() {
			t.Fatal("not connected after a successful dial")
		}
		linkDownAt := time.Now()
		_ = bus.Close()
		for len(times) < succeedAt+3 {
			times = append(times, <-dials)
		}

		base := minB
		jittered := 0
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			if i == succeedAt {
				gap = times[i].Sub(linkDownAt)
				base = minB // reset by the successful connection
			}
			lo := max(time.Duration(float64(base)*0.8), minB)
			hi := min(time.Duration(float64(base)*1.2), maxB)
			if gap < lo || gap > hi {
				t.Errorf("gap %d = %v, want within [%v, %v]", i, gap, lo, hi)
			}
			if gap != base {
				jittered++
			}
			base = min(base*2, maxB)
		}
		if jittered == 0 {
			t.Error("no gap was jittered")
		}

		// Cancel mid-backoff: Run returns without any time passing.
		synctest.Wait()
		before := time.Now()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		default:
			t.Fatal("Run did not return when cancelled mid-backoff")
		}
		if waited := time.Since(before); waited != 0 {
			t.Fatalf("Run took %v of fake time to return", waited)
		}
	})
}

// TestIdleLinkStaysUp runs an idle link for ten fake minutes: pings from both
// sides must be answered, or a read deadline would drop it.
func TestIdleLinkStaysUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, err := messagebus.New(messagebus.Config{PingInterval: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		var downs int
		c, err := busclient.New(busclient.Config{
			URL:            "ws://embedded/core",
			NetDialContext: bus.DialContext,
			PingInterval:   30 * time.Second,
			OnLink: func(up bool, err error) {
				if !up && err != nil {
					t.Logf("down at %v: %v", time.Now(), err)
					downs++
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		if err := c.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if !c.Connected() || downs != 0 || bus.Peers() != 1 {
			t.Fatalf("after 10 idle minutes: connected=%v downs=%d peers=%d", c.Connected(), downs, bus.Peers())
		}
		if err := c.Send(ctx, msg("still.here", "", "")); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// muteBus is a bus over net.Pipe that completes the handshake, sends the
// connected frame and then never reads again, so neither a close frame nor
// anything else gets through.
func muteBus(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		req, err := http.ReadRequest(bufio.NewReader(server))
		if err != nil {
			return
		}
		h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
		frame := append([]byte{0x81, byte(len(messagebus.ConnectedFrame))}, messagebus.ConnectedFrame...)
		_, _ = server.Write(append([]byte(resp), frame...))
		<-ctx.Done() // hold the pipe open, unread
	}()
	return client, nil
}

// TestCloseIsBoundedWhenTheBusIsMute: on cancel, the close frame cannot even
// be written; Run still returns, after closeGrace at most.
func TestCloseIsBoundedWhenTheBusIsMute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := busclient.New(busclient.Config{URL: "ws://mute/core", NetDialContext: muteBus})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		wctx, wcancel := context.WithTimeout(ctx, time.Minute) // fake time: fails at once if broken
		defer wcancel()
		if err := c.WaitConnected(wctx); err != nil {
			t.Fatalf("%v (%s)", err, c.Status().LastError)
		}
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Fatalf("Run took %v of fake time to give up on a mute bus", waited)
		}
	})
}

// frozenBus is a bus over net.Pipe that completes the handshake and sends
// the connected frame, then takes every byte written to it and answers
// nothing, not even a ping: a stopped (SIGSTOP) bus process, whose kernel
// still takes our writes into its socket buffer.
// It lives until done ends.
func frozenBus(done context.Context) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		return frozenPipe(done), nil
	}
}

func frozenPipe(done context.Context) net.Conn {
	client, server := net.Pipe()
	go func() {
		br := bufio.NewReader(server)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
		frame := append([]byte{0x81, byte(len(messagebus.ConnectedFrame))}, messagebus.ConnectedFrame...)
		if _, err := server.Write(append([]byte(resp), frame...)); err != nil {
			return
		}
		go func() { <-done.Done(); server.Close() }()
		_, _ = io.Copy(io.Discard, br) // frozen: reads, never answers
	}()
	return client
}

// TestFrozenBusIsCalledDown: a bus that stops answering (pings included)
// while still taking our bytes is called down within a few seconds of its
// last frame, on synctest's fake clock, with the defaults.
func TestFrozenBusIsCalledDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		downAt := make(chan time.Time, 1)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, err := busclient.New(busclient.Config{
			URL: "ws://frozen/core", NetDialContext: frozenBus(ctx),
			MinBackoff: time.Hour, MaxBackoff: time.Hour, // one link is enough
			OnLink: func(up bool, err error) {
				if !up {
					t.Logf("down: %v", err)
					downAt <- time.Now()
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = c.Run(ctx) }()
		if err := c.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the connected frame is read: the bus's last word
		lastWord := time.Now()
		select {
		case at := <-downAt:
			if silence := at.Sub(lastWord); silence > 5*time.Second {
				t.Fatalf("a frozen bus was called down after %v of silence, want a few seconds", silence)
			}
		case <-time.After(time.Hour): // fake time: only a broken client gets here
			t.Fatal("a frozen bus was never called down")
		}
		if c.Connected() {
			t.Fatal("still connected to a frozen bus")
		}
	})
}
