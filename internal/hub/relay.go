package hub

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Relay shares a hub's events with the hubs of other gateway replicas
// (redisstore.Events keeps them in Redis). With a Relay, a client's event
// ids are one sequence across every replica and its replay window is the
// shared one: Publish hands the event to the relay, which gives it its id,
// keeps it and sends it to every replica's hub, this one included, through
// Deliver; Subscribe resumes from the shared window; Kick, KickStale and
// Forget reach the streams of every replica through Control. A hub without
// a Relay keeps all of that in its own memory, as one process needs.
type Relay interface {
	// Append gives body (an event encoded without its id line) the client's
	// next id, keeps it in the client's window and sends it to every
	// replica's Deliver, and returns the id.
	Append(ctx context.Context, clientID string, body []byte) (uint64, error)
	// Window returns the client's newest event id and the events of its
	// window with their ids, oldest first.
	Window(ctx context.Context, clientID string) (last uint64, events []RelayedEvent, err error)
	// Control sends c to every replica's Apply, this one's included.
	Control(ctx context.Context, c Control) error
	// Forget drops the client's window and id sequence (the client was
	// deleted).
	Forget(ctx context.Context, clientID string) error
}

// BatchRelay is a Relay that appends several events in one round trip, in
// the order given; Post uses it when the Relay offers it.
type BatchRelay interface {
	Relay
	// AppendBatch appends each event as Append does, in order, and returns
	// one error (nil when appended) per event.
	AppendBatch(ctx context.Context, events []PendingEvent) []error
}

// PendingEvent is an event Post has handed to the Relay: the client and the
// body (the SSE frame without its id line).
type PendingEvent struct {
	ClientID string
	Body     []byte
}

// RelayedEvent is an event as a Relay keeps and delivers it: its id and its
// body (the SSE frame without its id line).
type RelayedEvent struct {
	ID   uint64
	Body []byte
}

// Control is a change to every replica's streams of a client, sent through
// the Relay: a Kick (of a session, or of every stream of the client), a
// KickStale, or a Forget.
type Control struct {
	Op       ControlOp
	ClientID string
	// SessionID is the session a kick ends ("" for every stream of the
	// client).
	SessionID string
	// KeyVersion is the key version that a stale kick leaves open.
	KeyVersion int64
	// Reason is why a kick ends the streams (reasonLoggedOut, ...).
	Reason string
}

// ControlOp names what a Control does.
type ControlOp string

// The Control operations.
const (
	OpKick      ControlOp = "kick"
	OpKickStale ControlOp = "stale"
	OpForget    ControlOp = "forget"
)

// ErrUnavailable: the shared state (the Relay) could not be reached when the
// subscription opened; the stream should answer 503 and the client retry.
var ErrUnavailable = errors.New("hub: shared event log unavailable")

// relayTimeout bounds each call to the Relay.
const relayTimeout = 2 * time.Second

// Reasons carried by a Control, and the errors they stand for.
var kickReasons = map[string]error{
	"kicked":  ErrKicked,
	"logout":  ErrLoggedOut,
	"deleted": ErrClientDeleted,
}

func reasonName(err error) string {
	for name, e := range kickReasons {
		if e == err {
			return name
		}
	}
	return "kicked"
}

// Deliver hands an event the Relay sent to this replica's live subscriptions
// of the client, as Publish does without a Relay. Subscriptions that already
// have the event (from the window they resumed with, or earlier) skip it,
// and so does a replica that delivered it already. A client without
// subscriptions here costs nothing.
func (h *Server) Deliver(clientID string, ev RelayedEvent) {
	if h.closed.Load() || ev.ID == 0 {
		return
	}
	t := h.lookup(clientID)
	if t == nil {
		return
	}
	h.fanOut(clientID, t, ev.ID, frameOf(ev))
}

// frameOf stamps a relayed event's id on a copy of its body.
func frameOf(ev RelayedEvent) []byte {
	buf := make([]byte, idHeadroom, idHeadroom+len(ev.Body))
	buf = append(buf, ev.Body...)
	return stampID(buf, ev.ID)
}

// fanOut hands frame, the client's event id, to the topic's subscriptions
// that do not have it yet, ending those whose buffer is full. The relay
// sends a client's events in id order; an id this replica has delivered
// already (a catch-up racing the live channel) is skipped.
func (h *Server) fanOut(clientID string, t *topic, id uint64, frame []byte) {
	t.mu.Lock()
	if t.dead || id <= t.last {
		t.mu.Unlock()
		return
	}
	t.last = id
	delivered, slow := t.offer(frame, id)
	t.mu.Unlock()
	h.delivered.Add(delivered)
	h.slowOnes(clientID, slow)
}

// slowOnes counts and logs the subscriptions a publish ended as slow.
func (h *Server) slowOnes(clientID string, slow []string) {
	n := len(slow)
	if n == 0 {
		return
	}
	h.droppedSlow.Add(uint64(n))
	h.subscribers.Add(-int64(n))
	for _, connID := range slow {
		h.log.LogAttrs(context.Background(), slog.LevelInfo, "hub: slow subscriber disconnected",
			slog.String("client_id", clientID), slog.String("connection_id", connID))
	}
}

// publishRelayed is Publish with a Relay: the event reaches this replica's
// subscriptions through Deliver, like every other replica's. When the relay
// cannot take it, the event still goes to this replica's streams, without an
// id (it cannot be resumed), and Publish returns 0.
func (h *Server) publishRelayed(clientID string, body []byte) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	id, err := h.relay.Append(ctx, clientID, body[idHeadroom:])
	if err == nil {
		h.published.Add(1)
		return id
	}
	h.appendFailed(clientID, body[idHeadroom:len(body):len(body)], err)
	return 0
}

// appendFailed gives an event the relay could not take (frame: its body
// without an id) to this replica's streams only.
func (h *Server) appendFailed(clientID string, frame []byte, err error) {
	h.log.LogAttrs(context.Background(), slog.LevelWarn, "hub: shared event log unavailable; event given to this replica's streams only",
		slog.String("client_id", clientID), slog.Any("error", err))
	if t := h.lookup(clientID); t != nil {
		t.mu.Lock()
		_, slow := t.offer(frame, 0)
		t.mu.Unlock()
		h.slowOnes(clientID, slow)
	}
}

// Post is Publish for a caller that needs no id back (the bridge): with a
// Relay it does not wait for the relay. Events posted are appended in the
// order they were posted, by one goroutine at a time that hands the relay
// all those waiting at once (one round trip with a BatchRelay), so that a
// burst of frames from the bus costs one round trip, not one each, and the
// bus reader never waits for Redis. Without a Relay it is Publish.
func (h *Server) Post(clientID string, ev api.Event) {
	if h.relay == nil {
		h.Publish(clientID, ev)
		return
	}
	h.post(clientID, ev, nil)
}

// PostAndWait is Post that returns once the event is appended (or given to
// this replica's streams only, when the relay cannot take it): in order
// with what was posted before it, and before anything posted after it
// returns. The bridge uses it for a frame it claimed, whose order against
// the other replicas' appends is decided by when it is appended.
func (h *Server) PostAndWait(clientID string, ev api.Event) {
	if h.relay == nil {
		h.Publish(clientID, ev)
		return
	}
	h.postMu.Lock()
	idle := !h.posting
	// Idle: hold the queue; what is posted meanwhile waits behind this one.
	h.posting = true
	h.postMu.Unlock()
	if idle {
		// Nothing waits for the relay: append at once, from this goroutine.
		h.Publish(clientID, ev)
		h.postMu.Lock()
		if len(h.posts) > 0 {
			go h.drainPosts()
		} else {
			h.posting = false
		}
		h.postMu.Unlock()
		return
	}
	done := make(chan struct{})
	if h.post(clientID, ev, done) {
		<-done
	}
}

// posted is an event waiting for the relay, and whom to tell once it went.
type posted struct {
	ev   PendingEvent
	done chan struct{} // closed once appended; nil: nobody waits
}

// post queues ev for the relay and reports whether it did; done, if not
// nil, is closed once the event went (or was dropped at Close).
func (h *Server) post(clientID string, ev api.Event, done chan struct{}) bool {
	if h.closed.Load() {
		return false
	}
	body, err := encodeBody(ev.Name, ev.Data)
	if err != nil {
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "hub: event dropped",
			slog.String("client_id", clientID), slog.String("event", ev.Name), slog.Any("error", err))
		return false
	}
	h.postMu.Lock()
	h.posts = append(h.posts, posted{ev: PendingEvent{ClientID: clientID, Body: body[idHeadroom:len(body):len(body)]}, done: done})
	start := !h.posting
	h.posting = true
	h.postMu.Unlock()
	if start {
		go h.drainPosts()
	}
	return true
}

// drainPosts appends what was posted, batch after batch, until nothing is
// left. After Close it drops what is left, releasing whoever waits.
func (h *Server) drainPosts() {
	for {
		h.postMu.Lock()
		batch := h.posts
		h.posts = nil
		if len(batch) == 0 || h.closed.Load() {
			h.posting = false
			h.postMu.Unlock()
			for _, p := range batch {
				if p.done != nil {
					close(p.done)
				}
			}
			return
		}
		h.postMu.Unlock()
		events := make([]PendingEvent, len(batch))
		for i, p := range batch {
			events[i] = p.ev
		}
		ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
		var errs []error
		if br, ok := h.relay.(BatchRelay); ok {
			errs = br.AppendBatch(ctx, events)
		} else {
			errs = make([]error, len(events))
			for i, ev := range events {
				_, errs[i] = h.relay.Append(ctx, ev.ClientID, ev.Body)
			}
		}
		cancel()
		for i, p := range batch {
			if i < len(errs) && errs[i] == nil {
				h.published.Add(1)
			} else {
				err := errors.New("no answer")
				if i < len(errs) {
					err = errs[i]
				}
				h.appendFailed(p.ev.ClientID, p.ev.Body, err)
			}
			if p.done != nil {
				close(p.done)
			}
		}
	}
}

// resumeShared fills s's replay, gap and ids from the relay's window, as
// topic.resume does from the hub's own. The caller holds t.mu, so that no
// delivery to t falls between the window read and s joining t; one that
// arrived before is in the window, and s skips any the window already had.
func (h *Server) resumeShared(t *topic, s *Subscription, clientID, lastEventID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	last, events, err := h.relay.Window(ctx, clientID)
	if err != nil {
		return err
	}
	s.lastID = last
	if lastEventID == "" {
		s.resumeID = last
		return nil
	}
	oldest := last + 1
	if len(events) > 0 {
		oldest = events[0].ID
	}
	after, ok := ParseEventID(lastEventID)
	if !ok || after > last || after+1 < oldest {
		s.gap = true
		after = oldest - 1
		if len(lastEventID) > maxEchoedID {
			lastEventID = lastEventID[:maxEchoedID]
		}
		s.gapEvent = api.GapEvent{LastEventID: lastEventID, FirstEventID: strconv.FormatUint(oldest, 10)}
	}
	s.resumeID = after
	for _, ev := range events {
		if ev.ID > after {
			s.replay = append(s.replay, frameOf(ev))
		}
	}
	return nil
}

// control sends c through the relay; this replica applies it at once too,
// so that its own streams end even when the relay is down.
func (h *Server) control(c Control) {
	h.Apply(c)
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	var err error
	if c.Op == OpForget {
		err = h.relay.Forget(ctx, c.ClientID)
	}
	if err == nil {
		err = h.relay.Control(ctx, c)
	}
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "hub: could not tell the other replicas",
			slog.String("op", string(c.Op)), slog.String("client_id", c.ClientID), slog.Any("error", err))
	}
}

// Delivered returns the newest event id this replica delivered to the
// client's streams, and whether it has a stream of the client: a Relay that
// lost its channel for a while catches up from there.
func (h *Server) Delivered(clientID string) (uint64, bool) {
	t := h.lookup(clientID)
	if t == nil {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last, len(t.subs) > 0
}

// Apply carries out a Control on this replica's streams (the Relay calls it
// for every Control, including this replica's own, which is then a no-op).
func (h *Server) Apply(c Control) {
	switch c.Op {
	case OpKick:
		reason, ok := kickReasons[c.Reason]
		if !ok {
			reason = ErrKicked
		}
		h.kickLocal(c.ClientID, c.SessionID, reason)
	case OpKickStale:
		h.kickStaleLocal(c.ClientID, c.KeyVersion)
	case OpForget:
		h.forgetLocal(c.ClientID)
	}
}
