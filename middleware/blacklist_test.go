package middleware_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

type blockList []netip.Prefix

func (b blockList) Blocked(a netip.Addr) bool {
	for _, p := range b {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestBlacklistRefusesBeforeAnythingElse(t *testing.T) {
	h := middleware.ClientIP(nil)(middleware.Blacklist(blockList{netip.MustParsePrefix("203.0.113.0/24")})(ok))
	for _, c := range []struct {
		remote string
		want   int
	}{{"203.0.113.9:1", 403}, {"198.51.100.1:1", 200}, {"garbage", 403}} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		w := serve(t, h, req)
		if w.Code != c.want {
			t.Errorf("%s: status %d, want %d", c.remote, w.Code, c.want)
		}
		if c.want == 403 {
			if p := problemOf(t, w); p.Type != "/problems/blacklisted" {
				t.Errorf("problem %+v", p)
			}
		}
	}
}

// TestBlacklistLeavesOpenPaths checks that the paths given as open (the
// health checks) answer a refused address, and only those exact paths.
func TestBlacklistLeavesOpenPaths(t *testing.T) {
	h := middleware.ClientIP(nil)(middleware.Blacklist(blockList{netip.MustParsePrefix("203.0.113.0/24")}, "/healthz", "/readyz")(ok))
	for _, c := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/healthz/", 403}, {"/v1/clients/me", 403}, {"/", 403}} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.RemoteAddr = "203.0.113.9:1"
		if w := serve(t, h, req); w.Code != c.want {
			t.Errorf("%s: status %d, want %d", c.path, w.Code, c.want)
		}
	}
}

type adminIs string

func (a adminIs) IsAdmin(tok string) bool { return tok == string(a) }

// TestBlacklistAdminPasses: from a refused address only the admin token on
// an admin route passes.
func TestBlacklistAdminPasses(t *testing.T) {
	h := middleware.ClientIP(nil)(middleware.BlacklistAdminPasses(blockList{netip.MustParsePrefix("203.0.113.0/24")}, adminIs("gwa_right"))(ok))
	for _, c := range []struct {
		remote, path, token string
		want                int
	}{
		{"203.0.113.9:1", "/v1/admin/blacklist", "gwa_right", 200},
		{"203.0.113.9:1", "/v1/admin/blacklist", "gwa_wrong", 403},
		{"203.0.113.9:1", "/v1/admin/blacklist", "", 403},
		{"203.0.113.9:1", "/v1/clients/me", "gwa_right", 403},
		{"203.0.113.9:1", "/v1/adminx", "gwa_right", 403},
		{"garbage", "/v1/admin/blacklist", "gwa_right", 200},
		{"198.51.100.1:1", "/v1/clients/me", "", 200},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.RemoteAddr = c.remote
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if w := serve(t, h, req); w.Code != c.want {
			t.Errorf("%s %s %q: status %d, want %d", c.remote, c.path, c.token, w.Code, c.want)
		}
	}
}
