package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/middleware"
)

// streamIdentity authenticates a stream request: a Bearer token (client or
// admin), else a single-use ?ticket=, else the session cookie. Only GET
// reaches here, so the cookie cannot be used to change state. A ticket is
// only looked at here, and returned: the caller redeems it once it knows
// the stream is the ticket's client's, so that a ticket presented on
// another client's stream is refused without being spent.
func (s *Server) streamIdentity(r *http.Request) (id api.Identity, ticket string, err error) {
	ctx := r.Context()
	if tok, ok := middleware.BearerToken(r); ok {
		if s.deps.Sessions.IsAdmin(tok) {
			return api.Identity{Admin: true}, "", nil
		}
		id, err := s.deps.Sessions.VerifySession(ctx, tok)
		return id, "", err
	}
	if t := r.URL.Query().Get("ticket"); t != "" {
		id, err := s.deps.Sessions.PeekTicket(ctx, t)
		return id, t, err
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		id, err := s.deps.Sessions.VerifySession(ctx, c.Value)
		return id, "", err
	}
	return api.Identity{}, "", api.Errorf(api.EUNAUTHORIZED, "a Bearer token, a stream ticket or the session cookie is required")
}

// handleEvents is the client's Server-Sent-Events stream (Mercure's recipe):
// every refusal is a real status before the stream starts; then a retry
// hint, the ready event, a gap event and the replay when Last-Event-ID asks
// for it, and a loop over request end, server shutdown, heartbeat, token
// expiry and the subscription's events, each write under a short deadline.
//
// Over HTTP/1.x the connection is taken over (hijacked) once the stream
// starts, so that an idle stream costs only what it needs: its socket, its
// subscription and two small goroutines (hijackedStream), instead of a
// request handler's goroutine, its buffers and its request (about 40 KiB
// against 10; docs/PERFORMANCE.md). HTTP/2 streams, and writers that cannot
// be taken over, are served by the handler itself (serveStream).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	id, ticket, err := s.streamIdentity(r)
	if err != nil {
		if s.cfg.AuthFailed != nil {
			s.cfg.AuthFailed(r, err)
		}
		return err
	}
	ctx := middleware.SettleIdentity(r.Context(), id)
	clientID, err := s.deps.Clients.Resolve(ctx, chi.URLParam(r, "client"))
	if err != nil {
		return err
	}
	if !id.Admin && id.ClientID != clientID {
		return api.Errorf(api.EFORBIDDEN, "this is another client's stream")
	}
	if ticket != "" {
		// Spent now, once: of two uses at once, one gets the stream.
		if id, err = s.deps.Sessions.RedeemTicket(ctx, ticket); err != nil {
			if s.cfg.AuthFailed != nil {
				s.cfg.AuthFailed(r, err)
			}
			return err
		}
		if id.ClientID != clientID {
			return api.Errorf(api.EFORBIDDEN, "this is another client's stream")
		}
	}
	select {
	case <-s.closing:
		return &api.Error{Code: api.EUNAVAILABLE, Detail: "the gateway is shutting down", RetryAfter: s.cfg.Retry}
	default:
	}
	lastEventID := r.Header.Get("Last-Event-ID")
	if len(lastEventID) > 64 {
		return api.Errorf(api.EINVALID, "Last-Event-ID is too long")
	}
	release, err := s.acquireStream(clientID, middleware.ClientAddr(r))
	if err != nil {
		return err
	}
	// The stream is tied to the key its session was made with, so that
	// the key's rotation ends it, however it is noticed; the admin's is
	// tied to none.
	key := id.KeyVersion
	if id.Admin {
		key = 0
	}
	sub := s.deps.Streams.SubscribeKey(clientID, id.SessionID, lastEventID, key)
	if errors.Is(sub.Err(), hub.ErrUnavailable) {
		// Replicas share their streams' events through Redis, which is
		// unreachable: no stream can promise its replay now.
		release()
		return &api.Error{Code: api.EUNAVAILABLE, Detail: "the gateway's shared state is unreachable; try again shortly", RetryAfter: s.cfg.Retry}
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	opening, ok := s.opening(clientID, id.SessionID, sub)
	if !ok {
		sub.Close()
		release()
		return nil
	}
	if r.ProtoMajor == 1 {
		if st, ok := s.hijack(w, opening, sub, release, id.ExpiresAt); ok {
			if st != nil {
				go st.run()
			}
			return nil
		}
	}
	defer release()
	defer sub.Close()
	s.serveStream(w, r, opening, sub, id.ExpiresAt)
	return nil
}

// opening is what a stream starts with: the retry hint, ready (carrying the
// id just before the first frame this connection gets, so a stream cut
// during the replay resumes from there), the gap event when events were
// lost, and the replay.
func (s *Server) opening(clientID, sessionID string, sub *hub.Subscription) ([]byte, bool) {
	var session *string
	if sessionID != "" {
		session = &sessionID
	}
	ready, err := json.Marshal(api.ReadyEvent{ClientID: clientID, SessionID: session, ConnectionID: sub.ID()})
	if err != nil {
		return nil, false
	}
	first, err := hub.EncodeEvent(sub.ResumeID(), api.EventReady, ready)
	if err != nil {
		return nil, false
	}
	out := append(hub.EncodeRetry(s.cfg.Retry), first...)
	if gap, g := sub.Gap(); gap {
		data, _ := json.Marshal(g)
		// The gap carries the same id as ready: it must not move the client's
		// Last-Event-ID past frames it has not received.
		if ev, err := hub.EncodeEvent(sub.ResumeID(), api.EventGap, data); err == nil {
			out = append(out, ev...)
		}
	}
	for _, f := range sub.Replay() {
		out = append(out, f...)
	}
	return out, true
}

// serveStream runs the stream on the handler's goroutine, through the
// ResponseWriter (HTTP/2, or a writer that cannot be hijacked).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, opening []byte, sub *hub.Subscription, expiresAt time.Time) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := s.write(rc, w, opening); err != nil {
		return
	}
	heartbeat := time.NewTimer(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !expiresAt.IsZero() {
		t := time.NewTimer(time.Until(expiresAt))
		defer t.Stop()
		expiry = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			// What was published before (the done events of the utterances
			// ended at shutdown) goes out before the hint to reconnect.
			select {
			case f := <-sub.Events():
				if err := s.writeBatch(rc, w, f, sub.Events()); err != nil {
					return
				}
			default:
			}
			_ = s.write(rc, w, s.shutdownHint())
			return
		case <-expiry:
			_ = s.write(rc, w, hub.EncodeComment("the session expired; log in again"))
			return
		case <-sub.Done():
			_ = s.write(rc, w, hub.EncodeComment(subEndReason(sub)))
			return
		case <-heartbeat.C:
			if err := s.write(rc, w, hub.EncodeComment("keepalive")); err != nil {
				return
			}
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		case f := <-sub.Events():
			if err := s.writeBatch(rc, w, f, sub.Events()); err != nil {
				return
			}
			// Go 1.23 timers: Reset needs no Stop and drain first.
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		}
	}
}

// shutdownHint ends a stream at shutdown: a retry hint spread over a window,
// so that a fleet's reconnections do not all land on the next gateway at
// once, and a comment saying why.
func (s *Server) shutdownHint() []byte {
	hint := s.cfg.Retry + rand.N(5*s.cfg.Retry)
	return append(hub.EncodeRetry(hint), hub.EncodeComment("the gateway is shutting down; reconnect")...)
}

func subEndReason(sub *hub.Subscription) string {
	if err := sub.Err(); err != nil {
		return streamEndReason(err)
	}
	return "stream closed"
}

// heartbeatGrid is the coarsest grid heartbeats are aligned to.
const heartbeatGrid = time.Second

// heartbeatDelay is how long a stream that just wrote waits before its
// keepalive: at most every, cut down so that the keepalive falls on a grid
// of every/8 (at most a second). Idle streams then wake together, a few
// times a second in all, instead of each on its own timer: one wake-up of
// the process for a burst of heartbeats rather than one each (20,000 idle
// streams otherwise wake it 1,300 times a second).
func heartbeatDelay(every time.Duration, now time.Time) time.Duration {
	grid := min(every/8, heartbeatGrid)
	if grid <= 0 {
		return every
	}
	due := now.Add(every).Truncate(grid)
	if d := due.Sub(now); d > every-grid {
		return d
	}
	return every
}

// hijackedStream is a stream whose connection was taken over from net/http
// once its response began: the handler has returned, so the request, its
// buffers and the handler's deep stack are gone, and the stream lives on in
// run, with watch reading the connection to learn when the client leaves.
// The response is the same HTTP/1.1 200 with chunked encoding that net/http
// would have written; the connection closes when the stream ends.
type hijackedStream struct {
	s         *Server
	conn      net.Conn
	sub       *hub.Subscription
	release   func()
	expiresAt time.Time
}

// hijack takes the connection over and writes the response head and the
// opening. ok is false when the writer cannot be hijacked (nothing was
// written then); st is nil when the stream already failed (and was cleaned
// up).
func (s *Server) hijack(w http.ResponseWriter, opening []byte, sub *hub.Subscription, release func(), expiresAt time.Time) (st *hijackedStream, ok bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	// The request had no body; anything the client sent after it (a
	// pipelined request) is dropped with the connection at the end.
	_ = conn.SetDeadline(time.Time{})
	st = &hijackedStream{s: s, conn: conn, sub: sub, release: release, expiresAt: expiresAt}
	if err := st.write(appendChunk(responseHead(w.Header()), opening)); err != nil {
		st.close()
		return nil, true
	}
	return st, true
}

// responseHead is the status line and headers of a stream's response, as
// net/http writes them for a streamed body (the middleware's headers
// included).
func responseHead(h http.Header) []byte {
	h.Del("Content-Length")
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// appendChunk appends data as one HTTP/1.1 chunk (RFC 9112, 7.1).
func appendChunk(dst, data []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(len(data)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// lastChunk ends a chunked body.
const lastChunk = "0\r\n\r\n"

// run is the stream's loop, Mercure's select over the client leaving,
// server shutdown, token expiry, the subscription's end, the heartbeat and
// the events.
func (st *hijackedStream) run() {
	defer st.close()
	s := st.s
	gone := make(chan struct{})
	go st.watch(gone)
	heartbeat := time.NewTimer(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !st.expiresAt.IsZero() {
		t := time.NewTimer(time.Until(st.expiresAt))
		defer t.Stop()
		expiry = t.C
	}
	for {
		select {
		case <-gone:
			return
		case <-s.closing:
			// What was published before (the done events of the utterances
			// ended at shutdown) goes out before the hint to reconnect.
			select {
			case f := <-st.sub.Events():
				if st.writeBatch(f) != nil {
					return
				}
			default:
			}
			st.end(s.shutdownHint())
			return
		case <-expiry:
			st.end(hub.EncodeComment("the session expired; log in again"))
			return
		case <-st.sub.Done():
			st.end(hub.EncodeComment(subEndReason(st.sub)))
			return
		case <-heartbeat.C:
			if st.write(appendChunk(nil, hub.EncodeComment("keepalive"))) != nil {
				return
			}
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		case f := <-st.sub.Events():
			if st.writeBatch(f) != nil {
				return
			}
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		}
	}
}

// watch reads the connection until it fails. An event-stream client sends
// nothing after its request, so this is how the stream learns at once that
// the client went away (closing the connection ends it too).
func (st *hijackedStream) watch(gone chan<- struct{}) {
	defer close(gone)
	buf := make([]byte, 64)
	for {
		if _, err := st.conn.Read(buf); err != nil {
			return
		}
	}
}

// writeBatch writes f and the frames queued behind it (at most maxBatch) as
// one chunk, in one system call.
func (st *hijackedStream) writeBatch(f []byte) error {
	bp := chunkBuffers.Get().(*[]byte)
	defer putChunkBuffer(bp)
	more := st.sub.Events()
	if len(more) == 0 {
		*bp = appendChunk((*bp)[:0], f)
		return st.write(*bp)
	}
	frames := [maxBatch][]byte{f}
	n, size := 1, len(f)
collect:
	for n < maxBatch {
		select {
		case g := <-more:
			frames[n] = g
			n++
			size += len(g)
		default:
			break collect
		}
	}
	b := strconv.AppendUint((*bp)[:0], uint64(size), 16)
	b = append(b, "\r\n"...)
	for _, g := range frames[:n] {
		b = append(b, g...)
	}
	*bp = append(b, "\r\n"...)
	return st.write(*bp)
}

// chunkBuffers holds the buffers streams build their chunks in, shared by
// all streams: an idle stream holds none, a busy one does not allocate one
// per write.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// putChunkBuffer returns a buffer to chunkBuffers, unless a large batch grew
// it past what is worth keeping.
func putChunkBuffer(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		chunkBuffers.Put(bp)
	}
}

// end writes the stream's last words and the end of the body.
func (st *hijackedStream) end(last []byte) {
	_ = st.write(append(appendChunk(nil, last), lastChunk...))
}

// write sends b under a short write deadline, so a client that stopped
// reading cannot hold the stream forever.
func (st *hijackedStream) write(b []byte) error {
	_ = st.conn.SetWriteDeadline(time.Now().Add(st.s.cfg.WriteTimeout))
	if _, err := st.conn.Write(b); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	return nil
}

// close ends the stream: the connection (which ends watch), the
// subscription and its place under the caps.
func (st *hijackedStream) close() {
	_ = st.conn.Close()
	st.sub.Close()
	st.release()
}

// acquireStream takes a place under the per-client and per-address caps on
// open streams, so that one client or one host cannot hold them all.
func (s *Server) acquireStream(clientID string, addr netip.Addr) (release func(), err error) {
	l := s.deps.Limits
	tooMany := &api.Error{Code: api.ERATELIMITED, Detail: "too many open streams", RetryAfter: 5 * time.Second}
	relClient, relAddr := func() {}, func() {}
	if l.StreamsPerClient != nil {
		var ok bool
		if relClient, ok = l.StreamsPerClient.Acquire(clientID); !ok {
			return nil, tooMany
		}
	}
	if l.StreamsPerAddr != nil && addr.IsValid() {
		var ok bool
		if relAddr, ok = l.StreamsPerAddr.Acquire(addr.String()); !ok {
			relClient()
			return nil, tooMany
		}
	}
	return func() { relClient(); relAddr() }, nil
}

// streamEndReason says why the hub ended a subscription.
func streamEndReason(err error) string {
	switch {
	case errors.Is(err, hub.ErrSlow):
		return "the stream fell behind; reconnect with Last-Event-ID"
	case errors.Is(err, hub.ErrLoggedOut):
		return "logged out"
	case errors.Is(err, hub.ErrClientDeleted):
		return "the client was deleted"
	case errors.Is(err, hub.ErrShutdown):
		return "the gateway is shutting down; reconnect"
	default:
		return "the session ended"
	}
}

// maxBatch bounds how many queued frames one flush carries.
const maxBatch = 64

// writeBatch writes f and the frames already queued behind it (at most
// maxBatch), then flushes once: under load a burst of events (an
// utterance's replies arrive together) costs one system call instead of one
// each. Each frame is written whole; nothing waits for more frames.
func (s *Server) writeBatch(rc *http.ResponseController, w http.ResponseWriter, f []byte, more <-chan []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := w.Write(f); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	for n := 1; n < maxBatch; n++ {
		var g []byte
		select {
		case g = <-more:
		default:
			return rc.Flush()
		}
		if _, err := w.Write(g); err != nil {
			return fmt.Errorf("stream write: %w", err)
		}
	}
	return rc.Flush()
}

// write sends b and flushes it under a short write deadline, so a client that
// stopped reading cannot hold the handler forever.
func (s *Server) write(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	return rc.Flush()
}
