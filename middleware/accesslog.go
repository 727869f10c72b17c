package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/ovosgw/gateway/internal/problem"
)

// AccessLog writes one line per request: request id, method, route pattern,
// path (never the query string, which may hold a stream ticket), status,
// bytes, duration, client address and client id, and the recorded cause of
// an error. observe, when not nil, is told of every finished request (for
// metrics). A response that goes on after its handler returns (Detach) is
// logged and observed when it ends.
func AccessLog(log *slog.Logger, observe func(r *http.Request, route string, status int, d time.Duration)) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	al := &accessLog{log: log, observe: observe}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ctx, cause := problem.WithCause(r.Context())
			ctx, who := withWho(ctx)
			ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
			who.al, who.ww, who.start, who.cause = al, ww, start, cause
			r = r.WithContext(ctx)
			defer func() {
				if who.detached {
					return
				}
				al.write(ctx, r, routePattern(r), who.line(r), ww.Status(), ww.BytesWritten(), time.Since(start), cause.Err)
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// Detach is for a handler that hands its response over to a goroutine of
// its own and returns before the response ends (an event stream taken over
// from net/http): the request's access log line is then written, and
// observe told, when the returned done is called, not when the handler
// returns; bytes are what that goroutine wrote (the body, without framing),
// added to what went through the ResponseWriter. The handler calls Detach
// before it returns; outside AccessLog, done does nothing. What the line
// says of the request is taken now: done keeps neither the request nor its
// context (the router reuses its part once the handler returns).
func Detach(r *http.Request) (done func(bytes int)) {
	w, ok := r.Context().Value(whoKey{}).(*who)
	if !ok || w.al == nil || w.detached {
		return func(int) {}
	}
	w.detached = true
	al, start, cause := w.al, w.start, w.cause
	route, line := routePattern(r), w.line(r)
	status, before := w.ww.Status(), w.ww.BytesWritten()
	// What observe may read of the request: its line, without headers or
	// context.
	slim := &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor, Host: r.Host, RemoteAddr: r.RemoteAddr}
	var once sync.Once
	return func(bytes int) {
		once.Do(func() {
			al.write(context.Background(), slim, route, line, status, before+bytes, time.Since(start), cause.Err)
		})
	}
}

// accessLog is one AccessLog's logger and observer.
type accessLog struct {
	log     *slog.Logger
	observe func(r *http.Request, route string, status int, d time.Duration)
}

// requestLine is what a log line says of the request itself.
type requestLine struct {
	requestID, method, path, clientID string
	remote                            netip.Addr
}

// write observes a finished request and logs its line.
func (al *accessLog) write(ctx context.Context, r *http.Request, route string, line requestLine, status, bytes int, d time.Duration, cause error) {
	if status == 0 {
		status = http.StatusOK
	}
	if al.observe != nil {
		al.observe(r, route, status, d)
	}
	level := accessLevel(status)
	if !al.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", line.requestID),
		slog.String("method", line.method),
		slog.String("route", route),
		slog.String("path", line.path),
		slog.Int("status", status),
		slog.Int("bytes", bytes),
		slog.Duration("duration", d),
		slog.String("remote", line.remote.String()),
	}
	if line.clientID != "" {
		attrs = append(attrs, slog.String("client_id", line.clientID))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	al.log.LogAttrs(ctx, level, "request", attrs...)
}

// accessLevel is the level of a request's line: ERROR for a failure the
// caller could not be told about (500 and the like), INFO for every answer
// given on purpose. A 503 is one of those: the gateway says it is not ready
// (a readiness probe every few seconds while the bus is down) or cannot take
// an utterance now; what made it unavailable is logged once, where it
// happened (the bus link logs going down and coming back).
func accessLevel(status int) slog.Level {
	if status >= 500 && status != http.StatusServiceUnavailable {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// who is a per-request slot the authentication middleware fills in, so that
// the access log (which runs outside it) can name the client.
type who struct {
	clientID string
	addr     netip.Addr

	// The request's access log, for Detach.
	al       *accessLog
	ww       chimw.WrapResponseWriter
	start    time.Time
	cause    *problem.Cause
	detached bool
}

// line is what the log line says of r (the request this slot is for).
func (w *who) line(r *http.Request) requestLine {
	return requestLine{requestID: RequestIDFrom(r.Context()), method: r.Method, path: r.URL.Path, clientID: w.clientID, remote: w.addr}
}

type whoKey struct{}

func withWho(ctx context.Context) (context.Context, *who) {
	w := &who{}
	return context.WithValue(ctx, whoKey{}, w), w
}

func noteAddr(ctx context.Context, addr netip.Addr) {
	if w, ok := ctx.Value(whoKey{}).(*who); ok {
		w.addr = addr
	}
}

func noteClient(ctx context.Context, clientID string) {
	if w, ok := ctx.Value(whoKey{}).(*who); ok {
		w.clientID = clientID
	}
}
