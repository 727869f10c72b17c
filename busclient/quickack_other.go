//go:build !linux

package busclient

import "net"

// quickAck is a no-op where TCP_QUICKACK does not exist.
func quickAck(c *net.TCPConn) net.Conn { return c }
