package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/middleware"
)

// streamIdentity authenticates a stream request: a Bearer token (client or
// admin), else a single-use ?ticket=, else the session cookie. Only GET
// reaches here, so the cookie cannot be used to change state.
func (s *Server) streamIdentity(r *http.Request) (middleware.Identity, error) {
	ctx := r.Context()
	if tok, ok := middleware.BearerToken(r); ok {
		if s.deps.Sessions.IsAdmin(tok) {
			return middleware.Identity{Admin: true}, nil
		}
		return s.deps.Sessions.VerifySession(ctx, tok)
	}
	if t := r.URL.Query().Get("ticket"); t != "" {
		return s.deps.Sessions.RedeemTicket(ctx, t)
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return s.deps.Sessions.VerifySession(ctx, c.Value)
	}
	return middleware.Identity{}, api.Errorf(api.EUNAUTHORIZED, "a Bearer token, a stream ticket or the session cookie is required")
}

// handleEvents is the client's Server-Sent-Events stream (Mercure's recipe):
// every refusal is a real status before the stream starts; then a retry
// hint, the ready event, a gap event and the replay when Last-Event-ID asks
// for it, and a loop over request end, server shutdown, heartbeat, token
// expiry and the subscription's events, each write under a short deadline.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := s.streamIdentity(r)
	if err != nil {
		if s.cfg.AuthFailed != nil {
			s.cfg.AuthFailed(r, err)
		}
		return err
	}
	ctx := middleware.WithIdentity(r.Context(), id)
	clientID, err := s.deps.Clients.Resolve(ctx, chi.URLParam(r, "client"))
	if err != nil {
		return err
	}
	if !id.Admin && id.ClientID != clientID {
		return api.Errorf(api.EFORBIDDEN, "this is another client's stream")
	}
	select {
	case <-s.closing:
		return &api.Error{Code: api.EUNAVAILABLE, Detail: "the gateway is shutting down", RetryAfter: s.cfg.Retry}
	default:
	}
	release, err := s.acquireStream(clientID, middleware.ClientAddr(r))
	if err != nil {
		return err
	}
	defer release()
	rc := http.NewResponseController(w)
	lastEventID := r.Header.Get("Last-Event-ID")
	if len(lastEventID) > 64 {
		return api.Errorf(api.EINVALID, "Last-Event-ID is too long")
	}

	sub := s.deps.Streams.Subscribe(clientID, id.SessionID, lastEventID)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ready, err := json.Marshal(api.ReadyEvent{ClientID: clientID, ConnectionID: sub.ID()})
	if err != nil {
		return nil
	}
	// ready carries the id just before the first frame this connection gets,
	// so a stream cut during the replay resumes from there.
	first, err := hub.EncodeEvent(sub.ResumeID(), api.EventReady, ready)
	if err != nil {
		return nil
	}
	opening := append(hub.EncodeRetry(s.cfg.Retry), first...)
	if gap, g := sub.Gap(); gap {
		data, _ := json.Marshal(g)
		// The gap carries the same id as ready: it must not move the client's
		// Last-Event-ID past frames it has not received.
		if ev, err := hub.EncodeEvent(sub.ResumeID(), api.EventGap, data); err == nil {
			opening = append(opening, ev...)
		}
	}
	if err := s.write(rc, w, opening); err != nil {
		return nil
	}
	for _, f := range sub.Replay() {
		if err := s.write(rc, w, f); err != nil {
			return nil
		}
	}

	heartbeat := time.NewTimer(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !id.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(id.ExpiresAt))
		defer t.Stop()
		expiry = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.closing:
			// Spread a fleet's reconnections over a window so that they do not
			// all land on the next gateway at once.
			hint := s.cfg.Retry + rand.N(5*s.cfg.Retry)
			_ = s.write(rc, w, append(hub.EncodeRetry(hint), hub.EncodeComment("the gateway is shutting down; reconnect")...))
			return nil
		case <-expiry:
			_ = s.write(rc, w, hub.EncodeComment("the session expired; log in again"))
			return nil
		case <-sub.Done():
			reason := "stream closed"
			if err := sub.Err(); err != nil {
				reason = streamEndReason(err)
			}
			_ = s.write(rc, w, hub.EncodeComment(reason))
			return nil
		case <-heartbeat.C:
			if err := s.write(rc, w, hub.EncodeComment("keepalive")); err != nil {
				return nil
			}
			heartbeat.Reset(s.cfg.Heartbeat)
		case f := <-sub.Events():
			if err := s.write(rc, w, f); err != nil {
				return nil
			}
			if !heartbeat.Stop() {
				select {
				case <-heartbeat.C:
				default:
				}
			}
			heartbeat.Reset(s.cfg.Heartbeat)
		}
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

// write sends b and flushes it under a short write deadline, so a client that
// stopped reading cannot hold the handler forever.
func (s *Server) write(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	return rc.Flush()
}
