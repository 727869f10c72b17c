package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	project "github.com/ovosgw/gateway"
)

// loadSpec parses and validates openapi.yaml, with its servers replaced by
// "/" so that routes match the test server on any port.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(project.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	return doc
}

// validatingTransport checks every real response of the end-to-end tests
// against openapi.yaml: its route, status, headers and (JSON) body.
type validatingTransport struct {
	t      *testing.T
	router routers.Router
	base   http.RoundTripper
	mu     sync.Mutex
}

// newValidatingTransport validates what base (nil: the default transport)
// brings back.
func newValidatingTransport(t *testing.T, base http.RoundTripper) *validatingTransport {
	doc := loadSpec(t)
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &validatingTransport{t: t, router: r, base: base}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	// openapi.yaml describes HEAD as its GET without a body.
	find := req
	if req.Method == http.MethodHead {
		find = req.Clone(req.Context())
		find.Method = http.MethodGet
	}
	if req.Method == http.MethodHead && resp.StatusCode == http.StatusMethodNotAllowed {
		return resp, nil // the event stream: a GET without HEAD
	}
	route, params, ferr := v.router.FindRoute(find)
	if ferr != nil {
		if (errors.Is(ferr, routers.ErrPathNotFound) && resp.StatusCode == http.StatusNotFound) ||
			(errors.Is(ferr, routers.ErrMethodNotAllowed) && resp.StatusCode == http.StatusMethodNotAllowed) {
			return resp, nil
		}
		v.t.Errorf("openapi: %s %s answered %d but is not in openapi.yaml: %v", req.Method, req.URL.Path, resp.StatusCode, ferr)
		return resp, nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	body := []byte(nil)
	if req.Method == http.MethodHead || mt == "text/event-stream" || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		// A stream is checked by status and headers; other bodies are not JSON.
		opts.ExcludeResponseBody = true
	} else {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: find, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		v.mu.Lock()
		v.t.Errorf("openapi: %s %s → %d does not match openapi.yaml: %v\nbody: %.500s", req.Method, req.URL.Path, resp.StatusCode, err, body)
		v.mu.Unlock()
	}
	return resp, nil
}
