package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// for it, and one loop (stream) over request end, server shutdown,
// heartbeat, token expiry and the subscription's events, each write under a
// short deadline.
//
// Over HTTP/1.x the connection is taken over (hijacked) once the stream
// starts and the loop runs on a goroutine of its own (detach), so that an
// idle stream costs only what it needs: its socket, its subscription and two
// small goroutines, instead of a request handler's goroutine, its buffers
// and its request (13 KiB against 42; docs/PERFORMANCE.md). Its access log
// line and metrics come when it ends (middleware.Detach), and Wait waits for
// it at shutdown. HTTP/2 streams, and writers that cannot be taken over, run
// the same loop on the handler's goroutine, through the ResponseWriter.
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
		// Counted before the hijack, from when http.Server.Shutdown no
		// longer waits for the stream: Wait does.
		s.detached.add()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			s.detach(r, conn, w.Header(), opening, sub, release, id.ExpiresAt)
			return nil
		}
		s.detached.done()
	}
	defer release()
	defer sub.Close()
	w.WriteHeader(http.StatusOK)
	rw := responseStream{w: w, rc: http.NewResponseController(w)}
	if err := s.send(rw, opening); err != nil {
		return nil
	}
	s.stream(rw, r.Context().Done(), sub, id.ExpiresAt)
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

// stream is the one event-stream loop, run once the opening is out:
// Mercure's select over the client leaving (gone), server shutdown, token
// expiry, the subscription's end, the heartbeat and the events, writing
// through w, each batch of frames flushed at once.
func (s *Server) stream(w streamWriter, gone <-chan struct{}, sub *hub.Subscription, expiresAt time.Time) {
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
		case <-gone:
			return
		case <-s.closing:
			// What was published before (the done events of the utterances
			// ended at shutdown) goes out before the hint to reconnect.
			select {
			case f := <-sub.Events():
				if err := s.sendBatch(w, f, sub.Events()); err != nil {
					return
				}
			default:
			}
			_ = s.send(w, s.shutdownHint())
			return
		case <-expiry:
			_ = s.send(w, hub.EncodeComment("the session expired; log in again"))
			return
		case <-sub.Done():
			_ = s.send(w, hub.EncodeComment(subEndReason(sub)))
			return
		case <-heartbeat.C:
			if err := s.send(w, keepalive); err != nil {
				return
			}
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		case f := <-sub.Events():
			if err := s.sendBatch(w, f, sub.Events()); err != nil {
				return
			}
			// Go 1.23 timers: Reset needs no Stop and drain first.
			heartbeat.Reset(heartbeatDelay(s.cfg.Heartbeat, time.Now()))
		}
	}
}

// keepalive is the heartbeat's comment.
var keepalive = hub.EncodeComment("keepalive")

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

// streamWriter is what the stream loop writes through: frames are written
// whole, then flushed together, under the deadline set before them. The
// handler's ResponseWriter is one (responseStream); a connection taken over
// from net/http is the other (connStream).
type streamWriter interface {
	io.Writer
	// Flush sends what was written since the last Flush.
	Flush() error
	// SetWriteDeadline bounds the writes and the flush that follow.
	SetWriteDeadline(deadline time.Time) error
}

// responseStream writes a stream through the handler's ResponseWriter.
type responseStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (r responseStream) Write(b []byte) (int, error)        { return r.w.Write(b) }
func (r responseStream) Flush() error                       { return r.rc.Flush() }
func (r responseStream) SetWriteDeadline(d time.Time) error { return r.rc.SetWriteDeadline(d) }

// detach serves a stream whose connection was taken over from net/http, on
// a goroutine of its own: the handler then returns, so the request, its
// buffers and the handler's deep stack are gone, and the stream lives on in
// the loop, with watch reading the connection to learn when the client
// leaves. The response is the same HTTP/1.1 200 with chunked encoding that
// net/http would have written; the connection closes when the stream ends,
// and only then are its access log line written and Wait told (the caller
// counted the stream in s.detached).
func (s *Server) detach(r *http.Request, conn net.Conn, h http.Header, opening []byte, sub *hub.Subscription, release func(), expiresAt time.Time) {
	logged := middleware.Detach(r)
	// The request had no body; anything the client sent after it (a
	// pipelined request) is dropped with the connection at the end.
	_ = conn.SetDeadline(time.Time{})
	w := &connStream{conn: conn, head: responseHead(h)}
	end := func() {
		_ = conn.Close()
		sub.Close()
		release()
		logged(w.sent)
		s.detached.done()
	}
	// The opening is written here, on the handler's goroutine, whose stack
	// is already deep: the stream's own goroutine then starts idle and
	// stays small.
	if err := s.send(w, opening); err != nil {
		end()
		return
	}
	go func() {
		gone := make(chan struct{})
		go watch(conn, gone)
		s.stream(w, gone, sub, expiresAt)
		w.end(s.cfg.WriteTimeout)
		end()
	}()
}

// watch reads the connection until it fails. An event-stream client sends
// nothing after its request, so this is how a detached stream learns at
// once that the client went away (closing the connection ends it too).
func watch(conn net.Conn, gone chan<- struct{}) {
	defer close(gone)
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

// connStream writes a stream on a connection taken over from net/http: the
// response head first, then each flush as one HTTP/1.1 chunk (RFC 9112,
// 7.1), in one system call, built in a buffer shared by all streams (an
// idle stream holds none).
type connStream struct {
	conn net.Conn
	head []byte  // the response head, until the first flush
	buf  *[]byte // the chunk being built: chunkHeadRoom bytes, then the data
	sent int     // body bytes sent, for the access log
	err  error   // the first failed write: the stream is over
}

// chunkHeadRoom is room for the largest chunk-size line a chunk needs (8
// hex digits and CRLF), kept at the front of the chunk buffer.
const chunkHeadRoom = 10

// Write adds b to the chunk being built.
func (c *connStream) Write(b []byte) (int, error) {
	if c.buf == nil {
		c.buf = chunkBuffers.Get().(*[]byte)
		*c.buf = append((*c.buf)[:0], make([]byte, chunkHeadRoom)...)
	}
	*c.buf = append(*c.buf, b...)
	return len(b), nil
}

// Flush sends the chunk built since the last one (and the response head
// before the first).
func (c *connStream) Flush() error {
	if c.err != nil {
		return c.err
	}
	if c.buf == nil {
		return nil
	}
	bp := c.buf
	c.buf = nil
	defer putChunkBuffer(bp)
	size := len(*bp) - chunkHeadRoom
	var line [chunkHeadRoom]byte
	l := append(strconv.AppendUint(line[:0], uint64(size), 16), "\r\n"...)
	start := chunkHeadRoom - len(l)
	copy((*bp)[start:], l)
	*bp = append(*bp, "\r\n"...)
	out := (*bp)[start:]
	if c.head != nil {
		out = append(c.head, out...)
		c.head = nil
	}
	if _, err := c.conn.Write(out); err != nil {
		c.err = fmt.Errorf("stream write: %w", err)
		return c.err
	}
	c.sent += size
	return nil
}

// SetWriteDeadline bounds the next writes on the connection.
func (c *connStream) SetWriteDeadline(d time.Time) error { return c.conn.SetWriteDeadline(d) }

// end ends the chunked body, unless a write already failed (or the head
// never went out).
func (c *connStream) end(timeout time.Duration) {
	if c.err != nil || c.head != nil {
		return
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, _ = io.WriteString(c.conn, lastChunk)
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

// lastChunk ends a chunked body.
const lastChunk = "0\r\n\r\n"

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

// detachedStreams counts the streams running on goroutines of their own,
// for Wait.
type detachedStreams struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed when n falls back to 0
}

func (d *detachedStreams) add() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		d.none = make(chan struct{})
	}
	d.n++
}

func (d *detachedStreams) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n--; d.n == 0 {
		close(d.none)
	}
}

// wait returns once no stream is running, or with ctx's error.
func (d *detachedStreams) wait(ctx context.Context) error {
	d.mu.Lock()
	if d.n == 0 {
		d.mu.Unlock()
		return nil
	}
	none := d.none
	d.mu.Unlock()
	select {
	case <-none:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

// sendBatch writes f and the frames already queued behind it (at most
// maxBatch), then flushes once: under load a burst of events (an
// utterance's replies arrive together) costs one system call instead of one
// each. Each frame is written whole; nothing waits for more frames.
func (s *Server) sendBatch(w streamWriter, f []byte, more <-chan []byte) error {
	_ = w.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := w.Write(f); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	for n := 1; n < maxBatch; n++ {
		var g []byte
		select {
		case g = <-more:
		default:
			return w.Flush()
		}
		if _, err := w.Write(g); err != nil {
			return fmt.Errorf("stream write: %w", err)
		}
	}
	return w.Flush()
}

// send writes b and flushes it under a short write deadline, so that a
// client that stopped reading cannot hold the stream forever.
func (s *Server) send(w streamWriter, b []byte) error {
	_ = w.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	return w.Flush()
}
