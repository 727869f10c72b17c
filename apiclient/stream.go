package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// Causes that end one stream connection on our side.
var (
	// errRenew: the token is due for renewal; reconnect at once with a new
	// one, resuming with Last-Event-ID, before the gateway ends the stream
	// at the old token's expiry.
	errRenew = errors.New("token due for renewal")
	// errIdle: nothing arrived for IdleTimeout; the connection is dead.
	errIdle = errors.New("stream idle for too long")
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// LastEventID resumes after this event (sent as Last-Event-ID); empty
	// starts with what comes next.
	LastEventID string
}

// Stream holds the client's event stream (GET /v1/clients/{client}/events)
// until ctx is done, and calls fn with every event in order, the ready event
// of each connection and any gap event included. fn runs on the stream's
// goroutine and may block: the stream then falls behind, the gateway cuts
// it, and it resumes where it was.
//
// Every reconnect sends Last-Event-ID, so that the gateway replays what the
// cut lost (or says gap). It reconnects at once when the token is due for
// renewal (logging in again first) or after a clean end, honouring the
// gateway's retry hint within MinBackoff..MaxBackoff; after a failure the
// delay doubles up to MaxBackoff (or what Retry-After asks), jittered.
//
// It returns nil when ctx is done, and an *Error when retrying cannot help:
// the login refused (a wrong id or key, never tried twice), or the stream
// refused for good (400, 401 twice in a row, 403, 404).
func (c *Client) Stream(ctx context.Context, opts StreamOptions, fn func(Event)) error {
	last := opts.LastEventID
	backoff := c.cfg.MinBackoff
	unauthorized := 0
	for {
		res := c.streamOnce(ctx, &last, fn)
		if ctx.Err() != nil {
			return nil
		}
		var e *Error
		isErr := errors.As(res.err, &e)
		switch {
		case isErr && e.Status == http.StatusUnauthorized && res.login:
			// A stale token is renewed by a login; a refused login is
			// not tried again.
			return fmt.Errorf("apiclient: stream: %w", res.err)
		case isErr && e.Status == http.StatusUnauthorized:
			unauthorized++
			if unauthorized >= 2 {
				return fmt.Errorf("apiclient: stream: %w", res.err)
			}
		case isErr && permanent(e.Status):
			return fmt.Errorf("apiclient: stream: %w", res.err)
		default:
			unauthorized = 0
		}
		if res.connected {
			backoff = c.cfg.MinBackoff
		}
		var delay time.Duration
		switch {
		case errors.Is(res.err, errRenew) || (isErr && e.Status == http.StatusUnauthorized):
			delay = 0
		case res.err == nil: // the gateway ended the stream
			delay = jitter(min(max(res.retry, c.cfg.MinBackoff), c.cfg.MaxBackoff))
		default:
			delay = jitter(backoff)
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			if isErr && e.RetryAfter > delay {
				delay = e.RetryAfter
			}
		}
		if res.err != nil && !errors.Is(res.err, errRenew) {
			c.log.Warn("event stream down", "client_id", c.cfg.ClientID, "err", res.err, "retry_in", delay)
		} else {
			c.log.Debug("event stream reconnecting", "client_id", c.cfg.ClientID, "reason", reason(res.err), "retry_in", delay)
		}
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

func reason(err error) string {
	if err == nil {
		return "ended by the gateway"
	}
	return err.Error()
}

// permanent reports whether a refusal of the stream will not change by
// retrying: a bad request, a forbidden stream, an unknown client.
func permanent(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// streamResult is how one connection ended: connected tells whether it got
// as far as a 200, retry is the gateway's last retry hint, err the cause
// (nil when the gateway ended the stream cleanly).
type streamResult struct {
	connected bool
	// login is true when the error is the login's: a login refused with 401
	// is a wrong id or key, which another try only counts against the
	// address again.
	login bool
	retry time.Duration
	err   error
}

// streamOnce runs one connection, updating *last as events arrive.
func (c *Client) streamOnce(ctx context.Context, last *string, fn func(Event)) streamResult {
	s, err := c.session(ctx)
	if err != nil {
		return streamResult{err: err, login: true}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renew := time.AfterFunc(time.Until(s.renewAt), func() { cancel(errRenew) })
	defer renew.Stop()

	path := "/v1/clients/" + url.PathEscape(s.resp.ClientID) + "/events"
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, c.url(path, nil), nil)
	if err != nil {
		return streamResult{err: err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Authorization", "Bearer "+s.resp.Token.Reveal())
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	// The idle watchdog also covers the wait for the response headers.
	idle := time.AfterFunc(c.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	resp, err := c.http.Do(req)
	if err != nil {
		if cause := context.Cause(cctx); cause != nil && ctx.Err() == nil {
			return streamResult{err: cause}
		}
		return streamResult{err: fmt.Errorf("GET %s: %w", path, transportError(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := readError(http.MethodGet, path, resp)
		if e.Status == http.StatusUnauthorized {
			c.invalidate(s.resp.Token)
		}
		return streamResult{err: e}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return streamResult{err: fmt.Errorf("GET %s: content type %q is not text/event-stream", path, mt)}
	}
	c.log.Debug("event stream connected", "client_id", s.resp.ClientID, "last_event_id", *last)

	body := &activityReader{r: resp.Body, onRead: func() { idle.Reset(c.cfg.IdleTimeout) }}
	dec := NewDecoder(body, c.cfg.MaxEventSize, *last)
	var dropped uint64
	for {
		ev, err := dec.Next()
		*last = dec.LastID()
		if n := dec.Dropped(); n != dropped {
			c.log.Warn("event stream: skipped an event larger than the limit", "limit", c.cfg.MaxEventSize, "last_event_id", *last)
			dropped = n
		}
		if err != nil {
			res := streamResult{connected: true, retry: dec.Retry()}
			switch cause := context.Cause(cctx); {
			case ctx.Err() != nil:
			case cause != nil:
				res.err = cause
			case errors.Is(err, io.EOF):
			default:
				res.err = fmt.Errorf("read the stream: %w", err)
			}
			return res
		}
		fn(ev)
	}
}

// activityReader calls onRead after every read that returned bytes.
type activityReader struct {
	r      io.Reader
	onRead func()
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.onRead()
	}
	return n, err
}
