package middleware_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestRecoverTurnsPanicInto500(t *testing.T) {
	var buf bytes.Buffer
	h := middleware.Recover(slog.New(slog.NewTextHandler(&buf, nil)))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	w := serve(t, h, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	if p := problemOf(t, w); p.Status != 500 || strings.Contains(p.Detail, "boom") {
		t.Fatalf("problem %+v", p)
	}
	if !strings.Contains(buf.String(), "boom") {
		t.Fatal("the panic was not logged")
	}
}

func TestRecoverLetsAbortHandlerThrough(t *testing.T) {
	h := middleware.Recover(nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v", v)
		}
	}()
	serve(t, h, httptest.NewRequest("GET", "/", nil))
}
