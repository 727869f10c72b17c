package middleware

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// AllowedHosts refuses (403) a request whose Host header names a host that
// is not in allowed: the defence against DNS rebinding, where a page of
// attacker.example has its name re-resolve to this gateway's address and
// reaches, as its own origin, the routes that need no login (and a console
// on localhost). An IP address is always accepted, since a rebinding page
// cannot make the browser send one; names are compared without port, case
// or trailing dot. "*" in allowed accepts every host.
func AllowedHosts(allowed []string) func(http.Handler) http.Handler {
	names := map[string]bool{}
	for _, h := range allowed {
		names[HostName(h)] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := HostName(r.Host)
			if names["*"] || names[host] {
				next.ServeHTTP(w, r)
				return
			}
			if _, err := netip.ParseAddr(host); err == nil {
				next.ServeHTTP(w, r)
				return
			}
			// The host goes to the access log, not back to the caller.
			problem.Write(w, r, fmt.Errorf("host %q not allowed: %w", host, api.Errorf(api.EFORBIDDEN, "this gateway does not answer to that host name")))
		})
	}
}

// HostName is the host of a Host header value or a listen address, as
// AllowedHosts compares them: without port or IPv6 brackets, lower case,
// without a trailing dot.
func HostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
