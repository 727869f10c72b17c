package busclient_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
)

// stopsReading is a real TCP websocket server that completes the handshake,
// sends the connected frame and then never reads nor writes again, like a
// bus process stopped with SIGSTOP: the kernel still takes our bytes until
// its buffers fill. It returns the bus URL.
func stopsReading(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err != nil {
				continue
			}
			h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
			frame := append([]byte{0x81, byte(len(messagebus.ConnectedFrame))}, messagebus.ConnectedFrame...)
			_, _ = conn.Write(append([]byte(resp), frame...))
			// Frozen from here on: the connection stays open, unread.
		}
	}()
	return "ws://" + ln.Addr().String() + "/core"
}

// TestStoppedBusIsCalledDown: over real TCP, a bus that stops answering
// (pings included) is called down by the client's own pings, with the
// default settings, long before the old 45 s. The wait is a bound against
// hangs, far above the few seconds it takes.
func TestStoppedBusIsCalledDown(t *testing.T) {
	ev := newLinkEvents()
	c := start(t, busclient.Config{URL: stopsReading(t), Name: "frozen", Logger: testLogger(t), OnLink: ev.hook, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ev.want(t, true)
	select {
	case e := <-ev.ch:
		if e.up || e.err == nil {
			t.Fatalf("OnLink(%v, %v), want down with a cause", e.up, e.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a stopped bus still looks healthy after 30 s")
	}
	if c.Connected() {
		t.Fatal("still connected")
	}
}
