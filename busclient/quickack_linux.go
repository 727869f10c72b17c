//go:build linux

package busclient

import (
	"net"
	"syscall"
)

// quickAckConn re-arms TCP_QUICKACK after every read. Linux clears the flag
// on its own after a while, so it has to be set again; the point is to ACK a
// bus that leaves Nagle's algorithm on at once, instead of after the ~40 ms
// delayed-ACK timer (docs/bus.md, "Latency"). Reads are buffered by
// gorilla/websocket, so this costs one setsockopt per socket read, not per
// frame.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

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

func (q *quickAckConn) set() {
	_ = q.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
