package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
)

func TestMethodLabel(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "PATCH": "PATCH", "OPTIONS": "OPTIONS",
		"get": "other", "PROPFIND": "other", "X" + strings.Repeat("A", 60): "other", "": "other",
	} {
		if got := MethodLabel(method); got != want {
			t.Errorf("MethodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}

type stubBlacklist []api.BlacklistEntry

func (b stubBlacklist) List(context.Context) ([]api.BlacklistEntry, error) { return b, nil }

// Every label value of the scrape comes from a fixed set: made-up methods,
// odd statuses and unknown blacklist sources add no series.
func TestLabelsFromFixedSets(t *testing.T) {
	m := New()
	m.Register(BlacklistEntries(stubBlacklist{{Source: api.BlacklistAuto}, {Source: "made-up-source"}}))
	for i := range 50 {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Method = "XMETHOD" + strings.Repeat("Z", i)
		m.ObserveRequest(r, "/healthz", 405, time.Millisecond)
		m.ObserveRequest(httptest.NewRequest(http.MethodGet, "/", nil), "/", 1000+i, time.Millisecond)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	out := string(body)
	for _, bad := range []string{"XMETHOD", "made-up-source", `status="10`} {
		if strings.Contains(out, bad) {
			t.Errorf("%q reached /metrics", bad)
		}
	}
	for _, want := range []string{
		`gateway_http_requests_total{method="other",route="/healthz",status="405"} 50`,
		`gateway_http_requests_total{method="GET",route="/",status="other"} 50`,
		`gateway_blacklist_entries{source="auto"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
