package middleware

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// Blocker says whether an address is refused (blacklisted or banned).
type Blocker interface {
	Blocked(addr netip.Addr) bool
}

// Blacklist answers 403 to a refused address on every route but the paths
// listed in open, before anything else runs. It must come after ClientIP. A
// request whose address could not be settled is refused too (fail closed).
// The open paths are the health checks: a load balancer or proxy whose
// address is banned must still see the server alive, or it takes the
// gateway out of service for everyone.
func Blacklist(b Blocker, open ...string) func(http.Handler) http.Handler {
	return BlacklistAdminPasses(b, nil, open...)
}

// AdminPrefix starts the path of every admin route.
const AdminPrefix = "/v1/admin/"

// BlacklistAdminPasses is Blacklist that lets a request from a refused
// address through to the admin routes (AdminPrefix) when it bears the
// admin token (admin not nil): an automatic ban must not lock the admin
// out of the very routes that lift it. A wrong admin token, or any other
// route, from that address is still refused, and the admin token is
// checked again by the admin routes themselves.
func BlacklistAdminPasses(b Blocker, admin AdminVerifier, open ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slices.Contains(open, r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			addr := ClientAddr(r)
			if !addr.IsValid() || b.Blocked(addr) {
				if admin != nil && strings.HasPrefix(r.URL.Path, AdminPrefix) {
					if tok, ok := BearerToken(r); ok && admin.IsAdmin(tok) {
						next.ServeHTTP(w, r)
						return
					}
				}
				problem.Write(w, r, api.Errorf(api.EBLACKLISTED, "this address is not allowed"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
