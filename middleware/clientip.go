package middleware

import (
	"net/http"
	"net/netip"

	chimw "github.com/go-chi/chi/v5/middleware"
)

// ClientIP settles the caller's address once, at the edge, with chi's
// ClientIPFrom* middleware: X-Forwarded-For is read only when the TCP peer is
// one of the trusted proxies, otherwise the peer address is the client (the
// old RealIP middleware believed any peer and is deprecated as spoofable).
// Read the result with ClientAddr.
func ClientIP(trustedProxies []netip.Prefix) func(http.Handler) http.Handler {
	settle := chimw.ClientIPFromRemoteAddr
	if len(trustedProxies) > 0 {
		s := make([]string, len(trustedProxies))
		for i, p := range trustedProxies {
			s[i] = p.String()
		}
		settle = chimw.ClientIPFromXFF(s...)
	}
	return func(next http.Handler) http.Handler {
		// Tell the access log (which runs outside) what was settled.
		note := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			noteAddr(r.Context(), ClientAddr(r))
			next.ServeHTTP(w, r)
		})
		return settle(note)
	}
}

// ClientAddr returns the client address settled by ClientIP (invalid when it
// could not be determined).
func ClientAddr(r *http.Request) netip.Addr { return chimw.GetClientIPAddr(r.Context()) }
