package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// dialTimeout bounds one connection attempt of the tool.
const dialTimeout = 10 * time.Second

// source is one local address the tool's connections come from: the gateway
// limits logins, utterances and streams per address, and a real fleet of
// devices has many addresses, so the tool spreads its clients over several
// 127.x addresses (every 127/8 address is the loopback on Linux).
type source struct {
	addr netip.Addr
	http *http.Client
	// dialer binds addr; streams dial through it directly.
	dialer *net.Dialer
}

// newSources makes n sources from base upwards.
func newSources(base string, n int, keepAlive int) ([]*source, error) {
	a, err := netip.ParseAddr(base)
	if err != nil || !a.Is4() {
		return nil, fmt.Errorf("-source-base %q is not an IPv4 address", base)
	}
	out := make([]*source, 0, n)
	for range n {
		if !a.IsValid() || !a.IsLoopback() {
			return nil, fmt.Errorf("source address %s is not a loopback address: lower -sources or -source-base", a)
		}
		d := &net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: a.AsSlice()}}
		tr := &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: max(keepAlive, 2),
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		}
		out = append(out, &source{addr: a, http: &http.Client{Transport: tr}, dialer: d})
		a = a.Next()
	}
	return out, nil
}

// dialSlow dials from s with a tiny receive buffer: a reader that stops
// reading then stops the server's writes within a few kilobytes.
func (s *source) dialSlow(ctx context.Context, addr string) (net.Conn, error) {
	d := *s.dialer
	d.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}
	return d.DialContext(ctx, "tcp", addr)
}

// close drops the idle connections of every source.
func closeSources(srcs []*source) {
	for _, s := range srcs {
		s.http.CloseIdleConnections()
	}
}
