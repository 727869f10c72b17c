package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestRequestIDIsFreshAndNotTakenFromTheClient(t *testing.T) {
	var seen string
	h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = middleware.RequestIDFrom(r.Context())
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "injected\nline")
	w := serve(t, h, req)
	got := w.Header().Get(middleware.RequestIDHeader)
	if got == "" || got != seen || got == "injected\nline" {
		t.Fatalf("header %q, context %q", got, seen)
	}
	w2 := serve(t, h, httptest.NewRequest("GET", "/", nil))
	if w2.Header().Get(middleware.RequestIDHeader) == got {
		t.Fatal("two requests got the same id")
	}
}
