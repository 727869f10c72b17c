package middleware

import (
	"net/http"
	"net/netip"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// Blocker says whether an address is refused (blacklisted or banned).
type Blocker interface {
	Blocked(addr netip.Addr) bool
}

// Blacklist answers 403 to a refused address on every route, before anything
// else runs. It must come after ClientIP. A request whose address could not
// be settled is refused too (fail closed).
func Blacklist(b Blocker) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr := ClientAddr(r)
			if !addr.IsValid() || b.Blocked(addr) {
				problem.Write(w, r, api.Errorf(api.EBLACKLISTED, "this address is not allowed"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
