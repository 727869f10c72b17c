package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/redistest"
)

// startReplicas runs `gateway bus` and n gateways on one Redis, as replicas
// behind a load balancer run: the same JWT secret and admin token, each
// with its own data dir and its own link to the one assistant.
func startReplicas(t *testing.T, n int, extra map[string]string) (replicas []*gateway, busURL string, srv *redistest.Server) {
	t.Helper()
	srv = redistest.Start(t, redistest.Options{})
	busURL, _ = startBusBinary(t)
	env := map[string]string{
		"REDIS_URL": srv.URL(), "BUS_URL": busURL,
		"JWT_SECRET": strings.Repeat("j", 32), "ADMIN_TOKEN": "gwa_" + strings.Repeat("a", 40),
		"LOGIN_RATE": "1000",
	}
	for k, v := range extra {
		env[k] = v
	}
	for range n {
		replicas = append(replicas, startGateway(t, env))
	}
	return replicas, busURL, srv
}

// until reads st up to the done event of utterance id and returns every
// event before it, done included.
func until(t *testing.T, st *stream, id string) []sseEvent {
	t.Helper()
	var got []sseEvent
	for {
		ev := st.next(t, api.EventSpeak, api.EventDone, api.EventMessage, api.EventGap)
		got = append(got, ev)
		if ev.Name == api.EventDone && decode[api.DoneEvent](t, ev.Data).UtteranceID == id {
			return got
		}
	}
}

// oneSequence fails unless the events' ids grow and no event came twice.
func oneSequence(t *testing.T, evs []sseEvent) {
	t.Helper()
	var last uint64
	seen := map[string]bool{}
	for _, ev := range evs {
		id, ok := hub.ParseEventID(ev.ID)
		if !ok || id <= last {
			t.Fatalf("event %s %s has id %q after %d", ev.Name, ev.Data, ev.ID, last)
		}
		last = id
		if seen[ev.Name+ev.Data] {
			t.Fatalf("event %s %s came twice", ev.Name, ev.Data)
		}
		seen[ev.Name+ev.Data] = true
	}
}

// Three replicas on one Redis and one assistant are one gateway: a stream
// on one replica gets, once and in order, the answers to an utterance
// posted to another by a session opened on a third; a stream resumed on
// another replica with Last-Event-ID gets what it missed; a logout on one
// ends the session's streams on every replica.
func TestReplicasAreOneGateway(t *testing.T) {
	gs, _, _ := startReplicas(t, 3, nil)
	key := gs[0].createClient(t, "kitchen")
	s := gs[1].login(t, "kitchen", key)
	tok := s.Token.Reveal()
	st := gs[2].openStream(t, "kitchen", bearer(tok))
	ready := st.next(t, api.EventReady)

	var all []sseEvent
	for i, text := range []string{"hello", "say apple pie", "count to three"} {
		acc := say(t, gs[i%3], tok, text)
		evs := until(t, st, acc.ID)
		speaks := 0
		for _, ev := range evs {
			if ev.Name == api.EventSpeak {
				sp := decode[api.SpeakEvent](t, ev.Data)
				if sp.UtteranceID == nil || *sp.UtteranceID != acc.ID {
					t.Fatalf("%q: a speak of another utterance: %s", text, ev.Data)
				}
				speaks++
			}
		}
		if want := map[string]int{"hello": 1, "say apple pie": 1, "count to three": 3}[text]; speaks != want {
			t.Fatalf("%q: %d speak events, want %d: %v", text, speaks, want, evs)
		}
		if d := decode[api.DoneEvent](t, evs[len(evs)-1].Data); d.Status != api.StatusHandled {
			t.Fatalf("%q: done %+v", text, d)
		}
		all = append(all, evs...)
	}
	oneSequence(t, all)

	// The stream drops and comes back on the first replica: it gets what it
	// missed since ready, with the same ids.
	resumed := gs[0].openStream(t, "kitchen", http.Header{"Authorization": {"Bearer " + tok}, "Last-Event-ID": {ready.ID}})
	resumed.next(t, api.EventReady)
	for _, want := range all {
		got := resumed.next(t, api.EventSpeak, api.EventDone, api.EventMessage, api.EventGap)
		if got.ID != want.ID || got.Name != want.Name || got.Data != want.Data {
			t.Fatalf("replayed %s %s %s, want %s %s %s", got.ID, got.Name, got.Data, want.ID, want.Name, want.Data)
		}
	}

	// A logout on the second replica ends the streams on the first and the
	// third, and the token is refused everywhere.
	wantStatus(t, gs[1].call(t, http.MethodDelete, "/v1/sessions/current", tok, nil, nil), http.StatusNoContent)
	st.waitClosed(t)
	resumed.waitClosed(t)
	for _, g := range gs {
		wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", tok, nil, nil), http.StatusUnauthorized)
	}
}

// A speak addressed to a client with nothing pending (a timer, a proactive
// message) reaches the client's stream once, though every replica heard it.
func TestReplicasDeliverUnownedSpeechOnce(t *testing.T) {
	gs, busURL, _ := startReplicas(t, 3, nil)
	s := gs[0].newClient(t, "porch")
	st := gs[1].openStream(t, "porch", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)

	conn, _, err := websocket.DefaultDialer.Dial(busURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, text := range []string{"the timer is done", "the timer is done", "the tea is ready"} {
		frame, _ := json.Marshal(map[string]any{
			"type":    "speak",
			"data":    map[string]any{"utterance": text},
			"context": map[string]any{"destination": []string{api.GatewaySource("porch")}},
		})
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
	}
	// Each is delivered once. Frames no replica owns are claimed frame by
	// frame, possibly by different replicas, so two heard within a round
	// trip of Redis may reach the stream in either order (README says so);
	// the count is what must hold.
	heard := map[string]int{}
	want := map[string]int{"the timer is done": 2, "the tea is ready": 1}
	for heard["the timer is done"] < 2 || heard["the tea is ready"] < 1 {
		ev := st.next(t, api.EventSpeak)
		heard[decode[api.SpeakEvent](t, ev.Data).Utterance]++
	}
	// Two utterances after them: a copy delivered twice would come before
	// their answers (each replica handles the bus's frames in order).
	for _, text := range []string{"say marker one", "say marker two"} {
		acc := say(t, gs[2], s.Token.Reveal(), text)
		for _, ev := range until(t, st, acc.ID) {
			if ev.Name == api.EventSpeak {
				heard[decode[api.SpeakEvent](t, ev.Data).Utterance]++
			}
		}
	}
	want["marker one"], want["marker two"] = 1, 1
	if len(heard) != len(want) {
		t.Fatalf("heard %v, want %v", heard, want)
	}
	for text, n := range want {
		if heard[text] != n {
			t.Fatalf("heard %v, want %v", heard, want)
		}
	}
}

// A stream ticket issued on one replica is spent once, even when several
// replicas redeem it at the same moment.
func TestReplicasSpendATicketOnce(t *testing.T) {
	gs, _, _ := startReplicas(t, 3, nil)
	s := gs[0].newClient(t, "deck")
	for range 5 {
		var tk api.TicketResponse
		wantStatus(t, gs[0].call(t, http.MethodPost, "/v1/sessions/current/ticket", s.Token.Reveal(), nil, &tk), http.StatusCreated)
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := gs[i%3]
				resp, err := g.client.Get(g.URL + "/v1/clients/deck/events?ticket=" + tk.Ticket.Reveal())
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[http.StatusOK] != 1 || codes[http.StatusUnauthorized] != 5 {
			t.Fatalf("six redemptions of one ticket: %v", codes)
		}
	}
}

// A blacklist entry and a protected intent added through one replica hold
// on every replica within a second or so.
func TestReplicasShareTheAdminState(t *testing.T) {
	gs, _, _ := startReplicas(t, 2, map[string]string{"TRUSTED_PROXIES": ""})
	admin := gs[0].AdminToken
	s := gs[0].newClient(t, "attic")
	wantStatus(t, gs[0].call(t, http.MethodPost, "/v1/admin/blacklist", admin,
		map[string]string{"cidr": "127.0.0.9/32", "reason": "test"}, nil), http.StatusCreated)
	far := gs[1].from(t, "127.0.0.9")
	waitFor(t, func() bool {
		return far.call(t, http.MethodGet, "/v1/clients/me", s.Token.Reveal(), nil, nil).StatusCode == http.StatusForbidden
	})

	wantStatus(t, gs[1].call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:*"), admin,
		api.ProtectRequest{Password: "open sesame"}, nil), http.StatusOK)
	waitFor(t, func() bool {
		resp := gs[0].call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "tell me a joke"}, nil)
		return resp.StatusCode == http.StatusForbidden
	})
}

// A replica killed with an utterance in flight leaves no accepted utterance
// without its end: another replica ends it with done, status error, once
// its timeout and a grace are past.
func TestReplicaDeathEndsItsUtterances(t *testing.T) {
	gs, busURL, srv := startReplicas(t, 1, map[string]string{"UTTERANCE_TIMEOUT": "2s"})
	doomed := startGatewayProcess(t, map[string]string{
		"REDIS_URL": srv.URL(), "BUS_URL": busURL,
		"JWT_SECRET": strings.Repeat("j", 32), "ADMIN_TOKEN": "gwa_" + strings.Repeat("a", 40),
		"UTTERANCE_TIMEOUT": "2s",
	})
	s := gs[0].newClient(t, "shed")
	st := gs[0].openStream(t, "shed", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	// A question keeps its utterance pending until it is answered.
	acc := say(t, doomed.gateway, s.Token.Reveal(), "ask me a question")
	st.next(t, api.EventSpeak)
	doomed.kill(t)
	start := time.Now()
	done := decode[api.DoneEvent](t, st.nextWithin(t, 30*time.Second, api.EventDone).Data)
	if done.UtteranceID != acc.ID || done.Status != api.StatusError {
		t.Fatalf("done %+v, want status error for %s", done, acc.ID)
	}
	t.Logf("the orphan ended %v after the kill", time.Since(start).Round(100*time.Millisecond))
}

// process is a gateway running as a process of its own, so that a test can
// kill it.
type process struct {
	*gateway
	cmd *exec.Cmd
}

// startGatewayProcess runs the built gateway binary as a server with env
// (names without GATEWAY_) and a data dir of its own, and waits until it is
// ready.
func startGatewayProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(gatewaytest.Binary(t))
	cmd.Env = append(cmd.Environ(), "GATEWAY_ADDR=127.0.0.1:0", "GATEWAY_DATA_DIR="+t.TempDir(), "GATEWAY_IP_ALLOWLIST=127.0.0.1/32")
	for k, v := range env {
		cmd.Env = append(cmd.Env, "GATEWAY_"+k+"="+v)
	}
	g := &gateway{Stdout: &gatewaytest.Buffer{}, Logs: &gatewaytest.Buffer{}}
	g.client = &http.Client{Transport: newValidatingTransport(t, nil)}
	cmd.Stdout, cmd.Stderr = g.Stdout, g.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{gateway: g, cmd: cmd}
	t.Cleanup(func() { p.kill(t) })
	gatewaytest.EventuallyWithin(t, startLimit, "the gateway process to listen", func() bool {
		if m := listenLine.FindStringSubmatch(g.Stdout.String()); m != nil {
			g.URL = m[1]
		}
		return g.URL != ""
	})
	gatewaytest.EventuallyWithin(t, startLimit, "the gateway process to be ready", func() bool {
		resp, err := g.client.Get(g.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// kill ends the process at once (SIGKILL), as a crash would.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// Replicas on several buses agree which bus a session's utterances go to,
// whichever replica takes them, and move the session together to the next
// bus when its own stops.
func TestReplicasPinASessionToOneBus(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	b1, b2 := startBusCommand(t), startBusCommand(t)
	urls := []string{b1.URL, b2.URL}
	ws := []*busWatcher{watchBus(t, b1.URL), watchBus(t, b2.URL)}
	env := map[string]string{
		"REDIS_URL": srv.URL(), "BUS_URL": strings.Join(urls, ","),
		"JWT_SECRET": strings.Repeat("j", 32), "ADMIN_TOKEN": "gwa_" + strings.Repeat("a", 40),
	}
	gs := []*gateway{startGateway(t, env), startGateway(t, env)}
	for _, g := range gs {
		waitAllUp(t, g, 2)
	}
	s := gs[0].newClient(t, "loft")
	tok := s.Token.Reveal()
	for i, text := range []string{"say one", "say two", "say three", "say four"} {
		if r := sayWait(t, gs[i%2], tok, text); r.Status != api.StatusHandled {
			t.Fatalf("%q: %+v", text, r)
		}
	}
	first := busOf(t, ws, s.SessionID, "say one")
	for _, text := range []string{"say two", "say three", "say four"} {
		if got := busOf(t, ws, s.SessionID, text); got != first {
			t.Fatalf("%q went to bus %d, %q to bus %d", "say one", first+1, text, got+1)
		}
	}

	// The session's bus stops: both replicas move the session to the other.
	[]*busProcess{b1, b2}[first].Stop(t)
	for _, g := range gs {
		waitBusState(t, g, first, api.BusDown)
	}
	for i, text := range []string{"say five", "say six"} {
		if r := sayWait(t, gs[i%2], tok, text); r.Status != api.StatusHandled {
			t.Fatalf("%q after the bus stopped: %+v", text, r)
		}
		if got := busOf(t, ws, s.SessionID, text); got != 1-first {
			t.Fatalf("%q went to bus %d after bus %d stopped", text, got+1, first+1)
		}
	}
}

// Failed attempts count together: BAN_AFTER wrong logins spread over three
// replicas, one on each, ban the address on all of them.
func TestReplicasCountFailuresTogether(t *testing.T) {
	gs, _, _ := startReplicas(t, 3, map[string]string{"BAN_AFTER": "3", "BAN_WINDOW": "10m", "BAN_FOR": "1h"})
	for _, g := range gs {
		failLogins(t, g.from(t, "127.0.0.4"), 1)
	}
	for _, g := range gs {
		attacker := g.from(t, "127.0.0.4")
		waitFor(t, func() bool {
			return attacker.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil).StatusCode == http.StatusForbidden
		})
		wantStatus(t, g.from(t, "127.0.0.5").call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
	}
	var list []api.BlacklistEntry
	wantStatus(t, gs[0].call(t, http.MethodGet, "/v1/admin/blacklist", gs[0].AdminToken, nil, &list), http.StatusOK)
	if len(list) != 1 || list[0].CIDR != "127.0.0.4/32" || list[0].Source != api.BlacklistAuto {
		t.Fatalf("blacklist after 3 failures over 3 replicas: %+v", list)
	}
}

// A rate limit holds across replicas: logins from one address spread over
// three replicas get one burst between them, not one on each. (Counted,
// not timed: the bound allows for what refills while the test runs.)
func TestReplicasShareRateLimits(t *testing.T) {
	const rate, burst = 0.5, 5 // LOGIN_RATE 0.5: a burst of 10x, one more every 2 s
	gs, _, _ := startReplicas(t, 3, map[string]string{"LOGIN_RATE": "0.5"})
	key := gs[0].createClient(t, "hall")
	start := time.Now()
	allowed, refused := 0, 0
	for i := range 15 {
		g := gs[i%3].from(t, "127.0.0.6")
		resp := g.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "hall", "access_key": key}, nil)
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			refused++
		default:
			t.Fatalf("login %d: %d", i+1, resp.StatusCode)
		}
	}
	refills := int(time.Since(start).Seconds()*rate) + 1
	if allowed > burst+refills || allowed+refused != 15 {
		t.Fatalf("15 logins over 3 replicas in %s: %d allowed, %d refused; want at most %d allowed",
			time.Since(start).Round(time.Millisecond), allowed, refused, burst+refills)
	}
	// Another address has its own bucket.
	wantStatus(t, gs[1].from(t, "127.0.0.7").call(t, http.MethodPost, "/v1/sessions", "",
		map[string]string{"client_id": "hall", "access_key": key}, nil), http.StatusCreated)
}

// A stream limit holds across replicas: STREAMS_PER_CLIENT 2, a stream on
// each of two replicas, and the third replica refuses a third; one closed,
// it takes one.
func TestReplicasShareStreamLimits(t *testing.T) {
	gs, _, _ := startReplicas(t, 3, map[string]string{"STREAMS_PER_CLIENT": "2"})
	s := gs[0].newClient(t, "den")
	tok := s.Token.Reveal()
	first := gs[0].openStream(t, "den", bearer(tok))
	first.next(t, api.EventReady)
	gs[1].openStream(t, "den", bearer(tok)).next(t, api.EventReady)
	third := func() int {
		req, _ := http.NewRequest(http.MethodGet, gs[2].URL+"/v1/clients/den/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := gs[2].client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := third(); code != http.StatusTooManyRequests {
		t.Fatalf("a third stream over three replicas: %d, want 429", code)
	}
	first.resp.Body.Close()
	waitFor(t, func() bool { return third() == http.StatusOK })
}
