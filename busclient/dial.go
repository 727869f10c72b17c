package busclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// busURL is the validated bus address, split into what is dialled, what may
// be logged, and the credentials that are neither.
type busURL struct {
	dial   string      // ws(s)://host/path?query, without userinfo
	public string      // same as dial: safe for logs and Status
	header http.Header // Authorization from the URL's userinfo, if any
	secret []string    // userinfo parts, scrubbed from every error text
}

// parseBusURL validates raw as a ws:// or wss:// URL with a host. Userinfo is
// taken out of the URL (gorilla/websocket refuses it) and sent as HTTP Basic
// authentication on the handshake, for a bus behind an authenticating proxy;
// it never reaches a log, an error or Status.
func parseBusURL(raw string) (busURL, error) {
	if raw == "" {
		return busURL{}, errors.New("busclient: URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input, which may hold credentials.
		return busURL{}, errors.New("busclient: URL does not parse")
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return busURL{}, fmt.Errorf("busclient: URL scheme %q: want ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return busURL{}, errors.New("busclient: URL has no host")
	}
	var b busURL
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		b.header = http.Header{}
		r := http.Request{Header: b.header}
		r.SetBasicAuth(user, pass)
		for _, s := range []string{u.User.String(), user, pass} {
			if len(s) >= 3 { // shorter strings would mangle ordinary text
				b.secret = append(b.secret, s)
			}
		}
		u.User = nil
	}
	u.Fragment, u.RawFragment = "", ""
	b.dial = u.String()
	b.public = b.dial
	return b, nil
}

// scrub returns err's text with any credential from the URL masked.
func (b busURL) scrub(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, sec := range b.secret {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// dial opens one websocket to the bus. The handshake is bounded by
// HandshakeTimeout; cancelling ctx aborts it at once, even after the TCP
// connection is up (gorilla/websocket only honours the context's deadline
// there, so the connection's deadline is forced into the past).
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	base := c.cfg.NetDialContext
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	var stop func() bool
	d := websocket.Dialer{
		// No Proxy: the bus is a local service; environment proxies would
		// only get in the way.
		HandshakeTimeout: c.cfg.HandshakeTimeout,
		TLSClientConfig:  c.cfg.TLSConfig,
		NetDialContext: func(hctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := base(hctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				// Go's default, made explicit: small frames go out at once.
				// And ACK at once (on Linux): the stock bus leaves Nagle's
				// algorithm on, so a burst of frames would otherwise wait
				// on our delayed ACKs (docs/bus.md, "Latency").
				_ = tc.SetNoDelay(true)
				conn = quickAck(tc)
			}
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
			return conn, nil
		},
	}
	conn, resp, err := d.DialContext(ctx, c.url.dial, c.url.header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if stop != nil && !stop() && err == nil {
		// ctx ended just as the handshake finished: the deadline may be
		// poisoned, so do not use this connection.
		_ = conn.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if resp != nil {
			return nil, fmt.Errorf("handshake with %s: %w (HTTP %d)", c.url.public, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", c.url.public, err)
	}
	return conn, nil
}
