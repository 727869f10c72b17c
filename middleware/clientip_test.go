package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestClientIP(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     string
		want    string
	}{
		// A client talking to us directly must not choose its address by
		// sending X-Forwarded-For (it would dodge bans and blacklists).
		{"spoofed header from a direct peer", nil, "203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},
		{"spoofed header from an untrusted peer", proxy, "203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},
		{"header from a trusted proxy", proxy, "10.1.2.3:1234", "198.51.100.7", "198.51.100.7"},
		{"rightmost untrusted hop wins", proxy, "10.1.2.3:1234", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		{"v4-mapped peer folds to v4", nil, "[::ffff:203.0.113.9]:1", "", "203.0.113.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got netip.Addr
			h := middleware.ClientIP(c.trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = middleware.ClientAddr(r)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.remote
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			serve(t, h, req)
			if got.String() != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}
