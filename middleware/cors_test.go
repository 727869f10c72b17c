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

// A chat page using OpenAI's JavaScript SDK in the browser asks for the
// SDK's own x-stainless-* headers in its preflight; only those are added.
func TestCORSAllowsTheOpenAISDKHeaders(t *testing.T) {
	h := middleware.CORS([]string{"https://chat.example"})(ok)
	req := httptest.NewRequest("OPTIONS", "/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://chat.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-stainless-os, X-Stainless-Retry-Count, x-evil, x-stainless-bad\r\nx: y")
	got := serve(t, h, req).Header().Get("Access-Control-Allow-Headers")
	want := "Authorization, Content-Type, Last-Event-ID, X-Intent-Password, x-stainless-os, x-stainless-retry-count"
	if got != want {
		t.Fatalf("Allow-Headers %q, want %q", got, want)
	}
}
