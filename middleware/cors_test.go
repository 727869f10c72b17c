package middleware_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestCORS(t *testing.T) {
	h := middleware.CORS([]string{"https://app.example"})(ok)
	req := httptest.NewRequest("OPTIONS", "/v1/utterances", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	w := serve(t, h, req)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	if w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials must not be allowed across origins")
	}
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://evil.example")
	if w := serve(t, h, req); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an unlisted origin was allowed")
	}
	// Nothing configured: nothing allowed.
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://app.example")
	if w := serve(t, middleware.CORS(nil)(ok), req); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("allowed with no origin configured")
	}
}
