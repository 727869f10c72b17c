// Package busclient is the gateway's websocket client of a Mycroft /
// OpenVoiceOS messagebus: it connects and reconnects, writes through one
// writer goroutine, drops the bus's echo of its own frames, fans received
// frames out to subscribers and matches replies to requests (docs/bus.md).
//
// It follows gorilla/websocket's concurrency rules: per connection exactly one
// goroutine reads and exactly one writes (fed by a bounded channel); control
// frames are answered through the concurrency-safe WriteControl.
package busclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Defaults for Config fields left zero.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMinBackoff       = 500 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultSendQueue        = 1024
	DefaultPingInterval     = 2 * time.Second
)

// Timing of one connection.
const (
	// writeWait bounds each write, so a stuck bus cannot hold the writer.
	writeWait = 10 * time.Second
	// closeGrace is how long a clean close waits for the bus's close reply.
	closeGrace = time.Second
	// backoffJitter spreads reconnects by ±20 % so that peers restarted
	// together do not hammer the bus in step.
	backoffJitter = 0.2
	// logPayloadMax caps how much of an unparsable frame is logged.
	logPayloadMax = 200
)

// ErrNotConnected is returned by Send and Request when there is no link to the
// bus, or the link dropped before the frame was written. What is sent while
// disconnected is lost (the bus keeps nothing), so callers report it instead
// of queueing.
var ErrNotConnected = errors.New("busclient: not connected to the messagebus")

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// URL is the bus address, ws://HOST:8181/core or wss://... Required.
	// Userinfo, if any, is sent as HTTP Basic authentication and never
	// logged.
	URL string
	// Name names this peer in logs.
	Name string
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// NetDialContext, if set, opens the transport (e.g. an in-memory bus);
	// else TCP.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds dialling plus the websocket handshake.
	HandshakeTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles after
	// each failure, is jittered, and resets after a successful connection.
	MinBackoff, MaxBackoff time.Duration
	// MaxMessageSize is the read limit; a larger frame drops the link.
	MaxMessageSize int64
	// SendQueue is the writer's queue length.
	SendQueue int
	// PingInterval is how often the client pings (websocket ping frames,
	// which ovos-messagebus answers like any websocket server). A bus that
	// sends nothing, not even a pong, for two intervals is called down and
	// the link dropped: a frozen bus (SIGSTOP, a hung host) still accepts
	// our writes into its socket buffers, so only its silence shows it.
	// Two intervals leave every ping at least one interval for its pong.
	PingInterval time.Duration
	// OnLink, if set, is called whenever the link goes up (up, nil) or down
	// (false, cause; cause is nil on a clean shutdown), from the client's
	// goroutines: it must not block. Up always precedes the link's first
	// frame and down follows its last. WatchLink registers more such
	// callbacks, for whoever is built after the client.
	OnLink func(up bool, err error)
}

// Status is a snapshot of the link, for health checks.
type Status struct {
	// Connected reports whether the websocket to the bus is up.
	Connected bool
	// Since is when Connected last changed (zero before the first attempt).
	Since time.Time
	// LastError describes the last dial or link failure, without URL
	// credentials; empty if none yet.
	LastError string
}

// Stats are counters since New, for metrics.
type Stats struct {
	// FramesIn counts frames read from the bus, echoes and bad ones included.
	FramesIn uint64
	// FramesOut counts frames written to the bus.
	FramesOut uint64
	// Reconnects counts successful connections after the first.
	Reconnects uint64
	// Dropped counts received frames that did not parse as a bus message
	// and were not delivered.
	Dropped uint64
	// Echoes counts received frames recognised as our own and not delivered.
	Echoes uint64
}

// Client is a messagebus peer. Create it with New, run it with Run; Send,
// Subscribe, Request and the status methods are safe for concurrent use.
type Client struct {
	cfg      Config
	url      busURL
	log      *slog.Logger
	pongWait time.Duration
	running  atomic.Bool

	mu        sync.Mutex
	link      *link         // nil while disconnected
	up        chan struct{} // closed when the next link comes up
	since     time.Time
	lastError string
	everUp    bool

	subs     listeners[func(*api.Frame)]         // read by the reader for every frame
	watchers listeners[func(up bool, err error)] // read on link changes

	framesIn, framesOut, reconnects, dropped, echoes atomic.Uint64
}

// New validates cfg and fills its defaults. It does not connect: Run does.
func New(cfg Config) (*Client, error) {
	u, err := parseBusURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HandshakeTimeout", &cfg.HandshakeTimeout, DefaultHandshakeTimeout},
		{"MinBackoff", &cfg.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &cfg.MaxBackoff, DefaultMaxBackoff},
		{"PingInterval", &cfg.PingInterval, DefaultPingInterval},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("busclient: %s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("busclient: MaxBackoff %v is below MinBackoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	switch {
	case cfg.MaxMessageSize < 0:
		return nil, errors.New("busclient: MaxMessageSize is negative")
	case cfg.MaxMessageSize == 0:
		cfg.MaxMessageSize = api.DefaultMaxBusMessageSize
	}
	switch {
	case cfg.SendQueue < 0:
		return nil, errors.New("busclient: SendQueue is negative")
	case cfg.SendQueue == 0:
		cfg.SendQueue = DefaultSendQueue
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name != "" {
		log = log.With("peer", cfg.Name)
	}
	c := &Client{
		cfg:      cfg,
		url:      u,
		log:      log,
		pongWait: 2 * cfg.PingInterval,
		up:       make(chan struct{}),
	}
	return c, nil
}

// Run connects to the bus and keeps reconnecting, with jittered exponential
// backoff, until ctx is done; then it closes the link cleanly (close frame,
// bounded wait) and returns nil. It returns promptly on cancellation, even
// mid-dial or mid-backoff. Only one Run may be active at a time.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("busclient: Run is already running")
	}
	defer c.running.Store(false)
	backoff := c.cfg.MinBackoff
	for {
		conn, err := c.dial(ctx)
		if ctx.Err() != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return nil
		}
		if err != nil {
			c.setError(err)
			c.log.Warn("messagebus dial failed", "url", c.url.public, "err", c.url.scrub(err), "retry_in", backoff)
		} else {
			backoff = c.cfg.MinBackoff
			err = c.serve(ctx, conn)
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("messagebus link down", "url", c.url.public, "err", c.url.scrub(err), "retry_in", backoff)
		}
		if !sleep(ctx, c.jitter(backoff)) {
			return nil
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// jitter spreads d by ±backoffJitter, kept within [MinBackoff, MaxBackoff].
func (c *Client) jitter(d time.Duration) time.Duration {
	spread := time.Duration(float64(d) * backoffJitter)
	if spread > 0 {
		d += rand.N(2*spread+1) - spread
	}
	return min(max(d, c.cfg.MinBackoff), c.cfg.MaxBackoff)
}

// sleep waits d or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Connected reports whether the websocket to the bus is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link != nil
}

// Status returns a snapshot of the link.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Connected: c.link != nil, Since: c.since, LastError: c.lastError}
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		FramesIn:   c.framesIn.Load(),
		FramesOut:  c.framesOut.Load(),
		Reconnects: c.reconnects.Load(),
		Dropped:    c.dropped.Load(),
		Echoes:     c.echoes.Load(),
	}
}

// WaitConnected blocks until the link is up or ctx is done.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		up, ch := c.link != nil, c.up
		c.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("busclient: waiting for the bus: %w", ctx.Err())
		}
	}
}

// Send marshals m (api.Message.MarshalJSON: only well-formed JSON goes on the
// bus, see docs/bus.md) and returns once the writer has written it to the socket.
// It fails with ErrNotConnected when there is no link or it drops before the
// write, with ctx's error, or with the marshal error. If ctx ends while the
// frame is queued, it is not written.
func (c *Client) Send(ctx context.Context, m api.Message) error {
	data, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("busclient: send: %w", err)
	}
	return c.sendRaw(ctx, data)
}

func (c *Client) sendRaw(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l == nil {
		return ErrNotConnected
	}
	// When nothing is queued and nobody is writing, write here: handing the
	// frame to the writer goroutine and waiting for its answer costs two
	// goroutine switches per frame, the larger part of a frame's trip
	// through the in-memory bus. Frames queued before keep their order: the
	// queue is checked under the write lock.
	if len(l.send) == 0 && l.wmu.TryLock() {
		select {
		case <-l.done:
			l.wmu.Unlock()
			return ErrNotConnected
		default:
		}
		if len(l.send) == 0 {
			err := c.writeFrame(l, data)
			l.wmu.Unlock()
			if err != nil {
				// The link is broken: closing it ends the reader, and
				// serve takes the link down.
				_ = l.conn.Close()
				return fmt.Errorf("%w: %w", ErrNotConnected, err)
			}
			return nil
		}
		l.wmu.Unlock()
	}
	f := outFrame{ctx: ctx, data: data, res: make(chan error, 1)}
	select {
	case l.send <- f:
	case <-l.done:
		return ErrNotConnected
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-f.res:
		return err
	case <-l.done:
		// The writer answers every frame it took before it stops.
		select {
		case err := <-f.res:
			return err
		default:
			return ErrNotConnected
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WatchLink registers fn to be told, as Config.OnLink is, whenever the link
// goes up or down: for a component built after the client that ends what
// it had pending on this bus when the link drops (the bus bridge), so that
// the two need not know each other at construction. fn must not block.
// cancel removes fn; a change being told at that moment may still reach it.
func (c *Client) WatchLink(fn func(up bool, err error)) (cancel func()) {
	return c.watchers.add(fn)
}

// linkChanged tells Config.OnLink and the watchers that the link went up or
// down.
func (c *Client) linkChanged(up bool, err error) {
	if cb := c.cfg.OnLink; cb != nil {
		cb(up, err)
	}
	for _, w := range c.watchers.load() {
		w.fn(up, err)
	}
}

// Subscribe registers fn for every frame received from the bus that parsed
// and is not the echo of our own: the first frame of each link (connected)
// included. fn runs on the reader goroutine, in order, and must neither
// block nor modify the frame (it is shared by all subscribers). cancel
// removes fn; a frame being delivered at that moment may still reach it.
func (c *Client) Subscribe(fn func(*api.Frame)) (cancel func()) {
	return c.subs.add(fn)
}

// Request subscribes, sends m, and returns the first received frame for which
// match returns true (match runs on the reader goroutine and must not block),
// or ctx's error: give ctx a deadline, since the bus has no error replies.
// Our own echo never matches; it is not delivered.
func (c *Client) Request(ctx context.Context, m api.Message, match func(*api.Frame) bool) (*api.Frame, error) {
	if match == nil {
		return nil, errors.New("busclient: request without a match function")
	}
	got := make(chan *api.Frame, 1)
	cancel := c.Subscribe(func(f *api.Frame) {
		if match(f) {
			select {
			case got <- f:
			default:
			}
		}
	})
	defer cancel()
	if err := c.Send(ctx, m); err != nil {
		return nil, err
	}
	select {
	case f := <-got:
		return f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("busclient: waiting for the reply to %q: %w", m.Type, ctx.Err())
	}
}

// setError records a failure for Status.
func (c *Client) setError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastError = c.url.scrub(err)
	if c.since.IsZero() {
		c.since = time.Now()
	}
}
