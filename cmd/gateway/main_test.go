package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// gateway is a running gateway started through run, as main would, on port 0.
type gateway struct {
	URL        string
	AdminToken string
	DataDir    string
	Stdout     *gatewaytest.Buffer
	Logs       *gatewaytest.Buffer
	client     *http.Client
	cancel     context.CancelFunc
	done       chan error
}

var listenLine = regexp.MustCompile(`gateway listening on (https?://\S+) `)
var adminLine = regexp.MustCompile(`admin token \(shown once, only its hash is kept\): (\S+)`)

// startGateway runs the gateway with env (GATEWAY_* without the prefix) on a
// fresh data dir, unless env names one, and waits until it is ready.
func startGateway(t *testing.T, env map[string]string) *gateway {
	t.Helper()
	// 127.0.0.1 is never banned, so that tests of bad input do not ban
	// the test itself; the ban tests speak from 127.0.0.2 and up.
	full := map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_DATA_DIR": t.TempDir(), "GATEWAY_LOG_LEVEL": "debug", "GATEWAY_IP_ALLOWLIST": "127.0.0.1/32"}
	for k, v := range env {
		full["GATEWAY_"+k] = v
	}
	g := &gateway{Stdout: &gatewaytest.Buffer{}, Logs: &gatewaytest.Buffer{}, done: make(chan error, 1), DataDir: full["GATEWAY_DATA_DIR"]}
	g.client = &http.Client{Transport: newValidatingTransport(t, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	getenv := func(k string) string { return full[k] }
	go func() { g.done <- run(ctx, nil, getenv, strings.NewReader(""), g.Stdout, g.Logs) }()
	t.Cleanup(func() { g.Stop(t) })

	gatewaytest.EventuallyWithin(t, startLimit, "the gateway to listen", func() bool {
		select {
		case err := <-g.done:
			t.Fatalf("gateway exited early: %v\nstdout:\n%s\nlogs:\n%s", err, g.Stdout.String(), g.Logs.String())
		default:
		}
		if m := listenLine.FindStringSubmatch(g.Stdout.String()); m != nil {
			g.URL = m[1]
		}
		return g.URL != ""
	})
	if m := adminLine.FindStringSubmatch(g.Stdout.String()); m != nil {
		g.AdminToken = m[1]
	} else if tok, ok := env["ADMIN_TOKEN"]; ok {
		g.AdminToken = tok
	}
	gatewaytest.EventuallyWithin(t, startLimit, "the gateway to be ready", func() bool {
		resp, err := g.client.Get(g.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return g
}

// startLimit bounds the start of a gateway (or a bus command) in a test: a
// server built with -race on a loaded machine takes its time.
const startLimit = 20 * time.Second

// Stop cancels run and waits for it to return nil.
func (g *gateway) Stop(t *testing.T) {
	t.Helper()
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("run did not return after cancel")
	}
}

// call sends a JSON request and decodes a JSON answer into out (if not nil).
func (g *gateway) call(t *testing.T, method, path, token string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// createClient registers a client through the admin API and returns its key.
func (g *gateway) createClient(t *testing.T, id string, aliases ...string) string {
	t.Helper()
	var out api.ClientKeyResponse
	resp := g.call(t, http.MethodPost, "/v1/admin/clients", g.AdminToken, api.CreateClientRequest{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Aliases: aliases}, &out)
	wantStatus(t, resp, http.StatusCreated)
	if out.AccessKey == "" {
		t.Fatal("no access key in the answer")
	}
	return out.AccessKey.Reveal()
}

// login opens a session and returns it.
func (g *gateway) login(t *testing.T, id, key string) api.SessionResponse {
	t.Helper()
	var s api.SessionResponse
	resp := g.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": id, "access_key": key}, &s)
	wantStatus(t, resp, http.StatusCreated)
	return s
}

// newClient creates a client and logs it in.
func (g *gateway) newClient(t *testing.T, id string) api.SessionResponse {
	t.Helper()
	return g.login(t, id, g.createClient(t, id))
}

// sseEvent is one event read from a stream (ID: the stream's last event id
// once it arrived).
type sseEvent struct {
	ID, Name string
	Data     string
}

// stream is an open event stream read by a goroutine.
type stream struct {
	resp     *http.Response
	events   chan sseEvent
	comments chan string
	retry    chan string
	closed   chan struct{}
}

// openStream opens the client's event stream with a Bearer token (or the
// headers given) and starts reading it.
func (g *gateway) openStream(t *testing.T, client string, header http.Header) *stream {
	t.Helper()
	return g.openStreamURL(t, "/v1/clients/"+client+"/events", header)
}

// openStreamURL opens a stream at path (which may carry a query).
func (g *gateway) openStreamURL(t *testing.T, path string, header http.Header) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 1024), comments: make(chan string, 1024), retry: make(chan string, 16), closed: make(chan struct{})}
	go s.read()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func (s *stream) read() {
	defer close(s.closed)
	dec := apiclient.NewDecoder(s.resp.Body, 1<<20, "")
	dec.Observe(func(field, value string) {
		switch field {
		case "": // a comment
			select {
			case s.comments <- strings.TrimSpace(value):
			default:
			}
		case "retry":
			select {
			case s.retry <- value:
			default:
			}
		}
	})
	for {
		ev, err := dec.Next()
		if err != nil {
			return
		}
		s.events <- sseEvent{ID: ev.ID, Name: ev.Name, Data: string(ev.Data)}
	}
}

// next returns the next event whose name is one of names (others skipped).
func (s *stream) next(t *testing.T, names ...string) sseEvent {
	t.Helper()
	return s.nextWithin(t, 10*time.Second, names...)
}

// nextWithin is next, waiting at most d.
func (s *stream) nextWithin(t *testing.T, d time.Duration, names ...string) sseEvent {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-s.events:
			for _, n := range names {
				if ev.Name == n {
					return ev
				}
			}
		case <-s.closed:
			// Drain what was read before the end.
			select {
			case ev := <-s.events:
				for _, n := range names {
					if ev.Name == n {
						return ev
					}
				}
				continue
			default:
			}
			t.Fatalf("stream ended while waiting for %v", names)
		case <-timeout:
			t.Fatalf("no %v event within %v", names, d)
		}
	}
}

// waitClosed waits for the server to end the stream.
func (s *stream) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not ended")
	}
}

func decode[T any](t *testing.T, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return v
}

// say posts an utterance and returns the 202 answer.
func say(t *testing.T, g *gateway, token, text string) api.UtteranceAccepted {
	t.Helper()
	var a api.UtteranceAccepted
	resp := g.call(t, http.MethodPost, "/v1/utterances", token, api.UtteranceRequest{Utterance: text}, &a)
	wantStatus(t, resp, http.StatusAccepted)
	return a
}

// sayWait posts an utterance with ?wait= and returns the 200 answer.
func sayWait(t *testing.T, g *gateway, token, text string) api.UtteranceResult {
	t.Helper()
	var r api.UtteranceResult
	resp := g.call(t, http.MethodPost, "/v1/utterances?wait=10s", token, api.UtteranceRequest{Utterance: text}, &r)
	wantStatus(t, resp, http.StatusOK)
	return r
}

// from returns a copy of the gateway handle whose requests come from the
// loopback address ip (127.0.0.2, ...), to test per-address rules.
func (g *gateway) from(t *testing.T, ip string) *gateway {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	c := *g
	c.client = &http.Client{Transport: newValidatingTransport(t, tr)}
	return &c
}

// waitFor polls cond with the tests' one polling helper.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	gatewaytest.Eventually(t, "the condition", cond)
}

var fingerprintLine = regexp.MustCompile(`fingerprint: ([0-9A-F:]{95})`)

// startTLSGateway starts a gateway on a self-signed certificate, or on the
// TLS_CERT and TLS_KEY of env (GATEWAY_* without the prefix); its client
// takes any certificate (the tests check the pin themselves).
func startTLSGateway(t *testing.T, env ...map[string]string) *gateway {
	t.Helper()
	dir := t.TempDir()
	full := map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_DATA_DIR": dir, "GATEWAY_TLS_SELF_SIGNED": "true", "GATEWAY_IP_ALLOWLIST": "127.0.0.1/32"}
	for _, e := range env {
		for k, v := range e {
			full["GATEWAY_"+k] = v
		}
		if e["TLS_CERT"] != "" {
			delete(full, "GATEWAY_TLS_SELF_SIGNED")
		}
	}
	g := &gateway{Stdout: &gatewaytest.Buffer{}, Logs: &gatewaytest.Buffer{}, done: make(chan error, 1), DataDir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() {
		g.done <- run(ctx, nil, func(k string) string { return full[k] }, strings.NewReader(""), g.Stdout, g.Logs)
	}()
	t.Cleanup(func() { g.Stop(t) })
	waitFor(t, func() bool { return listenLine.MatchString(g.Stdout.String()) })
	g.URL = listenLine.FindStringSubmatch(g.Stdout.String())[1]
	g.AdminToken = adminLine.FindStringSubmatch(g.Stdout.String())[1]
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the test checks the pin itself
	g.client = &http.Client{Transport: newValidatingTransport(t, tr)}
	return g
}
