package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestAllowedHosts(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := middleware.AllowedHosts([]string{"localhost", "Gateway.LAN."})(ok)
	for host, want := range map[string]int{
		"localhost":            200,
		"localhost:8080":       200,
		"LOCALHOST.:8080":      200,
		"gateway.lan":          200,
		"gateway.lan:443":      200,
		"127.0.0.1:8080":       200,
		"192.168.1.20":         200,
		"[::1]:8080":           200,
		"[fe80::1%25eth0]:80":  200,
		"attacker.example":     403,
		"attacker.example:80":  403,
		"localhost.attacker":   403,
		"gateway.lan.evil.com": 403,
		"":                     403,
	} {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Host = host
		w := serve(t, h, req)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
		if want == 403 && problemOf(t, w).Detail == "" {
			t.Errorf("Host %q: refusal without a detail", host)
		}
	}
	any := middleware.AllowedHosts([]string{"*"})(ok)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "whatever.example"
	if w := serve(t, any, req); w.Code != 200 {
		t.Errorf(`"*": %d`, w.Code)
	}
}
