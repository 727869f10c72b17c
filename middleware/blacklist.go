package middleware

import (
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

// Blocker says whether an address is refused (blacklisted or banned).
type Blocker interface {
	Blocked(addr netip.Addr) bool
}

// Expiring is a Blocker that also says when a block ends (the zero time:
// never) (*blacklist.Blacklist), so that a refusal can say it.
type Expiring interface {
	BlockedUntil(addr netip.Addr) (bool, time.Time)
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
			blocked, until := !addr.IsValid(), time.Time{}
			if !blocked {
				if e, ok := b.(Expiring); ok {
					blocked, until = e.BlockedUntil(addr)
				} else {
					blocked = b.Blocked(addr)
				}
			}
			if !blocked {
				next.ServeHTTP(w, r)
				return
			}
			if admin != nil && strings.HasPrefix(r.URL.Path, AdminPrefix) {
				if tok, ok := BearerToken(r); ok && admin.IsAdmin(tok) {
					next.ServeHTTP(w, r)
					return
				}
			}
			if !addr.IsValid() {
				problem.Write(w, r, api.Errorf(api.EBLACKLISTED, "this address is not allowed"))
				return
			}
			refuse(w, r, until)
		})
	}
}

// refuse answers a blocked address: problem+json saying until when (with
// Retry-After) or that only the admin can lift it; a browser asking for a
// page gets the same in a small page of its own, not raw JSON.
func refuse(w http.ResponseWriter, r *http.Request, until time.Time) {
	e := &api.Error{Code: api.EBLACKLISTED, Detail: "this address is blocked by the gateway; only its admin can lift the block"}
	if !until.IsZero() {
		e.RetryAfter = time.Until(until)
		e.Detail = fmt.Sprintf("this address is blocked by the gateway until %s (after repeated failed attempts, or by its admin); try again then, or ask the admin to lift it",
			until.UTC().Format(time.RFC3339))
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, blockedPage, html.EscapeString(e.Detail))
		return
	}
	problem.Write(w, r, e)
}

// blockedPage is what a blocked browser shows instead of the console.
const blockedPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blocked</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5">
<h1>This address is blocked</h1>
<p id="blocked-detail">%s.</p>
</body></html>
`
