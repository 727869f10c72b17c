package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/handlers"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/ratelimit"
	"github.com/ovosgw/gateway/internal/sessions"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/tokens"
	"github.com/ovosgw/gateway/internal/utterances"
)

// The stream is served over HTTP/1.1 (the connection taken over from
// net/http) and over HTTP/2 (on the handler's goroutine): every test runs on
// both.
var protos = []struct {
	name  string
	major int
	start func(h http.Handler) *httptest.Server
}{
	{"HTTP1", 1, httptest.NewServer},
	{"HTTP2", 2, func(h http.Handler) *httptest.Server {
		ts := httptest.NewUnstartedServer(h)
		ts.EnableHTTP2 = true
		ts.StartTLS()
		return ts
	}},
}

// streamOptions shape a fixture.
type streamOptions struct {
	tokenTTL  time.Duration
	window    int
	perClient int
	perAddr   int
}

// streamFixture is the API on a real server, over a real SQLite store,
// with real sessions, client registry and stream hub.
type streamFixture struct {
	t      *testing.T
	ts     *httptest.Server
	major  int
	api    *handlers.Server
	hub    *hub.Server
	reg    *clients.Registry
	admin  string
	logMu  sync.Mutex
	log    bytes.Buffer
	events []observed
}

// observed is one request the API told Observe of.
type observed struct {
	route  string
	status int
	d      time.Duration
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newStreamFixture(t *testing.T, start func(http.Handler) *httptest.Server, major int, o streamOptions) *streamFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := hub.New(hub.Config{Window: o.window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	// The largest leeway: a token of a short life is still accepted when
	// the stream opens, whatever the machine's speed, and its stream ends
	// at its expiry.
	tok, err := tokens.New(tokens.Config{Secret: bytes.Repeat([]byte("k"), tokens.MinSecretLen), TTL: o.tokenTTL, Leeway: time.Minute}, st)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := clients.New(st, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &streamFixture{t: t, major: major, hub: h, reg: reg, admin: "gwa_" + strings.Repeat("a", 43)}
	sess, err := sessions.New(sessions.Config{AdminTokenHash: sha256.Sum256([]byte(f.admin))}, tok, st, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	limits := handlers.Limits{}
	if o.perClient > 0 {
		limits.StreamsPerClient = ratelimit.NewCaps(o.perClient)
	}
	if o.perAddr > 0 {
		limits.StreamsPerAddr = ratelimit.NewCaps(o.perAddr)
	}
	cfg := handlers.Config{
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&f.logMu, &f.log}, nil)),
		Observe: func(_ *http.Request, route string, status int, d time.Duration) {
			f.logMu.Lock()
			defer f.logMu.Unlock()
			f.events = append(f.events, observed{route, status, d})
		},
	}
	f.api, err = handlers.New(cfg, handlers.Deps{
		Sessions:   sess,
		Clients:    reg,
		Utterances: (*utterances.Service)(nil), // no utterance here
		Streams:    h,
		Ready:      readyStub{},
		Limits:     limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ts = start(f.api)
	t.Cleanup(f.ts.Close)
	return f
}

// newClient registers a client and logs it in; it returns its id and token.
func (f *streamFixture) newClient(id string) (string, string) {
	f.t.Helper()
	created, err := f.reg.Create(context.Background(), api.CreateClientRequest{ID: id, Name: id})
	if err != nil {
		f.t.Fatal(err)
	}
	var s api.SessionResponse
	f.call(http.MethodPost, "/v1/sessions", "", api.SessionRequest{ClientID: id, AccessKey: created.AccessKey}, http.StatusCreated, &s)
	return id, s.Token.Reveal()
}

// call makes an API call and decodes its answer into out.
func (f *streamFixture) call(method, path, token string, body any, want int, out any) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.t.Fatal(err)
		}
	}
}

// stream is one open event stream as a client reads it: raw holds every
// byte of the body read so far.
type stream struct {
	t      *testing.T
	resp   *http.Response
	raw    bytes.Buffer
	dec    *apiclient.Decoder
	body   io.Reader
	cancel context.CancelFunc
}

// open asks for clientID's stream with req's credentials (set by auth) and
// returns the response; a 200 is checked for its protocol and headers.
func (f *streamFixture) open(clientID string, auth func(*http.Request)) (*stream, *http.Response) {
	f.t.Helper()
	// A bound on the whole test's reads, so a stream that never ends fails
	// the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.ts.URL+"/v1/clients/"+clientID+"/events", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		f.t.Cleanup(cancel)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return nil, resp
	}
	if resp.ProtoMajor != f.major {
		f.t.Fatalf("served over HTTP/%d, want HTTP/%d", resp.ProtoMajor, f.major)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		f.t.Fatalf("content type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		f.t.Fatalf("cache control %q", cc)
	}
	s := &stream{t: f.t, resp: resp, cancel: cancel}
	s.body = io.TeeReader(resp.Body, &s.raw)
	s.dec = apiclient.NewDecoder(s.body, 0, "")
	f.t.Cleanup(s.close)
	return s, resp
}

// bearer authenticates with a token.
func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// mustOpen opens a stream that must start, and reads up to its ready event.
func (f *streamFixture) mustOpen(clientID string, auth func(*http.Request)) (*stream, api.ReadyEvent) {
	f.t.Helper()
	s, resp := f.open(clientID, auth)
	if s == nil {
		raw, _ := io.ReadAll(resp.Body)
		f.t.Fatalf("stream of %s: status %d: %s", clientID, resp.StatusCode, raw)
	}
	ev := s.next()
	if ev.Name != api.EventReady {
		f.t.Fatalf("first event %q, want ready", ev.Name)
	}
	var ready api.ReadyEvent
	if err := json.Unmarshal(ev.Data, &ready); err != nil {
		f.t.Fatal(err)
	}
	return s, ready
}

// next reads the stream's next event.
func (s *stream) next() apiclient.Event {
	s.t.Helper()
	ev, err := s.dec.Next()
	if err != nil {
		s.t.Fatalf("stream: %v (read so far: %q)", err, s.raw.String())
	}
	return ev
}

// rest reads the stream to its end and returns all of its body.
func (s *stream) rest() string {
	s.t.Helper()
	for {
		if _, err := s.dec.Next(); err != nil {
			if err != io.EOF {
				s.t.Fatalf("stream: %v (read so far: %q)", err, s.raw.String())
			}
			return s.raw.String()
		}
	}
}

func (s *stream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// problemCode is the code of a problem+json answer (its type's last part).
func problemCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
	var p api.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(p.Type, api.ProblemTypePrefix)
}

// streamLines are the access log lines of the stream route.
func (f *streamFixture) streamLines() []string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	var out []string
	for _, l := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(l, "route=/v1/clients/{client}/events") {
			out = append(out, l)
		}
	}
	return out
}

// streamsObserved are the stream requests Observe was told of.
func (f *streamFixture) streamsObserved() []observed {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	var out []observed
	for _, o := range f.events {
		if o.route == "/v1/clients/{client}/events" {
			out = append(out, o)
		}
	}
	return out
}

// eventually polls cond until it holds, for a bounded time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stream is refused without credentials and for another client's
// session, and opens with a token, the session cookie or a ticket (once).
func TestStreamAuth(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{})
			id, token := f.newClient("kitchen")
			_, other := f.newClient("garage")

			if _, resp := f.open(id, nil); resp.StatusCode != http.StatusUnauthorized || problemCode(t, resp) != api.EUNAUTHORIZED {
				t.Fatalf("without credentials: status %d", resp.StatusCode)
			}
			if _, resp := f.open(id, bearer("not-a-token")); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("with a bad token: status %d", resp.StatusCode)
			}
			if _, resp := f.open(id, bearer(other)); resp.StatusCode != http.StatusForbidden || problemCode(t, resp) != api.EFORBIDDEN {
				t.Fatalf("with another client's token: status %d", resp.StatusCode)
			}

			s, ready := f.mustOpen(id, bearer(token))
			if ready.ClientID != id || ready.SessionID == nil || *ready.SessionID == "" || ready.ConnectionID == "" {
				t.Fatalf("ready %+v", ready)
			}
			s.close()

			s, ready = f.mustOpen(id, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: handlers.CookieName, Value: token}) })
			if ready.ClientID != id || ready.SessionID == nil {
				t.Fatalf("ready by cookie %+v", ready)
			}
			s.close()

			s, ready = f.mustOpen(id, bearer(f.admin))
			if ready.ClientID != id || ready.SessionID != nil {
				t.Fatalf("the admin's ready %+v", ready)
			}
			s.close()

			var ticket api.TicketResponse
			f.call(http.MethodPost, "/v1/sessions/current/ticket", token, nil, http.StatusCreated, &ticket)
			withTicket := func(r *http.Request) { r.URL.RawQuery = "ticket=" + ticket.Ticket.Reveal() }
			// Presented on another client's stream, it is refused and not
			// spent.
			if _, resp := f.open("garage", withTicket); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("a ticket on another client's stream: status %d", resp.StatusCode)
			}
			s, ready = f.mustOpen(id, withTicket)
			if ready.ClientID != id || ready.SessionID == nil {
				t.Fatalf("ready by ticket %+v", ready)
			}
			s.close()
			if _, resp := f.open(id, withTicket); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a ticket used twice: status %d", resp.StatusCode)
			}
		})
	}
}

// The caps on open streams per client and per address refuse the stream
// past them (429 with Retry-After), and a closed stream gives its place
// back.
func TestStreamCaps(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name+"/PerClient", func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{perClient: 1})
			id, token := f.newClient("kitchen")
			first, _ := f.mustOpen(id, bearer(token))
			_, resp := f.open(id, bearer(token))
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || problemCode(t, resp) != api.ERATELIMITED {
				t.Fatalf("past the cap: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			// Another client is not held back by this one's cap.
			other, otherToken := f.newClient("garage")
			f.mustOpen(other, bearer(otherToken))

			first.close()
			var again *stream
			eventually(t, "the closed stream gave its place back", func() bool {
				again, _ = f.open(id, bearer(token))
				return again != nil
			})
			if ev := again.next(); ev.Name != api.EventReady {
				t.Fatalf("first event %q", ev.Name)
			}
		})
		t.Run(p.name+"/PerAddress", func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{perAddr: 1})
			id, token := f.newClient("kitchen")
			other, otherToken := f.newClient("garage")
			f.mustOpen(id, bearer(token))
			_, resp := f.open(other, bearer(otherToken))
			if resp.StatusCode != http.StatusTooManyRequests || problemCode(t, resp) != api.ERATELIMITED {
				t.Fatalf("past the address's cap: status %d", resp.StatusCode)
			}
		})
	}
}

// A Last-Event-ID older than the replay window gets a gap event (with the
// same id as ready), then what the window still holds.
func TestStreamGap(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{window: 2})
			id, token := f.newClient("kitchen")
			var ids []uint64
			for i := range 4 {
				ids = append(ids, f.hub.Publish(id, api.Event{Name: api.EventMessage, Data: []byte(`{"n":` + string(rune('0'+i)) + `}`)}))
			}
			s, _ := f.mustOpen(id, func(r *http.Request) {
				bearer(token)(r)
				r.Header.Set("Last-Event-ID", eventID(ids[0]))
			})
			readyID := s.dec.LastID()
			gap := s.next()
			if gap.Name != api.EventGap || gap.ID != readyID {
				t.Fatalf("after ready: %q id %q, want gap with ready's id %q", gap.Name, gap.ID, readyID)
			}
			var g api.GapEvent
			if err := json.Unmarshal(gap.Data, &g); err != nil {
				t.Fatal(err)
			}
			if g.LastEventID != eventID(ids[0]) || g.FirstEventID != eventID(ids[2]) {
				t.Fatalf("gap %+v, want from %d to %d", g, ids[0], ids[2])
			}
			for _, want := range ids[2:] {
				ev := s.next()
				if ev.Name != api.EventMessage || ev.ID != eventID(want) {
					t.Fatalf("replayed %q id %q, want message %d", ev.Name, ev.ID, want)
				}
			}
			// A live event follows the replay.
			live := f.hub.Publish(id, api.Event{Name: api.EventMessage, Data: []byte(`{"n":4}`)})
			if ev := s.next(); ev.ID != eventID(live) {
				t.Fatalf("live event id %q, want %d", ev.ID, live)
			}
		})
	}
}

// A stream ends when its session's token expires, saying why; its access
// log line then comes, with what it sent.
func TestStreamEndsAtExpiry(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{tokenTTL: time.Second})
			id, token := f.newClient("kitchen")
			s, _ := f.mustOpen(id, bearer(token))
			body := s.rest()
			if !strings.HasSuffix(body, ": the session expired; log in again\n\n") {
				t.Fatalf("the stream ended with %q", body)
			}
			f.checkLogged(t, body)
		})
	}
}

// checkLogged checks the stream's one access log line and observation,
// once it has ended: status 200 and the bytes of body the client received.
func (f *streamFixture) checkLogged(t *testing.T, body string) {
	t.Helper()
	eventually(t, "the stream's access log line", func() bool { return len(f.streamLines()) > 0 })
	lines := f.streamLines()
	if len(lines) != 1 {
		t.Fatalf("stream lines %q", lines)
	}
	for _, want := range []string{"status=200", "bytes=" + itoa(len(body)), "client_id=kitchen", "remote=127.0.0.1"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the stream's line lacks %q: %s", want, lines[0])
		}
	}
	if obs := f.streamsObserved(); len(obs) != 1 || obs[0].status != http.StatusOK {
		t.Fatalf("observed %+v", obs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// eventID is an event id as the stream writes it.
func eventID(id uint64) string { return strconv.FormatUint(id, 10) }

// At shutdown (Close, then http.Server.Shutdown and Wait) every open stream
// gets what was published before, then its reconnect hint, then its end;
// and it is logged, with its whole life and size, before Wait returns.
func TestStreamShutdownHint(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			f := newStreamFixture(t, p.start, p.major, streamOptions{})
			id, token := f.newClient("kitchen")
			s, _ := f.mustOpen(id, bearer(token))
			if lines := f.streamLines(); len(lines) != 0 {
				t.Fatalf("logged while open: %q", lines)
			}
			opened := time.Now()
			// The done event of an utterance ended at shutdown, published
			// before the streams are told to end.
			done := f.hub.Publish(id, api.Event{Name: api.EventDone, Data: []byte(`{"utterance_id":"u1","status":"error"}`)})
			closing := time.Now()
			f.api.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := f.ts.Config.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.api.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			// Logged before Wait returned: the stream had ended.
			obs := f.streamsObserved()
			if len(obs) != 1 || obs[0].status != http.StatusOK {
				t.Fatalf("observed after Wait: %+v", obs)
			}
			// Its duration is its life: it began before the client had
			// ready and ended after Close.
			if least := closing.Sub(opened); obs[0].d < least {
				t.Fatalf("duration %v, shorter than from ready to Close (%v)", obs[0].d, least)
			}
			ev := s.next()
			if ev.Name != api.EventDone || ev.ID != eventID(done) {
				t.Fatalf("before the hint: %q id %q, want done %d", ev.Name, ev.ID, done)
			}
			body := s.rest()
			if !strings.HasSuffix(body, ": the gateway is shutting down; reconnect\n\n") {
				t.Fatalf("the stream ended with %q", body)
			}
			if s.dec.Retry() < 2*time.Second {
				t.Fatalf("reconnect hint %v, want at least the configured 2s", s.dec.Retry())
			}
			f.checkLogged(t, body)

			// And new streams are refused, with a Retry-After.
			req := httptest.NewRequest(http.MethodGet, "/v1/clients/"+id+"/events", nil)
			bearer(token)(req)
			w := httptest.NewRecorder()
			f.api.ServeHTTP(w, req)
			if resp := w.Result(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("a stream after Close: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		})
	}
}
