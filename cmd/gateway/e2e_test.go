package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
)

// TestSayHelloEndToEnd is the README's curl session: create a client, log
// in, open the stream, say hello, and see the answer and the end arrive.
func TestSayHelloEndToEnd(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "kitchen")
	if s.TokenType != "Bearer" || s.ClientID != "kitchen" || s.SessionID == "" || s.ExpiresIn <= 0 {
		t.Fatalf("session %+v", s)
	}
	st := g.openStream(t, "kitchen", bearer(s.Token.Reveal()))
	ready := decode[api.ReadyEvent](t, st.next(t, api.EventReady).Data)
	if ready.ClientID != "kitchen" || ready.ConnectionID == "" {
		t.Fatalf("ready %+v", ready)
	}

	acc := say(t, g, s.Token.Reveal(), "hello")
	if acc.Status != api.StatusAccepted || acc.ClientID != "kitchen" || acc.SessionID != s.SessionID || acc.ID == "" {
		t.Fatalf("accepted %+v", acc)
	}
	speak := decode[api.SpeakEvent](t, st.next(t, api.EventSpeak).Data)
	if speak.UtteranceID == nil || *speak.UtteranceID != acc.ID {
		t.Fatalf("speak answers %v, want %s", speak.UtteranceID, acc.ID)
	}
	if speak.Utterance == "" || speak.ExpectResponse {
		t.Fatalf("speak %+v", speak)
	}
	done := decode[api.DoneEvent](t, st.next(t, api.EventDone).Data)
	if done.UtteranceID != acc.ID || done.Status != api.StatusHandled {
		t.Fatalf("done %+v", done)
	}
}

func TestWaitReturnsSpeechAndStatus(t *testing.T) {
	for _, dialect := range []string{"ovos", "classic"} {
		t.Run(dialect, func(t *testing.T) {
			g := startGateway(t, map[string]string{"EMBEDDED_DIALECT": dialect})
			s := g.newClient(t, "den")
			tok := s.Token.Reveal()

			r := sayWait(t, g, tok, "say the cat is on the mat")
			if r.Status != api.StatusHandled || len(r.Speech) != 1 || !strings.Contains(strings.ToLower(r.Speech[0].Utterance), "the cat is on the mat") {
				t.Fatalf("say: %+v", r)
			}
			if r.ClientID != "den" || r.SessionID != s.SessionID || r.ID == "" {
				t.Fatalf("ids: %+v", r)
			}
			r = sayWait(t, g, tok, "blorp frobnicate quux")
			if r.Status != api.StatusIntentFailure || len(r.Speech) != 0 {
				t.Fatalf("gibberish: %+v", r)
			}
		})
	}
}

// TestEventsNameTheirSession: the stream is the client's, shared by its
// sessions; each speak and done event says which session it belongs to
// (issue 17, item 9), so that a client shows only its own session's answers.
func TestEventsNameTheirSession(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "hall")
	a, b := g.login(t, "hall", key), g.login(t, "hall", key)
	if a.SessionID == b.SessionID {
		t.Fatal("two logins share a session")
	}
	st := g.openStream(t, "hall", bearer(a.Token.Reveal()))
	if r := decode[api.ReadyEvent](t, st.next(t, api.EventReady).Data); r.SessionID == nil || *r.SessionID != a.SessionID {
		t.Errorf("ready names the session %v, want %s", r.SessionID, a.SessionID)
	}
	for _, s := range []api.SessionResponse{a, b, a} {
		acc := say(t, g, s.Token.Reveal(), "hello")
		speak := decode[api.SpeakEvent](t, st.next(t, api.EventSpeak).Data)
		if speak.SessionID == nil || *speak.SessionID != s.SessionID {
			t.Errorf("speak of %s names the session %v, want %s", acc.ID, speak.SessionID, s.SessionID)
		}
		done := decode[api.DoneEvent](t, st.next(t, api.EventDone).Data)
		if done.UtteranceID != acc.ID || done.SessionID != s.SessionID {
			t.Errorf("done %+v, want the utterance %s of the session %s", done, acc.ID, s.SessionID)
		}
	}
}

// TestWaitInBareSeconds checks that ?wait= takes bare seconds as curl users
// type them (issue 17, item 10), as well as a duration.
func TestWaitInBareSeconds(t *testing.T) {
	g := startGateway(t, nil)
	tok := g.newClient(t, "lab").Token.Reveal()
	for _, wait := range []string{"10", "9.5", "10s"} {
		var r api.UtteranceResult
		resp := g.call(t, http.MethodPost, "/v1/utterances?wait="+wait, tok, api.UtteranceRequest{Utterance: "say hello"}, &r)
		wantStatus(t, resp, http.StatusOK)
		if r.Status != api.StatusHandled {
			t.Errorf("wait=%s: status %q, want handled", wait, r.Status)
		}
	}
}

func TestFollowUpQuestion(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "porch")
	tok := s.Token.Reveal()
	st := g.openStream(t, "porch", bearer(tok))

	q := sayWait(t, g, tok, "ask me something")
	if q.Status != api.StatusAwaitingResponse || len(q.Speech) == 0 || !q.Speech[len(q.Speech)-1].ExpectResponse {
		t.Fatalf("question: %+v", q)
	}
	a := sayWait(t, g, tok, "blue")
	// The reply is spoken in the question's context, yet it is what the
	// answer got back.
	if a.Status != api.StatusHandled || len(a.Speech) != 1 || !strings.Contains(a.Speech[0].Utterance, "You said blue") {
		t.Fatalf("answer: %+v", a)
	}
	// On the stream the reply names the answer, and both utterances end.
	replied, ended := false, map[string]string{}
	for len(ended) < 2 {
		ev := st.next(t, api.EventSpeak, api.EventDone)
		switch ev.Name {
		case api.EventSpeak:
			if sp := decode[api.SpeakEvent](t, ev.Data); strings.Contains(sp.Utterance, "You said blue") {
				if sp.UtteranceID == nil || *sp.UtteranceID != a.ID {
					t.Fatalf("the reply names %v, want the answer %s", sp.UtteranceID, a.ID)
				}
				replied = true
			}
		case api.EventDone:
			d := decode[api.DoneEvent](t, ev.Data)
			if d.UtteranceID == a.ID && !replied {
				t.Fatal("the answer's done came before its reply")
			}
			if d.UtteranceID == q.ID || d.UtteranceID == a.ID {
				ended[d.UtteranceID] = d.Status
			}
		}
	}
	if ended[q.ID] != api.StatusHandled || ended[a.ID] != api.StatusHandled {
		t.Fatalf("ended %v", ended)
	}
}

// TestClientsNeverSeeEachOthersReplies has several clients talk at once, with
// the same words, and checks every speak and done lands with its sender.
func TestClientsNeverSeeEachOthersReplies(t *testing.T) {
	g := startGateway(t, nil)
	const n, each = 4, 5
	type client struct {
		id  string
		tok string
		st  *stream
	}
	cs := make([]client, n)
	for i := range cs {
		id := fmt.Sprintf("room-%d", i)
		s := g.newClient(t, id)
		cs[i] = client{id: id, tok: s.Token.Reveal(), st: g.openStream(t, id, bearer(s.Token.Reveal()))}
		cs[i].st.next(t, api.EventReady)
	}
	sent := make([]map[string]bool, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range cs {
		sent[i] = map[string]bool{}
		wg.Go(func() {
			for j := range each {
				a := say(t, g, cs[i].tok, fmt.Sprintf("say %s number %d", cs[i].id, j))
				mu.Lock()
				sent[i][a.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, c := range cs {
		speaks, dones := 0, 0
		for speaks < each || dones < each {
			ev := c.st.next(t, api.EventSpeak, api.EventDone)
			switch ev.Name {
			case api.EventSpeak:
				sp := decode[api.SpeakEvent](t, ev.Data)
				if sp.UtteranceID == nil || !sent[i][*sp.UtteranceID] {
					t.Fatalf("%s got speech for %v, not one of its utterances", c.id, sp.UtteranceID)
				}
				if !strings.Contains(sp.Utterance, c.id) {
					t.Fatalf("%s heard %q", c.id, sp.Utterance)
				}
				speaks++
			case api.EventDone:
				d := decode[api.DoneEvent](t, ev.Data)
				if !sent[i][d.UtteranceID] || d.Status != api.StatusHandled {
					t.Fatalf("%s got done %+v", c.id, d)
				}
				dones++
			}
		}
	}
}

func TestStreamResumesWithLastEventID(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "hall")
	tok := s.Token.Reveal()
	st := g.openStream(t, "hall", bearer(tok))
	st.next(t, api.EventReady)
	say(t, g, tok, "say one")
	first := st.next(t, api.EventSpeak)
	st.next(t, api.EventDone)
	st.resp.Body.Close()

	// Said while nobody listens; the resumed stream replays it. Each is
	// awaited: the embedded assistant handles utterances concurrently, so
	// two sent at once may be answered in either order.
	for _, u := range []string{"say two", "say three"} {
		if r := sayWait(t, g, tok, u); r.Status != api.StatusHandled {
			t.Fatalf("%s: %+v", u, r)
		}
	}
	h := bearer(tok)
	h.Set("Last-Event-ID", first.ID)
	st2 := g.openStream(t, "hall", h)
	ready := st2.next(t, api.EventReady)
	if ready.ID != first.ID {
		t.Fatalf("ready id %s, want the resume point %s", ready.ID, first.ID)
	}
	var heard []string
	for len(heard) < 2 {
		heard = append(heard, decode[api.SpeakEvent](t, st2.next(t, api.EventSpeak).Data).Utterance)
	}
	if !strings.Contains(heard[0], "two") || !strings.Contains(heard[1], "three") {
		t.Fatalf("replayed %q", heard)
	}

	// An id from before the window: a gap event first.
	h.Set("Last-Event-ID", "1")
	st3 := g.openStream(t, "hall", h)
	st3.next(t, api.EventReady)
	gap := decode[api.GapEvent](t, st3.next(t, api.EventGap).Data)
	if gap.LastEventID != "1" {
		t.Fatalf("gap %+v", gap)
	}
}

func TestLogoutRevokesAndEndsStreams(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "garage")
	tok := s.Token.Reveal()
	st := g.openStream(t, "garage", bearer(tok))
	st.next(t, api.EventReady)

	resp := g.call(t, http.MethodDelete, "/v1/sessions/current", tok, nil, nil)
	wantStatus(t, resp, http.StatusNoContent)
	st.waitClosed(t)
	resp = g.call(t, http.MethodGet, "/v1/clients/me", tok, nil, nil)
	wantStatus(t, resp, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %v", resp.Header)
	}
}

func TestDeletingAClientEndsItsStreamsAndSessions(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "attic")
	tok := s.Token.Reveal()
	st := g.openStream(t, "attic", bearer(tok))
	st.next(t, api.EventReady)
	resp := g.call(t, http.MethodDelete, "/v1/admin/clients/attic", g.AdminToken, nil, nil)
	wantStatus(t, resp, http.StatusNoContent)
	st.waitClosed(t)
	wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "hello"}, nil), http.StatusUnauthorized)
}

func TestRotatingTheKeyEndsOldSessions(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "shed")
	tok := s.Token.Reveal()
	st := g.openStream(t, "shed", bearer(tok))
	st.next(t, api.EventReady)
	var k api.ClientKeyResponse
	wantStatus(t, g.call(t, http.MethodPost, "/v1/admin/clients/shed/key", g.AdminToken, nil, &k), http.StatusOK)
	st.waitClosed(t)
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", tok, nil, nil), http.StatusUnauthorized)
	s2 := g.login(t, "shed", k.AccessKey.Reveal())
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", s2.Token.Reveal(), nil, nil), http.StatusOK)
}

func TestNamesAliasesAndStreamByAlias(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "bedroom")
	g.createClient(t, "office", "study")
	tok := s.Token.Reveal()

	var p api.ClientProfile
	wantStatus(t, g.call(t, http.MethodPut, "/v1/clients/me/names", tok, api.NamesRequest{Name: "Bedroom speaker", Aliases: []string{"sleep-room"}}, &p), http.StatusOK)
	if p.Name != "Bedroom speaker" || len(p.Aliases) != 1 || p.Aliases[0] != "sleep-room" {
		t.Fatalf("profile %+v", p)
	}
	wantStatus(t, g.call(t, http.MethodPut, "/v1/clients/me/names", tok, api.NamesRequest{Name: "x", Aliases: []string{"study"}}, nil), http.StatusConflict)
	wantStatus(t, g.call(t, http.MethodPut, "/v1/clients/me/names", tok, api.NamesRequest{Name: "x", Aliases: []string{"office"}}, nil), http.StatusConflict)
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", tok, nil, &p), http.StatusOK)
	if p.ID != "bedroom" || p.Name != "Bedroom speaker" {
		t.Fatalf("me %+v", p)
	}
	// The stream by alias is the same stream; another client's is refused.
	st := g.openStream(t, "sleep-room", bearer(tok))
	if r := decode[api.ReadyEvent](t, st.next(t, api.EventReady).Data); r.ClientID != "bedroom" {
		t.Fatalf("ready %+v", r)
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/clients/study/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another client's stream: %d", resp.StatusCode)
	}
	// Logging in by alias works.
	key := g.createClient(t, "lounge", "living")
	if s := g.login(t, "living", key); s.ClientID != "lounge" {
		t.Fatalf("login by alias: %+v", s)
	}
}

func TestStreamByTicketAndCookie(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "deck")
	var s api.SessionResponse
	resp := g.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "deck", "access_key": key}, &s)
	wantStatus(t, resp, http.StatusCreated)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "gw_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", cookie)
	}
	st := g.openStream(t, "deck", http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
	st.next(t, api.EventReady)
	// The cookie alone does not authorise changing anything.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/utterances", strings.NewReader(`{"utterance":"hello"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(cookie)
	r2, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("cookie-only POST: %d", r2.StatusCode)
	}

	var tk api.TicketResponse
	wantStatus(t, g.call(t, http.MethodPost, "/v1/sessions/current/ticket", s.Token.Reveal(), nil, &tk), http.StatusCreated)
	if tk.ExpiresIn != 60 {
		t.Fatalf("ticket %+v", tk)
	}
	st2 := g.openStreamURL(t, "/v1/clients/deck/events?ticket="+tk.Ticket.Reveal(), nil)
	st2.next(t, api.EventReady)
	// Single use.
	r3, err := g.client.Get(g.URL + "/v1/clients/deck/events?ticket=" + tk.Ticket.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ticket reused: %d", r3.StatusCode)
	}
	if strings.Contains(g.Logs.String(), tk.Ticket.Reveal()) || strings.Contains(g.Logs.String(), s.Token.Reveal()) || strings.Contains(g.Logs.String(), key) {
		t.Fatal("a secret reached the logs")
	}
}

func TestAdminStreamsAnyClient(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "yard")
	st := g.openStream(t, "yard", bearer(g.AdminToken))
	st.next(t, api.EventReady)
	say(t, g, s.Token.Reveal(), "hello")
	st.next(t, api.EventSpeak)
}

// TestBadInput checks that what a client sends wrong gets the problem+json
// 4xx the contract names, never a 500.
func TestBadInput(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "lab")
	tok := s.Token.Reveal()
	long := strings.Repeat("a", 70<<10)
	cases := []struct {
		name, method, path, token, ctype, body string
		want                                   int
	}{
		{"no token", "POST", "/v1/utterances", "", "application/json", `{"utterance":"hi"}`, 401},
		{"forged token", "POST", "/v1/utterances", tok[:len(tok)-4] + "AAAA", "application/json", `{"utterance":"hi"}`, 401},
		{"garbage token", "GET", "/v1/clients/me", "not.a.jwt", "", "", 401},
		{"admin token as client", "GET", "/v1/clients/me", g.AdminToken, "", "", 401},
		{"client token as admin", "GET", "/v1/admin/clients", tok, "", "", 403},
		{"token in query", "GET", "/v1/clients/me?access_token=" + tok, "", "", "", 400},
		{"not json", "POST", "/v1/utterances", tok, "application/json", `hello`, 400},
		{"wrong content type", "POST", "/v1/utterances", tok, "text/plain", `{"utterance":"hi"}`, 415},
		{"no content type", "POST", "/v1/utterances", tok, "", `{"utterance":"hi"}`, 415},
		{"array body", "POST", "/v1/utterances", tok, "application/json", `["hi"]`, 400},
		{"empty utterance", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"  "}`, 400},
		{"number utterance", "POST", "/v1/utterances", tok, "application/json", `{"utterance":42}`, 400},
		{"missing utterance", "POST", "/v1/utterances", tok, "application/json", `{}`, 400},
		{"unknown member", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"hi","x":1}`, 400},
		{"two objects", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"hi"}{"utterance":"ho"}`, 400},
		{"invalid utf-8", "POST", "/v1/utterances", tok, "application/json", "{\"utterance\":\"h\xffi\"}", 400},
		{"control characters", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"hi\u0000there"}`, 400},
		{"bad lang", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"hi","lang":"english please"}`, 400},
		{"too large", "POST", "/v1/utterances", tok, "application/json", `{"utterance":"` + long + `"}`, 413},
		{"bad wait", "POST", "/v1/utterances?wait=soon", tok, "application/json", `{"utterance":"hi"}`, 400},
		{"negative wait", "POST", "/v1/utterances?wait=-1s", tok, "application/json", `{"utterance":"hi"}`, 400},
		{"huge wait", "POST", "/v1/utterances?wait=100h", tok, "application/json", `{"utterance":"hi"}`, 400},
		{"huge wait in seconds", "POST", "/v1/utterances?wait=100000", tok, "application/json", `{"utterance":"hi"}`, 400},
		{"zero wait in seconds", "POST", "/v1/utterances?wait=0", tok, "application/json", `{"utterance":"hi"}`, 400},
		{"truncated json", "POST", "/v1/sessions", "", "application/json", `{"client_id":"lab"`, 400},
		{"wrong key", "POST", "/v1/sessions", "", "application/json", `{"client_id":"lab","access_key":"nope"}`, 401},
		{"unknown client", "POST", "/v1/sessions", "", "application/json", `{"client_id":"ghost","access_key":"nope"}`, 401},
		{"bad client id", "POST", "/v1/admin/clients", g.AdminToken, "application/json", `{"id":"Not A Slug"}`, 400},
		{"taken client id", "POST", "/v1/admin/clients", g.AdminToken, "application/json", `{"id":"lab"}`, 409},
		{"delete unknown", "DELETE", "/v1/admin/clients/ghost", g.AdminToken, "", "", 404},
		{"stream of unknown client", "GET", "/v1/clients/ghost/events", tok, "", "", 404},
		{"stream without token", "GET", "/v1/clients/lab/events", "", "", "", 401},
		{"stream with bad ticket", "GET", "/v1/clients/lab/events?ticket=nope", "", "", "", 401},
		{"unknown route", "GET", "/v1/nothing", "", "", "", 404},
		{"wrong method", "PATCH", "/v1/utterances", tok, "", "", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, g.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p api.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Status != c.want || p.Title == "" || !strings.HasPrefix(p.Type, api.ProblemTypePrefix) || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
		})
	}
	if strings.Contains(g.Logs.String(), tok) {
		t.Fatal("the token reached the logs")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	g := startGateway(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/"} {
		resp, err := g.client.Get(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
}

// The stream stays alive through proxies with keepalive comments, and ends
// when the session's token expires.
func TestStreamHeartbeatAndExpiry(t *testing.T) {
	g := startGateway(t, map[string]string{"HEARTBEAT": "100ms", "TOKEN_TTL": "2s"})
	s := g.newClient(t, "clock")
	st := g.openStream(t, "clock", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	select {
	case c := <-st.comments:
		if c != "keepalive" {
			t.Fatalf("comment %q", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no keepalive")
	}
	st.waitClosed(t)
	if time.Now().Before(s.ExpiresAt.Add(-time.Second)) {
		t.Fatalf("the stream ended before the token expired (%v)", s.ExpiresAt)
	}
}

// GATEWAY_EMBEDDED_BUS_ADDR opens the embedded bus to other peers, which
// speak to its skills as to a real assistant's bus.
func TestEmbeddedBusListens(t *testing.T) {
	g := startGateway(t, map[string]string{"EMBEDDED_BUS_ADDR": "127.0.0.1:0"})
	m := regexp.MustCompile(`embedded messagebus: (ws://\S+)`).FindStringSubmatch(g.Stdout.String())
	if m == nil {
		t.Fatalf("no bus address printed:\n%s", g.Stdout.String())
	}
	peer, err := busclient.New(busclient.Config{URL: m[1], Name: "device"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peer.Run(ctx)
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	spoken := make(chan string, 4)
	defer peer.Subscribe(func(f *api.Frame) {
		if f.Type == api.TypeSpeak && f.Route.Destination.Has("device") {
			var d struct{ Utterance string }
			_ = json.Unmarshal(f.Data, &d)
			spoken <- d.Utterance
		}
	})()
	err = peer.Send(ctx, api.Message{Type: api.TypeUtterance, Data: json.RawMessage(`{"utterances":["say good evening"],"lang":"en-us"}`),
		Context: json.RawMessage(`{"source":"device","destination":["skills"],"session":{"session_id":"dev-1"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-spoken:
		if !strings.Contains(u, "good evening") {
			t.Fatalf("spoke %q", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the embedded skills did not answer the peer")
	}
}

// TestEmbeddedBusRefusesWebPages: a page in a browser on the host must not
// join the embedded bus, whatever Origin it sends; with
// GATEWAY_EMBEDDED_BUS_SECRET a peer must present the secret in a header.
func TestEmbeddedBusRefusesWebPages(t *testing.T) {
	const secret = "a bus secret of some length"
	g := startGateway(t, map[string]string{"EMBEDDED_BUS_ADDR": "127.0.0.1:0", "EMBEDDED_BUS_SECRET": secret})
	m := regexp.MustCompile(`embedded messagebus: (ws://\S+)`).FindStringSubmatch(g.Stdout.String())
	if m == nil {
		t.Fatalf("no bus address printed:\n%s", g.Stdout.String())
	}
	auth := "Bearer " + secret
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}, "Authorization": {auth}},
		{"Origin": {"null"}, "Authorization": {auth}},
		{"Origin": {"http://" + strings.TrimSuffix(strings.TrimPrefix(m[1], "ws://"), "/core")}, "Authorization": {auth}},
		{},
		{"Authorization": {"Bearer not the secret"}},
	} {
		c, resp, err := websocket.DefaultDialer.Dial(m[1], h)
		if err == nil {
			c.Close()
			t.Fatalf("joined with %v", h.Get("Origin"))
		}
		if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized) {
			t.Fatalf("Origin %q: %v (%v), want 403 or 401", h.Get("Origin"), err, resp)
		}
	}
	c, _, err := websocket.DefaultDialer.Dial(m[1], http.Header{"Authorization": {auth}})
	if err != nil {
		t.Fatalf("a peer with the secret: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"connected"`) {
		t.Fatalf("first frame %s, %v", b, err)
	}
	// Another gateway's bus client, given a bus URL with the secret as its
	// password, joins (it sends HTTP Basic).
	host := strings.TrimSuffix(strings.TrimPrefix(m[1], "ws://"), "/core")
	peer, err := busclient.New(busclient.Config{URL: (&url.URL{Scheme: "ws", User: url.UserPassword("gateway", secret), Host: host, Path: "/core"}).String(), Name: "other-gateway"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go peer.Run(ctx)
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatalf("a bus client with the secret in its URL: %v (%s)", err, peer.Status().LastError)
	}
	if strings.Contains(g.Logs.String(), secret) || strings.Contains(g.Stdout.String(), secret) {
		t.Fatal("the bus secret was logged")
	}
}

func TestAdminRenamesAClient(t *testing.T) {
	g := startGateway(t, nil)
	g.createClient(t, "loft")
	g.createClient(t, "cellar", "wine")
	var c api.AdminClient
	wantStatus(t, g.call(t, http.MethodPatch, "/v1/admin/clients/loft", g.AdminToken, api.NamesRequest{Name: "Loft speaker", Aliases: []string{"attic"}}, &c), http.StatusOK)
	if c.ID != "loft" || c.Name != "Loft speaker" || len(c.Aliases) != 1 || c.Aliases[0] != "attic" {
		t.Fatalf("renamed %+v", c)
	}
	wantStatus(t, g.call(t, http.MethodPatch, "/v1/admin/clients/loft", g.AdminToken, api.NamesRequest{Name: "x", Aliases: []string{"wine"}}, nil), http.StatusConflict)
	wantStatus(t, g.call(t, http.MethodPatch, "/v1/admin/clients/ghost", g.AdminToken, api.NamesRequest{Name: "x"}, nil), http.StatusNotFound)
}

// TestSessionRefresh: a refresh gives the session a new token (the old one
// lives on until its expiry, for another tab); the console's cookie
// refreshes only from the gateway's own pages; a logout ends every token of
// the session (issue 17, item 5).
func TestSessionRefresh(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "deck")
	first := g.login(t, "deck", key)

	refresh := func(t *testing.T, token string, cookie *http.Cookie, header http.Header) (*http.Response, api.SessionResponse) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/sessions/current/refresh", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s api.SessionResponse
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp, s
	}
	sessionCookie := func(t *testing.T, resp *http.Response) *http.Cookie {
		t.Helper()
		for _, c := range resp.Cookies() {
			if c.Name == "gw_session" && c.Value != "" {
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/v1/" {
					t.Fatalf("session cookie %+v", c)
				}
				return c
			}
		}
		t.Fatal("no session cookie")
		return nil
	}

	// By Bearer token: same session, a new token.
	resp, second := refresh(t, first.Token.Reveal(), nil, nil)
	wantStatus(t, resp, http.StatusOK)
	if second.SessionID != first.SessionID || second.ClientID != "deck" || second.Token == first.Token {
		t.Fatalf("refreshed %+v from %+v", second, first)
	}
	cookie := sessionCookie(t, resp)
	if cookie.Value != second.Token.Reveal() {
		t.Fatal("the renewed cookie is not the new token")
	}
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", second.Token.Reveal(), nil, nil), http.StatusOK)

	// By cookie: only from the gateway's own pages.
	for _, h := range []http.Header{
		nil,
		{"Origin": {"http://evil.example"}},
		{"Origin": {"null"}},
		{"Sec-Fetch-Site": {"same-site"}, "Origin": {g.URL}},
		{"Sec-Fetch-Site": {"cross-site"}},
	} {
		resp, _ := refresh(t, "", cookie, h)
		wantStatus(t, resp, http.StatusForbidden)
	}
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", second.Token.Reveal(), nil, nil), http.StatusOK)
	resp, third := refresh(t, "", cookie, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	wantStatus(t, resp, http.StatusOK)
	if third.SessionID != first.SessionID || third.Token == second.Token {
		t.Fatalf("refreshed by cookie %+v", third)
	}
	cookie = sessionCookie(t, resp)
	resp, fourth := refresh(t, "", cookie, http.Header{"Origin": {g.URL}})
	wantStatus(t, resp, http.StatusOK)

	// Nothing to refresh with, or a token that is not one.
	resp, _ = refresh(t, "", nil, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	wantStatus(t, resp, http.StatusUnauthorized)
	resp, _ = refresh(t, "not-a-token", nil, nil)
	wantStatus(t, resp, http.StatusUnauthorized)

	// The session goes on: a stream with the new token, an answer on it;
	// a logout with it ends the session whatever token it had.
	st := g.openStream(t, "deck", bearer(fourth.Token.Reveal()))
	st.next(t, api.EventReady)
	say(t, g, fourth.Token.Reveal(), "hello")
	if sp := decode[api.SpeakEvent](t, st.next(t, api.EventSpeak).Data); sp.SessionID == nil || *sp.SessionID != first.SessionID {
		t.Fatalf("speak %+v does not name the session", sp)
	}
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/sessions/current", fourth.Token.Reveal(), nil, nil), http.StatusNoContent)
	st.waitClosed(t)
	for _, tok := range []api.Secret{first.Token, second.Token, third.Token, fourth.Token} {
		wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", tok.Reveal(), nil, nil), http.StatusUnauthorized)
		resp, _ = refresh(t, tok.Reveal(), nil, nil)
		wantStatus(t, resp, http.StatusUnauthorized)
	}
	resp, _ = refresh(t, "", cookie, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	wantStatus(t, resp, http.StatusUnauthorized)

	for _, s := range []string{key, first.Token.Reveal(), second.Token.Reveal(), third.Token.Reveal(), fourth.Token.Reveal()} {
		if strings.Contains(g.Logs.String(), s) {
			t.Fatal("a secret reached the logs")
		}
	}
}
