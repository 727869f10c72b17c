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

// PairLimiter is a Limiter that checks a second limit in the same step: a
// shared store's limiter then makes one round trip, not two.
type PairLimiter interface {
	Limiter
	// AllowPair checks key here and key2 in other at once; it is refused
	// when either is, with the longer wait.
	AllowPair(key string, other Limiter, key2 string) (ok bool, retryAfter time.Duration)
}

// RateLimitPair is RateLimit(a, keyA) followed by RateLimit(b, keyB), both
// checked in one step when a is a PairLimiter. An empty key is not limited;
// a nil limiter does not limit.
func RateLimitPair(a Limiter, keyA func(r *http.Request) string, b Limiter, keyB func(r *http.Request) string) func(http.Handler) http.Handler {
	pa, pair := a.(PairLimiter)
	if !pair || b == nil {
		return chain(a, keyA, b, keyB)
	}
	one, two := RateLimit(a, keyA), RateLimit(b, keyB)
	return func(next http.Handler) http.Handler {
		single := one(two(next))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ka, kb := keyA(r), keyB(r)
			if ka == "" || kb == "" {
				single.ServeHTTP(w, r)
				return
			}
			if ok, retry := pa.AllowPair(ka, b, kb); !ok {
				problem.Write(w, r, &api.Error{Code: api.ERATELIMITED, Detail: "too many requests; slow down", RetryAfter: retry})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// chain is RateLimit(a, keyA) then RateLimit(b, keyB), a nil limiter left
// out.
func chain(a Limiter, keyA func(r *http.Request) string, b Limiter, keyB func(r *http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if b != nil {
			next = RateLimit(b, keyB)(next)
		}
		if a != nil {
			next = RateLimit(a, keyA)(next)
		}
		return next
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
