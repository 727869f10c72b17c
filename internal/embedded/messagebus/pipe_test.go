package messagebus

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestBufferedPipeIsAConn runs the net.Conn conformance suite of
// golang.org/x/net/nettest (the one net.Pipe is held to): basic I/O, ping
// pong, racing reads and writes, deadlines, closes.
func TestBufferedPipeIsAConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2 = bufferedPipe()
		return c1, c2, func() { _, _ = c1.Close(), c2.Close() }, nil
	})
}

// TestBufferedPipeWriteReturnsBeforeRead is the point of the buffer: a
// write returns with nobody reading, up to pipeBuffer bytes; the next waits
// for room, and the reader gets everything in order.
func TestBufferedPipeWriteReturnsBeforeRead(t *testing.T) {
	a, b := bufferedPipe()
	defer a.Close()
	defer b.Close()
	frame := bytes.Repeat([]byte("x"), 1000)
	for range pipeBuffer / len(frame) {
		if _, err := a.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := a.Write(frame)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != pipeBuffer%len(frame) {
		t.Fatalf("write into a full buffer: %d, %v; want %d and the deadline", n, err, pipeBuffer%len(frame))
	}
	_ = a.SetWriteDeadline(time.Time{})
	got, err := io.ReadAll(io.LimitReader(b, pipeBuffer))
	if err != nil || len(got) != pipeBuffer || !bytes.Equal(got, bytes.Repeat([]byte("x"), pipeBuffer)) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

// TestBufferedPipeCloseDrains: what was written before a close is read,
// then io.EOF; writes to a closed peer fail.
func TestBufferedPipeCloseDrains(t *testing.T) {
	a, b := bufferedPipe()
	if _, err := a.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := b.Write([]byte("anyone?")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed peer: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read on the closed end: %v", err)
	}
}
