package handlers_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gateway "github.com/ovosgw/gateway"
	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/handlers"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/intentgate"
	"github.com/ovosgw/gateway/internal/sessions"
	"github.com/ovosgw/gateway/internal/utterances"
)

// TestRoutesMatchOpenAPI walks the router and compares its routes, both
// ways, with the operations of openapi.yaml: the document describes exactly
// what the server serves.
func TestRoutesMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			want[method+" "+path] = true
		}
	}
	// Only construction matters here: the walk calls no dependency.
	srv, err := handlers.New(handlers.Config{Metrics: http.NotFoundHandler(), Console: http.NotFoundHandler(), OpenAPI: []byte("x")}, handlers.Deps{
		Sessions:         (*sessions.Sessions)(nil),
		Clients:          (*clients.Registry)(nil),
		Utterances:       (*utterances.Service)(nil),
		Streams:          (*hub.Server)(nil),
		Ready:            readyStub{},
		Blacklist:        (*blacklist.Blacklist)(nil),
		ProtectedIntents: (*intentgate.Gate)(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	err = srv.Walk(func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.Replace(route, "/*", "/{path}", 1)
		got[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// openapi.yaml's rule: every GET operation but the event stream also
	// answers HEAD (same status and headers, no body); the document does not
	// repeat them.
	for r := range want {
		if path, ok := strings.CutPrefix(r, "GET "); ok && path != streamPath {
			want["HEAD "+path] = true
		}
	}
	if got["HEAD "+streamPath] {
		t.Errorf("the event stream answers HEAD")
	}
	for r := range got {
		if !want[r] {
			t.Errorf("served but not in openapi.yaml: %s", r)
		}
	}
	for r := range want {
		if !got[r] {
			t.Errorf("in openapi.yaml but not served: %s", r)
		}
	}
	if t.Failed() {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		})
		t.Logf("served: %v", keys)
	}
}

// streamPath is the event stream, the one GET without HEAD.
const streamPath = "/v1/clients/{client}/events"

type readyStub struct{}

func (readyStub) Ready() (bool, string)  { return true, "" }
func (readyStub) States() []api.BusState { return []api.BusState{{Bus: "1", State: api.BusUp}} }
func (readyStub) Infos() []api.BusInfo   { return nil }
