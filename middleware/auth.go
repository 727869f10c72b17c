package middleware

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// SessionVerifier checks a client's session token and says whose it is.
// Failures are *api.Error EUNAUTHORIZED.
type SessionVerifier interface {
	VerifySession(ctx context.Context, token string) (api.Identity, error)
}

// AdminVerifier says whether a token is the admin token (in constant time).
type AdminVerifier interface {
	IsAdmin(token string) bool
}

// SettleIdentity returns ctx carrying id (api.WithIdentity) and names its
// client in the request's access log line; for handlers that authenticate
// by other means (the stream's cookie and ticket).
func SettleIdentity(ctx context.Context, id api.Identity) context.Context {
	noteClient(ctx, id.ClientID)
	return api.WithIdentity(ctx, id)
}

// queryCredentials are query parameters that would carry a credential in a
// URL, where proxies, browsers and logs keep it (RFC 6750 section 5.3 advises
// against it). The stream's single-use "ticket" is the one exception, and it
// is handled by the stream handler.
var queryCredentials = []string{"access_token", "token", "jwt", "access_key", "key", "password", "authorization"}

// RefuseQueryCredentials answers 400 to any request that carries a credential
// in its query string, before anything else looks at it.
func RefuseQueryCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			q := r.URL.Query()
			for _, k := range queryCredentials {
				if q.Has(k) {
					problem.Write(w, r, api.Errorf(api.EINVALID, "credentials are not accepted in the URL; send them in the Authorization header"))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// RequireClient admits requests bearing a valid client session token and
// puts its Identity in the context. failed, when not nil, is told of every
// refused token (bans and metrics count them).
func RequireClient(v SessionVerifier, failed func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := BearerToken(r)
			if !ok {
				problem.Write(w, r, api.Errorf(api.EUNAUTHORIZED, "a Bearer token is required"))
				return
			}
			id, err := v.VerifySession(r.Context(), tok)
			if err != nil {
				if failed != nil {
					failed(r, err)
				}
				problem.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(SettleIdentity(r.Context(), id)))
		})
	}
}

// RequireAdmin admits requests bearing the admin token.
func RequireAdmin(v AdminVerifier, failed func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := BearerToken(r)
			if !ok {
				problem.Write(w, r, api.Errorf(api.EUNAUTHORIZED, "the admin token is required"))
				return
			}
			if !v.IsAdmin(tok) {
				err := api.Errorf(api.EFORBIDDEN, "this route needs the admin token")
				if failed != nil {
					failed(r, err)
				}
				problem.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(SettleIdentity(r.Context(), api.Identity{Admin: true})))
		})
	}
}

// KeyVerifier checks a client key credential, "<client id or alias>:<access
// key>", and says whose it is (an Identity without a session). Failures are
// *api.Error EUNAUTHORIZED. addr is the caller's address, settled by
// ClientIP, whose failed checks are throttled as failed logins are.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, credential string, addr netip.Addr) (api.Identity, error)
}

// RequireClientOrKey admits requests bearing a client session token or a
// client key credential ("<client id or alias>:<access key>", which holds a
// colon where a JWT never does): what clients of other APIs' dialects send
// as their API key. It puts the Identity in the context; failed, when not
// nil, is told of every refused credential.
func RequireClientOrKey(v SessionVerifier, k KeyVerifier, failed func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := BearerToken(r)
			if !ok {
				problem.Write(w, r, api.Errorf(api.EUNAUTHORIZED, "a Bearer token or client key is required"))
				return
			}
			var id api.Identity
			var err error
			if strings.Contains(tok, ":") {
				id, err = k.VerifyKey(r.Context(), tok, ClientAddr(r))
			} else {
				id, err = v.VerifySession(r.Context(), tok)
			}
			if err != nil {
				if failed != nil {
					failed(r, err)
				}
				problem.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(SettleIdentity(r.Context(), id)))
		})
	}
}
