package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/middleware"
)

type verifier map[string]string // token -> client id

func (v verifier) VerifySession(_ context.Context, tok string) (api.Identity, error) {
	if id, ok := v[tok]; ok {
		return api.Identity{ClientID: id, SessionID: "s-" + id}, nil
	}
	return api.Identity{}, api.Errorf(api.EUNAUTHORIZED, "invalid token")
}

func (v verifier) IsAdmin(tok string) bool { return tok == "admin-token" }

func TestRequireClient(t *testing.T) {
	v := verifier{"good": "kitchen"}
	var failures int
	var seen api.Identity
	h := middleware.RequireClient(v, func(*http.Request, error) { failures++ })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = api.IdentityFrom(r.Context())
	}))
	cases := []struct {
		name, header string
		want         int
		failed       bool
	}{
		{"no header", "", 401, false},
		{"other scheme", "Basic Z29vZA==", 401, false},
		{"empty bearer", "Bearer ", 401, false},
		{"bad token", "Bearer bad", 401, true},
		{"good token", "Bearer good", 200, false},
		{"scheme is case-insensitive", "bearer good", 200, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			failures, seen = 0, api.Identity{}
			req := httptest.NewRequest("GET", "/", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			w := serve(t, h, req)
			if w.Code != c.want {
				t.Fatalf("status %d", w.Code)
			}
			if c.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
			if c.want == 200 && seen.ClientID != "kitchen" {
				t.Fatalf("identity %+v", seen)
			}
			if (failures == 1) != c.failed {
				t.Fatalf("failures %d", failures)
			}
		})
	}
}

func TestRequireAdmin(t *testing.T) {
	h := middleware.RequireAdmin(verifier{}, nil)(ok)
	for _, c := range []struct {
		header string
		want   int
	}{{"", 401}, {"Bearer nope", 403}, {"Bearer admin-token", 200}} {
		req := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		if w := serve(t, h, req); w.Code != c.want {
			t.Errorf("%q: status %d, want %d", c.header, w.Code, c.want)
		}
	}
}

// A credential in a URL ends up in proxy logs, browser history and Referer
// headers (RFC 6750 section 5.3): refuse it before anything reads it.
func TestRefuseQueryCredentials(t *testing.T) {
	h := middleware.RefuseQueryCredentials(ok)
	for _, q := range []string{"access_token=x", "token=x", "jwt=x", "access_key=x", "password=x"} {
		w := serve(t, h, httptest.NewRequest("GET", "/v1/clients/me?"+q, nil))
		if w.Code != 400 {
			t.Errorf("%s: status %d", q, w.Code)
		}
	}
	if w := serve(t, h, httptest.NewRequest("GET", "/v1/clients/me?ticket=x&wait=1s", nil)); w.Code != 200 {
		t.Errorf("ticket and wait are allowed: %d", w.Code)
	}
}

type keyVerifier map[string]string // credential -> client id

func (k keyVerifier) VerifyKey(_ context.Context, cred string, _ netip.Addr) (api.Identity, error) {
	if id, ok := k[cred]; ok {
		return api.Identity{ClientID: id}, nil
	}
	return api.Identity{}, api.Errorf(api.EUNAUTHORIZED, "unknown client or wrong access key")
}

func TestRequireClientOrKey(t *testing.T) {
	v := verifier{"good": "kitchen"}
	k := keyVerifier{"porch:gwk_right": "porch"}
	var failures int
	var seen api.Identity
	h := middleware.RequireClientOrKey(v, k, func(*http.Request, error) { failures++ })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = api.IdentityFrom(r.Context())
	}))
	cases := []struct {
		name, header, client string
		want                 int
		failed               bool
	}{
		{"no header", "", "", 401, false},
		{"a session token", "Bearer good", "kitchen", 200, false},
		{"a client key", "Bearer porch:gwk_right", "porch", 200, false},
		{"a wrong key", "Bearer porch:gwk_wrong", "", 401, true},
		{"a wrong token", "Bearer bad", "", 401, true},
		{"a key is not a token", "Bearer gwk_right", "", 401, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			failures, seen = 0, api.Identity{}
			req := httptest.NewRequest("GET", "/", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			w := serve(t, h, req)
			if w.Code != c.want || seen.ClientID != c.client || (failures == 1) != c.failed {
				t.Fatalf("status %d, identity %+v, failures %d", w.Code, seen, failures)
			}
		})
	}
}
