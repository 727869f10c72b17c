// Package hub fans events out to each client's Server-Sent-Events streams and
// keeps, per client, a bounded window of recent events so that a reconnecting
// stream resumes from its Last-Event-ID (docs/protocol.md, "The event stream").
//
// Every client has a topic: an event id counter, a ring of its last Window
// encoded frames and the live subscriptions, one per open connection. Publish
// encodes an event once and hands the same bytes to every subscription without
// ever waiting: a subscription whose bounded buffer is full is ended with
// ErrSlow and recovers by reconnecting with Last-Event-ID (the Centrifuge and
// Mercure way). The hub runs no goroutine of its own.
package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Reasons why the hub ends a subscription, as Subscription.Err reports them.
var (
	// ErrSlow: the subscription's buffer was full when an event came; the
	// stream should end and the client reconnect with Last-Event-ID.
	ErrSlow = errors.New("hub: subscriber too slow")
	// ErrKicked: Kick without a more precise reason.
	ErrKicked = errors.New("hub: subscription kicked")
	// ErrShutdown: the hub was closed (server shutdown).
	ErrShutdown = errors.New("hub: shutting down")
	// ErrClientDeleted: the client was deleted (Forget).
	ErrClientDeleted = errors.New("hub: client deleted")
	// ErrLoggedOut: the session logged out.
	ErrLoggedOut = errors.New("hub: session logged out")
)

// Defaults and bounds of Config.
const (
	DefaultWindow      = 256
	DefaultWindowBytes = 32 << 10
	DefaultBuffer      = 64
	MaxWindow          = 1 << 16
	MaxBuffer          = 1 << 16
)

// shardCount splits the topic map so that publishers and subscribers of
// different clients seldom meet on the same lock.
const shardCount = 64

// maxEchoedID bounds how much of an unparsable Last-Event-ID the gap event
// echoes back: an id of ours has at most 20 digits.
const maxEchoedID = 32

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	// Window is how many events each client keeps for replay (DefaultWindow),
	// and WindowBytes how many bytes they may take (DefaultWindowBytes; the
	// newest event is kept whatever its size). The byte bound is what keeps
	// a fleet cheap: a thousand busy clients kept about 100 MiB of frames
	// with the count alone, and the collector's work grew with it.
	Window      int
	WindowBytes int
	// Buffer is each subscription's channel capacity (DefaultBuffer): how far
	// a stream may fall behind before it is ended with ErrSlow.
	Buffer int
	// Now gives the time from which event ids start (time.Now).
	Now func() time.Time
	// Logger receives the hub's logs; nil discards them.
	Logger *slog.Logger
	// Relay, when set, shares the events with other replicas' hubs (see
	// Relay); the hub then keeps no window of its own.
	Relay Relay
}

// Stats are the hub's counters, read atomically.
type Stats struct {
	Published   uint64 // events given an id
	Delivered   uint64 // frames handed to live subscriptions
	DroppedSlow uint64 // subscriptions ended with ErrSlow
	Gaps        uint64 // subscriptions that started with a gap
	Subscribers int64  // live subscriptions now
}

// Server holds every client's topic. Its methods are safe for concurrent use.
type Server struct {
	window      int
	windowBytes int
	buffer      int
	// base is where every topic's event id counter starts: the Unix time in
	// microseconds at New. A client's event ids are then base+1, base+2, ...,
	// so after a restart the new ids are greater than those the old process
	// gave (as long as it gave fewer than one event per client per
	// microsecond of its life and the clock did not go back): a browser that
	// reconnects with an id of the old life is then seen as "older than the
	// window" and gets a gap event, instead of having its id mistaken for one
	// of the new life and silently missing events. The replay windows are not
	// kept across restarts.
	base  uint64
	relay Relay
	log   *slog.Logger
	// posts waits for the relay (Post), appended by one goroutine at a
	// time, the one that set posting.
	postMu  sync.Mutex
	posts   []posted
	posting bool
	seed    maphash.Seed
	closed  atomic.Bool
	shards  [shardCount]shard

	published   atomic.Uint64
	delivered   atomic.Uint64
	droppedSlow atomic.Uint64
	gaps        atomic.Uint64
	subscribers atomic.Int64
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*topic
}

// topic is one client's id counter, replay window and live subscriptions,
// all guarded by mu.
type topic struct {
	mu   sync.Mutex
	last uint64 // newest id given; the window holds ids last-len(ring)+1 .. last
	// ring holds the newest frames: n of them from index start on, wrapping,
	// size bytes in all. It grows lazily up to Window slots, so that clients
	// with few events cost little.
	ring  [][]byte
	start int
	n     int
	size  int
	subs  []*Subscription
	dead  bool // dropped by Forget or Close: look the topic up again
}

// New returns a Server after checking cfg and filling its defaults.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Window < 0 || cfg.Window > MaxWindow:
		return nil, fmt.Errorf("hub: window %d out of range 1..%d", cfg.Window, MaxWindow)
	case cfg.WindowBytes < 0:
		return nil, fmt.Errorf("hub: negative window bytes %d", cfg.WindowBytes)
	case cfg.Buffer < 0 || cfg.Buffer > MaxBuffer:
		return nil, fmt.Errorf("hub: buffer %d out of range 1..%d", cfg.Buffer, MaxBuffer)
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.WindowBytes == 0 {
		cfg.WindowBytes = DefaultWindowBytes
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Server{
		window:      cfg.Window,
		windowBytes: cfg.WindowBytes,
		buffer:      cfg.Buffer,
		base:        uint64(max(cfg.Now().UnixMicro(), 0)),
		relay:       cfg.Relay,
		log:         cfg.Logger,
		seed:        maphash.MakeSeed(),
	}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*topic)
	}
	return h, nil
}

// Publish gives ev the client's next event id, keeps it in the client's
// window and hands it to every live subscription of the client, and returns
// the id. It never waits: a subscription whose buffer is full is ended with
// ErrSlow. An event with an invalid name is logged and dropped, and so is an
// event published after Close; Publish then returns 0.
func (h *Server) Publish(clientID string, ev api.Event) uint64 {
	if h.closed.Load() {
		return 0
	}
	body, err := encodeBody(ev.Name, ev.Data)
	if err != nil {
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "hub: event dropped",
			slog.String("client_id", clientID), slog.String("event", ev.Name), slog.Any("error", err))
		return 0
	}
	if h.relay != nil {
		return h.publishRelayed(clientID, body)
	}
	var slow []string
	var id uint64
	var delivered uint64
	for {
		t := h.topic(clientID)
		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			if h.closed.Load() {
				return 0
			}
			continue
		}
		t.last++
		id = t.last
		frame := stampID(body, id)
		t.push(frame, h.window, h.windowBytes)
		delivered, slow = t.offer(frame, id)
		t.mu.Unlock()
		break
	}
	h.published.Add(1)
	h.delivered.Add(delivered)
	h.slowOnes(clientID, slow)
	return id
}

// Subscribe opens a subscription to the client's events, resuming after
// lastEventID, the Last-Event-ID the client sent ("" for none). Under the
// topic's lock, so that no event falls between the replay and the live
// channel or comes through both, it takes:
//   - the replay: the frames after lastEventID still in the window;
//   - the gap: when lastEventID is not an id of ours, is older than the
//     window's oldest event minus one, or is newer than the newest id (an id
//     from another life of the process), the whole window is replayed and
//     Gap reports it;
//   - the live channel, which gets every later event.
//
// An empty lastEventID means no replay and no gap. After Close, the
// subscription returned has already ended with ErrShutdown.
func (h *Server) Subscribe(clientID, sessionID, lastEventID string) *Subscription {
	return h.SubscribeKey(clientID, sessionID, lastEventID, 0)
}

// SubscribeKey is Subscribe for a stream opened with a session of the
// client's key version keyVersion (0: a stream not tied to a key, the
// admin's), which KickStale ends once the client's key is another.
func (h *Server) SubscribeKey(clientID, sessionID, lastEventID string, keyVersion int64) *Subscription {
	s := &Subscription{
		id:      newConnectionID(),
		session: sessionID,
		key:     keyVersion,
		ch:      make(chan []byte, h.buffer),
		done:    make(chan struct{}),
		idx:     -1,
	}
	if h.closed.Load() {
		s.end(ErrShutdown)
		return s
	}
	for {
		t := h.topic(clientID)
		t.mu.Lock()
		if t.dead || h.closed.Load() {
			t.mu.Unlock()
			if h.closed.Load() {
				s.end(ErrShutdown)
				return s
			}
			continue
		}
		if h.relay != nil {
			if err := h.resumeShared(t, s, clientID, lastEventID); err != nil {
				t.mu.Unlock()
				h.log.LogAttrs(context.Background(), slog.LevelWarn, "hub: shared event log unavailable; stream refused",
					slog.String("client_id", clientID), slog.Any("error", err))
				s.end(ErrUnavailable)
				return s
			}
		} else {
			s.lastID = t.last
			var first uint64
			s.replay, first, s.gap = t.resume(lastEventID)
			s.resumeID = first - 1
			if s.gap {
				if len(lastEventID) > maxEchoedID {
					lastEventID = lastEventID[:maxEchoedID]
				}
				s.gapEvent = api.GapEvent{LastEventID: lastEventID, FirstEventID: strconv.FormatUint(first, 10)}
			}
		}
		s.hub = h
		s.topic = t
		t.add(s)
		t.mu.Unlock()
		break
	}
	h.subscribers.Add(1)
	if s.gap {
		h.gaps.Add(1)
	}
	return s
}

// Kick ends the live subscriptions of a client's session, or all of the
// client's when sessionID is "", with reason (ErrKicked when nil): at logout
// (ErrLoggedOut), key rotation and client deletion (ErrClientDeleted). The
// client's window is kept.
func (h *Server) Kick(clientID, sessionID string, reason error) {
	if reason == nil {
		reason = ErrKicked
	}
	if h.relay != nil {
		h.control(Control{Op: OpKick, ClientID: clientID, SessionID: sessionID, Reason: reasonName(reason)})
		return
	}
	h.kickLocal(clientID, sessionID, reason)
}

// kickLocal is Kick on this hub's own subscriptions.
func (h *Server) kickLocal(clientID, sessionID string, reason error) {
	h.kickWhere(clientID, reason, func(s *Subscription) bool { return sessionID == "" || s.session == sessionID })
}

// kickWhere ends, with reason, this hub's subscriptions of the client for
// which match holds.
func (h *Server) kickWhere(clientID string, reason error, match func(*Subscription) bool) {
	t := h.lookup(clientID)
	if t == nil {
		return
	}
	t.mu.Lock()
	n := t.kickIf(match, reason)
	t.mu.Unlock()
	h.subscribers.Add(-int64(n))
}

// KickStale ends, with ErrKicked, the client's live subscriptions opened
// with a key version other than keyVersion (those not tied to a key stay):
// the key was rotated by another process, which the caller noticed in the
// store.
func (h *Server) KickStale(clientID string, keyVersion int64) {
	if h.relay != nil {
		h.control(Control{Op: OpKickStale, ClientID: clientID, KeyVersion: keyVersion})
		return
	}
	h.kickStaleLocal(clientID, keyVersion)
}

// kickStaleLocal is KickStale on this hub's own subscriptions.
func (h *Server) kickStaleLocal(clientID string, keyVersion int64) {
	h.kickWhere(clientID, ErrKicked, func(s *Subscription) bool { return s.key != 0 && s.key != keyVersion })
}

// Watched returns the ids of the clients that have live subscriptions now.
func (h *Server) Watched() []string {
	var ids []string
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for id, t := range sh.topics {
			t.mu.Lock()
			if len(t.subs) > 0 {
				ids = append(ids, id)
			}
			t.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return ids
}

// Forget ends all the client's subscriptions with ErrClientDeleted and drops
// its topic, window included: the client was deleted.
func (h *Server) Forget(clientID string) {
	if h.relay != nil {
		h.control(Control{Op: OpForget, ClientID: clientID})
		return
	}
	h.forgetLocal(clientID)
}

// forgetLocal is Forget on this hub's own subscriptions and window.
func (h *Server) forgetLocal(clientID string) {
	sh := h.shard(clientID)
	sh.mu.Lock()
	t := sh.topics[clientID]
	delete(sh.topics, clientID)
	sh.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.dead = true
	n := t.kick("", ErrClientDeleted)
	t.dropWindow()
	t.mu.Unlock()
	h.subscribers.Add(-int64(n))
}

// Close ends every subscription with ErrShutdown and drops every topic: the
// server is shutting down. Later Subscribe calls return ended subscriptions
// and later Publish calls do nothing. Close is idempotent.
func (h *Server) Close() {
	if h.closed.Swap(true) {
		return
	}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		topics := sh.topics
		sh.topics = make(map[string]*topic)
		sh.mu.Unlock()
		for _, t := range topics {
			t.mu.Lock()
			t.dead = true
			n := t.kick("", ErrShutdown)
			t.dropWindow()
			t.mu.Unlock()
			h.subscribers.Add(-int64(n))
		}
	}
}

// Stats returns the hub's counters.
func (h *Server) Stats() Stats {
	return Stats{
		Published:   h.published.Load(),
		Delivered:   h.delivered.Load(),
		DroppedSlow: h.droppedSlow.Load(),
		Gaps:        h.gaps.Load(),
		Subscribers: h.subscribers.Load(),
	}
}

func (h *Server) shard(clientID string) *shard {
	return &h.shards[maphash.String(h.seed, clientID)%shardCount]
}

// lookup returns the client's topic, or nil.
func (h *Server) lookup(clientID string) *topic {
	sh := h.shard(clientID)
	sh.mu.RLock()
	t := sh.topics[clientID]
	sh.mu.RUnlock()
	return t
}

// topic returns the client's topic, creating it when needed.
func (h *Server) topic(clientID string) *topic {
	sh := h.shard(clientID)
	sh.mu.RLock()
	t := sh.topics[clientID]
	sh.mu.RUnlock()
	if t != nil {
		return t
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t = sh.topics[clientID]; t == nil {
		t = &topic{last: h.base}
		if h.relay != nil {
			// The relay gives the ids; this is the newest delivered here.
			t.last = 0
		}
		sh.topics[clientID] = t
	}
	return t
}

// push keeps frame as the newest of the window, first letting go of the
// oldest frames while the window holds window frames or frame would take it
// over maxBytes.
func (t *topic) push(frame []byte, window, maxBytes int) {
	for t.n > 0 && (t.n >= window || t.size+len(frame) > maxBytes) {
		t.size -= len(t.ring[t.start])
		t.ring[t.start] = nil
		t.start = (t.start + 1) % len(t.ring)
		t.n--
	}
	if t.n == len(t.ring) {
		// Full: grow (at most to window), oldest first again.
		ring := make([][]byte, t.n, min(max(2*t.n, 4), window))
		for i := range ring {
			ring[i] = t.ring[(t.start+i)%len(t.ring)]
		}
		t.ring, t.start = ring[:cap(ring)], 0
	}
	t.ring[(t.start+t.n)%len(t.ring)] = frame
	t.n++
	t.size += len(frame)
}

// dropWindow lets the window go.
func (t *topic) dropWindow() { t.ring, t.start, t.n, t.size = nil, 0, 0, 0 }

// oldest is the id of the window's oldest frame, last+1 when it is empty.
// The window never holds more frames than ids were given since base, so
// oldest-1 never wraps below 0.
func (t *topic) oldest() uint64 { return t.last - uint64(t.n) + 1 }

// resume works out what a subscription resuming after lastEventID gets: the
// frames to replay, the id of the first frame it will receive (replayed or
// live), and whether events were lost in between.
func (t *topic) resume(lastEventID string) (replay [][]byte, first uint64, gap bool) {
	if lastEventID == "" {
		return nil, t.last + 1, false
	}
	oldest := t.oldest()
	after, ok := ParseEventID(lastEventID)
	if !ok || after > t.last || after < oldest-1 {
		return t.since(oldest - 1), oldest, true
	}
	return t.since(after), after + 1, false
}

// since copies out the window's frames with ids greater than after, which
// must be at least oldest()-1.
func (t *topic) since(after uint64) [][]byte {
	skip := int(after - (t.oldest() - 1))
	n := t.n - skip
	if n <= 0 {
		return nil
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = t.ring[(t.start+skip+i)%len(t.ring)]
	}
	return out
}

// offer hands frame, event id (0: none), to every subscription that does
// not have it yet, without waiting: one whose buffer is full is detached
// and ended with ErrSlow. It returns how many took the frame and the
// connection ids of those ended. t.mu held.
func (t *topic) offer(frame []byte, id uint64) (delivered uint64, slow []string) {
	for i := 0; i < len(t.subs); {
		s := t.subs[i]
		if id != 0 && id <= s.lastID {
			i++
			continue
		}
		select {
		case s.ch <- frame:
			delivered++
			i++
		default:
			t.remove(s) // moves the last subscription to i
			s.end(ErrSlow)
			slow = append(slow, s.id)
		}
	}
	return delivered, slow
}

func (t *topic) add(s *Subscription) {
	s.idx = len(t.subs)
	t.subs = append(t.subs, s)
}

// remove detaches s, moving the last subscription into its place.
func (t *topic) remove(s *Subscription) {
	i := s.idx
	last := len(t.subs) - 1
	t.subs[i] = t.subs[last]
	t.subs[i].idx = i
	t.subs[last] = nil
	t.subs = t.subs[:last]
	s.idx = -1
}

// kick ends the subscriptions of sessionID ("" for all) with reason and
// returns how many it ended.
func (t *topic) kick(sessionID string, reason error) int {
	return t.kickIf(func(s *Subscription) bool { return sessionID == "" || s.session == sessionID }, reason)
}

// kickIf ends the subscriptions for which match holds with reason and
// returns how many it ended. t.mu held.
func (t *topic) kickIf(match func(*Subscription) bool, reason error) int {
	n := 0
	for i := 0; i < len(t.subs); {
		s := t.subs[i]
		if !match(s) {
			i++
			continue
		}
		t.remove(s)
		s.end(reason)
		n++
	}
	if len(t.subs) == 0 {
		t.subs = nil // let a client's burst of connections be collected
	}
	return n
}
