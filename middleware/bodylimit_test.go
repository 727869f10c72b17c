package middleware_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/middleware"
)

func TestBodyLimit(t *testing.T) {
	var readErr error
	var n int
	h := middleware.BodyLimit(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		n, readErr = len(b), err
	}))
	serve(t, h, httptest.NewRequest("POST", "/", strings.NewReader("0123456789")))
	if readErr != nil || n != 10 {
		t.Fatalf("at the limit: %d bytes, %v", n, readErr)
	}
	serve(t, h, httptest.NewRequest("POST", "/", strings.NewReader("0123456789x")))
	var mbe *http.MaxBytesError
	if !errors.As(readErr, &mbe) {
		t.Fatalf("past the limit: %v", readErr)
	}
}
