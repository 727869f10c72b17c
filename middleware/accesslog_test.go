package middleware_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
	"github.com/ovosgw/gateway/middleware"
)

func TestAccessLogOneLineWithoutQuery(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var observed []string
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.AccessLog(log, func(_ *http.Request, route string, status int, _ time.Duration) {
		observed = append(observed, route)
	}), middleware.ClientIP(nil))
	r.Get("/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, errors.New("database on fire"))
	})
	w := serve(t, r, httptest.NewRequest("GET", "/v1/things/7?ticket=s3cret", nil))
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	line := buf.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want one line, got %q", line)
	}
	for _, want := range []string{"route=/v1/things/{id}", "status=500", `error="database on fire"`, "request_id=", "remote=192.0.2.1"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "s3cret") {
		t.Fatalf("the query string reached the log: %s", line)
	}
	if strings.Contains(w.Body.String(), "fire") {
		t.Fatalf("the internal cause reached the client: %s", w.Body.String())
	}
	if len(observed) != 1 || observed[0] != "/v1/things/{id}" {
		t.Fatalf("observed %v", observed)
	}
}

// A 503 is an answer given on purpose (not ready, the bus is down): its line
// is not an ERROR, or a readiness probe every few seconds would flood the
// error log. A 500 (a cause the caller was not told) still is.
func TestAccessLogLevels(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantLevel string
	}{
		{"unavailable", &api.Error{Code: api.EUNAVAILABLE, Detail: "not ready: bus link down"}, "level=INFO"},
		{"refused", &api.Error{Code: api.EFORBIDDEN, Detail: "no"}, "level=INFO"},
		{"internal", errors.New("database on fire"), "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			r := chi.NewRouter()
			r.Use(middleware.AccessLog(log, nil))
			r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) { problem.Write(w, r, tt.err) })
			for range 3 {
				serve(t, r, httptest.NewRequest("GET", "/readyz", nil))
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 3 {
				t.Fatalf("want 3 lines, got %q", buf.String())
			}
			for _, l := range lines {
				if !strings.Contains(l, tt.wantLevel) {
					t.Errorf("line not at %s: %s", tt.wantLevel, l)
				}
			}
		})
	}
}

// TestAccessLogNamesTheCause: an *api.Error made by a cause (tsweb's way)
// shows the caller its detail and the access log line its cause.
func TestAccessLogNamesTheCause(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := chi.NewRouter()
	r.Use(middleware.AccessLog(log, nil))
	r.Post("/v1/utterances", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, api.Wrap(errors.New("write tcp: broken pipe"), api.EUNAVAILABLE, "the assistant's messagebus is unavailable"))
	})
	w := serve(t, r, httptest.NewRequest("POST", "/v1/utterances", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
	if line := buf.String(); !strings.Contains(line, "broken pipe") || !strings.Contains(line, "messagebus is unavailable") {
		t.Errorf("the log line lacks the cause or the detail: %s", line)
	}
	if body := w.Body.String(); strings.Contains(body, "broken pipe") || !strings.Contains(body, "messagebus is unavailable") {
		t.Errorf("the client saw %s, want the detail without the cause", body)
	}
}

// A detached response (a stream handed to a goroutine of its own) is logged
// and observed once, when it ends, with its whole size: not when its
// handler returns.
func TestAccessLogDetached(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var observed []string
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.AccessLog(log, func(req *http.Request, route string, status int, _ time.Duration) {
		observed = append(observed, req.Method+" "+route)
	}), middleware.ClientIP(nil))
	var done func(int)
	r.Get("/v1/streams/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("head"))
		done = middleware.Detach(r)
	})
	serve(t, r, httptest.NewRequest("GET", "/v1/streams/7?ticket=s3cret", nil))
	if buf.Len() != 0 || len(observed) != 0 {
		t.Fatalf("logged before the response ended: %q %v", buf.String(), observed)
	}
	done(1000)
	done(5) // once only
	line := buf.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want one line, got %q", line)
	}
	for _, want := range []string{"route=/v1/streams/{id}", "path=/v1/streams/7", "status=200", "bytes=1004", "request_id=", "remote=192.0.2.1"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "s3cret") {
		t.Fatalf("the query string reached the log: %s", line)
	}
	if len(observed) != 1 || observed[0] != "GET /v1/streams/{id}" {
		t.Fatalf("observed %v", observed)
	}
	// Outside AccessLog there is nothing to detach from.
	middleware.Detach(httptest.NewRequest("GET", "/", nil))(3)
}
