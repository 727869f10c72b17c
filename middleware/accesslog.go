package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/ovosgw/gateway/internal/problem"
)

// AccessLog writes one line per request: request id, method, route pattern,
// path (never the query string, which may hold a stream ticket), status,
// bytes, duration, client address and client id, and the recorded cause of
// an error. observe, when not nil, is told of every finished request (for
// metrics).
func AccessLog(log *slog.Logger, observe func(r *http.Request, route string, status int, d time.Duration)) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ctx, cause := problem.WithCause(r.Context())
			ctx, who := withWho(ctx)
			ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
			r = r.WithContext(ctx)
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				d := time.Since(start)
				route := routePattern(r)
				if observe != nil {
					observe(r, route, status, d)
				}
				level := accessLevel(status)
				if !log.Enabled(ctx, level) {
					return
				}
				attrs := []slog.Attr{
					slog.String("request_id", RequestIDFrom(ctx)),
					slog.String("method", r.Method),
					slog.String("route", route),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Int("bytes", ww.BytesWritten()),
					slog.Duration("duration", d),
					slog.String("remote", who.addr.String()),
				}
				if who.clientID != "" {
					attrs = append(attrs, slog.String("client_id", who.clientID))
				}
				if cause.Err != nil {
					attrs = append(attrs, slog.String("error", cause.Err.Error()))
				}
				log.LogAttrs(ctx, level, "request", attrs...)
			}()
			next.ServeHTTP(ww, r)
		})
	}
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
