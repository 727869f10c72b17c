// Package messagebus is the gateway's embedded Mycroft / OpenVoiceOS
// messagebus: what ovos-messagebus is. It serves a websocket on /core,
// greets each peer with the connected frame and relays every frame it
// receives, byte for byte, to every connected peer, the sender included
// (docs/bus.md, "Transport"). It keeps nothing, like the real bus.
//
// Unlike the real bus, it refuses a websocket upgrade that carries an Origin
// header: bus peers (ovos-core, skills, other gateways) send none, so an
// Origin means a web page, which must never join. With Config.Secret set, a
// peer reaching it over the network must also present the secret in its
// Authorization header (Bearer, or Basic with the secret as the password);
// the in-process peers (DialContext) need not.
package messagebus

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
)

// Route is the path the bus serves, as on ovos-messagebus.
const Route = "/core"

// Defaults for Config fields left zero.
const (
	DefaultPeerQueue      = 65536
	DefaultPeerQueueBytes = 64 << 20
	DefaultPingInterval   = 30 * time.Second
)

// Timing of a peer connection.
const (
	// writeWait bounds each write to a peer.
	writeWait = 10 * time.Second
	// closeGrace is how long a closing peer gets to answer our close frame.
	closeGrace = time.Second
	// readHeaderTimeout bounds the upgrade request on the in-memory server.
	readHeaderTimeout = 10 * time.Second
)

// ConnectedFrame is the first frame every peer receives, exactly as
// ovos-messagebus sends it (docs/bus.md, "Transport").
const ConnectedFrame = `{"type":"` + api.TypeConnected + `","data":{},"context":{"session":{"session_id":"` + api.DefaultSessionID + `"}}}`

// Config configures a Bus. Zero fields take the defaults.
type Config struct {
	// Logger receives the bus's logs; nil discards them.
	Logger *slog.Logger
	// MaxMessageSize is the read limit per frame; a larger frame
	// disconnects its sender (default api.DefaultMaxBusMessageSize).
	MaxMessageSize int64
	// PeerQueue bounds each peer's send queue in frames, and PeerQueueBytes
	// in bytes; a peer that lets it fill up is disconnected, so that one
	// slow peer never stalls the relay. The queue takes memory only as it
	// fills: the bounds are set for bursts (a thousand utterances at once
	// are some seven thousand frames for the gateway's own link), not for
	// peers that stopped reading.
	PeerQueue      int
	PeerQueueBytes int64
	// PingInterval is how often each peer is pinged; a peer that sends
	// nothing (not even a pong) for twice as long is disconnected.
	PingInterval time.Duration
	// Secret, when set, is what a peer connecting through Handler must
	// present in its upgrade request, as "Authorization: Bearer <secret>" or
	// HTTP Basic with the secret as the password
	// (GATEWAY_EMBEDDED_BUS_SECRET). Stock OVOS peers cannot send a header:
	// leave it empty for them and keep the bus on loopback.
	Secret api.Secret
}

// Bus is an in-process messagebus. Serve Handler over HTTP, or connect
// in-process through DialContext; stop it with Close.
type Bus struct {
	log      *slog.Logger
	maxSize  int64
	queue    int
	qbytes   int64
	ping     time.Duration
	upgrader websocket.Upgrader
	secret   [sha256.Size]byte // SHA-256 of Config.Secret
	locked   bool              // Config.Secret is set

	mu     sync.RWMutex
	peers  map[*peer]struct{}
	closed bool
	mem    *memListener // started by the first DialContext
	memSrv *http.Server
	wg     sync.WaitGroup // peer loops and the in-memory server

	closeOnce sync.Once
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Bus, error) {
	switch {
	case cfg.MaxMessageSize < 0:
		return nil, errors.New("messagebus: MaxMessageSize is negative")
	case cfg.MaxMessageSize == 0:
		cfg.MaxMessageSize = api.DefaultMaxBusMessageSize
	}
	switch {
	case cfg.PeerQueue < 0:
		return nil, errors.New("messagebus: PeerQueue is negative")
	case cfg.PeerQueue == 0:
		cfg.PeerQueue = DefaultPeerQueue
	}
	switch {
	case cfg.PeerQueueBytes < 0:
		return nil, errors.New("messagebus: PeerQueueBytes is negative")
	case cfg.PeerQueueBytes == 0:
		cfg.PeerQueueBytes = DefaultPeerQueueBytes
	}
	switch {
	case cfg.PingInterval < 0:
		return nil, errors.New("messagebus: PingInterval is negative")
	case cfg.PingInterval == 0:
		cfg.PingInterval = DefaultPingInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{
		secret:  sha256.Sum256([]byte(cfg.Secret.Reveal())),
		locked:  cfg.Secret != "",
		log:     log,
		maxSize: cfg.MaxMessageSize,
		queue:   cfg.PeerQueue,
		qbytes:  cfg.PeerQueueBytes,
		ping:    cfg.PingInterval,
		upgrader: websocket.Upgrader{
			// serve has refused every request with an Origin already.
			CheckOrigin:     func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
			WriteBufferPool: &sync.Pool{},
		},
		peers: make(map[*peer]struct{}),
	}, nil
}

// Handler serves the bus's websocket on Route and 404 elsewhere, for peers
// on the network: an upgrade carrying an Origin header is refused (403),
// and so is one without the secret when Config.Secret is set (401).
func (b *Bus) Handler() http.Handler {
	return b.handler(true)
}

// handler is Handler; checkSecret is false for the in-process peers.
func (b *Bus) handler(checkSecret bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Route {
			http.NotFound(w, r)
			return
		}
		if _, ok := r.Header["Origin"]; ok {
			// A browser names the page that opened the socket (even
			// "null" for a sandboxed one or a file); bus peers send no
			// Origin. No page may join: it could read every client's
			// traffic and speak for them.
			b.log.Debug("messagebus upgrade refused: a web page's Origin", "remote", r.RemoteAddr)
			http.Error(w, "messagebus: web pages may not connect (Origin header)", http.StatusForbidden)
			return
		}
		if checkSecret && b.locked && !b.presented(r) {
			b.log.Debug("messagebus upgrade refused: no or wrong secret", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="messagebus"`)
			http.Error(w, "messagebus: the bus secret is required", http.StatusUnauthorized)
			return
		}
		b.serve(w, r)
	})
}

// presented reports whether r carries the secret, compared in constant
// time: "Authorization: Bearer <secret>", or HTTP Basic with the secret as
// the password (any user name), which is what a bus client sends for a bus
// URL with credentials (ws://gateway:SECRET@host/core: another gateway's
// GATEWAY_BUS_URL).
func (b *Bus) presented(r *http.Request) bool {
	var tok string
	if _, pass, ok := r.BasicAuth(); ok {
		tok = pass
	} else {
		scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		tok = strings.TrimSpace(t)
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], b.secret[:]) == 1
}

// Peers returns how many peers are connected.
func (b *Bus) Peers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.peers)
}

// DialContext opens an in-memory connection to this bus, for
// busclient.Config.NetDialContext (with URL "ws://embedded/core") or a
// websocket.Dialer: the same Handler, served over an in-memory pipe
// (bufferedPipe), no socket.
// network and addr are ignored.
func (b *Bus) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("messagebus: dial: %w", net.ErrClosed)
	}
	if b.mem == nil {
		b.mem = newMemListener()
		b.memSrv = &http.Server{
			Handler:           b.handler(false),
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
		}
		b.wg.Add(1)
		go func(srv *http.Server, l net.Listener) {
			defer b.wg.Done()
			_ = srv.Serve(l)
		}(b.memSrv, b.mem)
	}
	mem := b.mem
	b.mu.Unlock()
	conn, err := mem.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("messagebus: dial: %w", err)
	}
	return conn, nil
}

// Close disconnects every peer (close frame 1001, bounded wait), stops the
// in-memory server and waits for every goroutine of the bus. It is
// idempotent. An HTTP server serving Handler is the caller's to stop.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		peers := make([]*peer, 0, len(b.peers))
		for p := range b.peers {
			peers = append(peers, p)
		}
		clear(b.peers)
		srv := b.memSrv
		b.mu.Unlock()
		for _, p := range peers {
			p.shutdown()
		}
		if srv != nil {
			_ = srv.Close()
		}
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		t := time.NewTimer(2 * closeGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// A writer stuck in a write to a dead peer: cut the sockets.
			for _, p := range peers {
				_ = p.conn.Close()
			}
			<-done
		}
	})
	return nil
}

// serve upgrades one peer and runs its reader on the handler's goroutine.
func (b *Bus) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		http.Error(w, "messagebus closed", http.StatusServiceUnavailable)
		return
	}
	conn, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the request with an HTTP error.
		b.log.Debug("messagebus upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	p := newPeer(conn, b.queue, b.qbytes)
	p.send.push(outMsg{typ: websocket.TextMessage, data: []byte(ConnectedFrame)}) // first, before any relay
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = conn.Close()
		return
	}
	b.peers[p] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	b.log.Debug("messagebus peer connected", "remote", r.RemoteAddr)

	go b.writeLoop(p)
	err = b.readLoop(p)
	b.remove(p)
	p.shutdown()
	<-p.writerDone
	_ = conn.Close()
	b.log.Debug("messagebus peer disconnected", "remote", r.RemoteAddr, "err", err)
}

// relay queues one frame for every connected peer, the sender included.
// It never blocks: a peer whose queue is full is disconnected. Relays are
// serialised (as on the single-threaded Python bus), so every peer sees
// frames in one order: a reply never overtakes, on the way to a third peer,
// the frame it answers.
func (b *Bus) relay(m outMsg) {
	var slow []*peer
	b.mu.Lock()
	for p := range b.peers {
		if !p.send.push(m) {
			delete(b.peers, p)
			slow = append(slow, p)
		}
	}
	b.mu.Unlock()
	for _, p := range slow {
		b.log.Warn("messagebus peer too slow, disconnecting", "remote", p.conn.RemoteAddr().String())
		// Close the socket itself: the writer may be stuck in a write to
		// this peer, and its reader ends with it.
		_ = p.conn.Close()
	}
}

func (b *Bus) remove(p *peer) {
	b.mu.Lock()
	delete(b.peers, p)
	b.mu.Unlock()
}
