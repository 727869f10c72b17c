package middleware

import (
	"net/http"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// Limiter says whether one more request under key may go now, and if not,
// when to retry.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// RateLimit answers 429 with Retry-After when the limiter refuses the key
// that key(r) names. An empty key is not limited.
func RateLimit(l Limiter, key func(r *http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := key(r); k != "" {
				if ok, retry := l.Allow(k); !ok {
					problem.Write(w, r, &api.Error{Code: api.ERATELIMITED, Detail: "too many requests; slow down", RetryAfter: retry})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ByAddr keys a limit by the client's address (settled by ClientIP).
func ByAddr(r *http.Request) string {
	if a := ClientAddr(r); a.IsValid() {
		return "addr:" + a.String()
	}
	return ""
}

// ByClient keys a limit by the authenticated client (after RequireClient).
func ByClient(r *http.Request) string {
	if id, ok := api.IdentityFrom(r.Context()); ok && id.ClientID != "" {
		return "client:" + id.ClientID
	}
	return ""
}
