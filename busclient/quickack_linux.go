//go:build linux

package busclient

import (
	"net"
	"syscall"
)

// quickAckConn keeps a TCP connection to the bus acknowledging at once: it
// sets TCP_QUICKACK after every read and after every write. The stock
// ovos-messagebus leaves Nagle's algorithm on, so when it writes a burst of
// small frames only the first leaves at once; the next wait until the first
// is acknowledged. Linux delays an ACK by 40 ms or more once a connection
// looks interactive (we wrote soon after reading: "pingpong" mode), and it
// leaves quick-ACK mode on its own, so the flag has to be set again: after a
// write (which is what turns pingpong on, just before the answer's frames
// arrive) and after a read. docs/bus.md, "Latency"; docs/PERFORMANCE.md,
// "On a stock OVOS bus". Reads are buffered by gorilla/websocket, so this is
// one setsockopt per socket read or write, not per frame.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// quickAck returns c re-arming TCP_QUICKACK, or c itself if its descriptor
// cannot be reached.
func quickAck(c *net.TCPConn) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: c, raw: raw}
	q.set()
	return q
}

func (q *quickAckConn) Read(p []byte) (int, error) {
	n, err := q.TCPConn.Read(p)
	if n > 0 {
		q.set()
	}
	return n, err
}

func (q *quickAckConn) Write(p []byte) (int, error) {
	n, err := q.TCPConn.Write(p)
	if n > 0 {
		q.set()
	}
	return n, err
}

func (q *quickAckConn) set() {
	_ = q.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
