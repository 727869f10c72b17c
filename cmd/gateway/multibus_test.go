package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/buses"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// busProcess is a `gateway bus` running through run, as main would.
type busProcess struct {
	URL    string
	cancel context.CancelFunc
	done   chan error
}

var busLine = regexp.MustCompile(`messagebus: (ws://\S+)`)

// startBusCommand runs `gateway bus --addr 127.0.0.1:0` and waits for the
// address it prints.
func startBusCommand(t *testing.T, args ...string) *busProcess {
	t.Helper()
	var out, logs gatewaytest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	b := &busProcess{cancel: cancel, done: make(chan error, 1)}
	go func() {
		b.done <- run(ctx, append([]string{"bus", "--addr", "127.0.0.1:0"}, args...), nil, strings.NewReader(""), &out, &logs)
	}()
	t.Cleanup(func() { b.Stop(t) })
	gatewaytest.EventuallyWithin(t, startLimit, "the gateway bus to print its address", func() bool {
		select {
		case err := <-b.done:
			t.Fatalf("gateway bus exited: %v\n%s\n%s", err, out.String(), logs.String())
		default:
		}
		if m := busLine.FindStringSubmatch(out.String()); m != nil {
			b.URL = m[1]
		}
		return b.URL != ""
	})
	return b
}

// Stop ends the bus command and waits for it.
func (b *busProcess) Stop(t *testing.T) {
	t.Helper()
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("gateway bus returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("gateway bus did not stop")
	}
}

// startAssistantOn serves an embedded assistant on addr (port 0 for any)
// whose follow-up questions wait far longer than any test, so that a
// question stays pending until the test ends it. stop closes the socket and
// the bus, and with it every peer's link: the bus is gone.
func startAssistantOn(t *testing.T, addr string) (url string, stop func()) {
	t.Helper()
	a, err := startAssistant("ovos", "", time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var stopListener func()
	var bound string
	t.Cleanup(func() {
		if stopListener == nil {
			a.Close()
		}
	})
	// The port may take a moment to be free again.
	gatewaytest.Eventually(t, "a bus listening on "+addr, func() bool {
		stopListener, bound, err = listenBus(addr, a.Bus.Handler(), slog.New(slog.DiscardHandler))
		return err == nil
	})
	var once sync.Once
	stop = func() { once.Do(func() { stopListener(); a.Close() }) }
	t.Cleanup(stop)
	return "ws://" + bound + "/core", stop
}

// busWatcher is a raw websocket peer on one bus that notes the session of
// every utterance put on it, and of every dry run ("intent? " and its
// utterance).
type busWatcher struct {
	mu       sync.Mutex
	sessions map[string][]string // session id -> utterances seen, in order
}

func watchBus(t *testing.T, url string) *busWatcher {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &busWatcher{sessions: map[string][]string{}}
	go func() {
		for {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				Type string
				Data struct {
					Utterances []string `json:"utterances"`
					Utterance  string   `json:"utterance"`
				} `json:"data"`
				Context struct {
					Session struct {
						SessionID string `json:"session_id"`
					} `json:"session"`
				} `json:"context"`
			}
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			var text string
			switch {
			case m.Type == api.TypeUtterance && len(m.Data.Utterances) > 0:
				text = m.Data.Utterances[0]
			case m.Type == api.TypeIntentGet:
				text = "intent? " + m.Data.Utterance
			default:
				continue
			}
			w.mu.Lock()
			w.sessions[m.Context.Session.SessionID] = append(w.sessions[m.Context.Session.SessionID], text)
			w.mu.Unlock()
		}
	}()
	return w
}

// seen is what the bus carried for the session.
func (w *busWatcher) seen(sid string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sessions[sid]...)
}

// busOf waits until one of the watchers saw text for the session, and fails
// when another one did too.
func busOf(t *testing.T, ws []*busWatcher, sid, text string) int {
	t.Helper()
	found := -1
	waitFor(t, func() bool {
		for i, w := range ws {
			if strings.Contains(strings.Join(w.seen(sid), "\n"), text) {
				found = i
				return true
			}
		}
		return false
	})
	for i, w := range ws {
		if i != found && strings.Contains(strings.Join(w.seen(sid), "\n"), text) {
			t.Fatalf("session %s: %q went on bus %d and on bus %d", sid, text, found+1, i+1)
		}
	}
	return found
}

// readyBody is /readyz's answer, 200 or 503.
type readyBody struct {
	Buses []api.BusState
}

func (g *gateway) readiness(t *testing.T) (int, []api.BusState) {
	t.Helper()
	var b readyBody
	resp := g.call(t, http.MethodGet, "/readyz", "", nil, &b)
	return resp.StatusCode, b.Buses
}

// waitBusState waits until /readyz says bus pos (from 0) is state.
func waitBusState(t *testing.T, g *gateway, pos int, state string) {
	t.Helper()
	waitFor(t, func() bool {
		_, bs := g.readiness(t)
		return len(bs) > pos && bs[pos].State == state
	})
}

// waitAllUp waits until /readyz says each of the n buses is up: the gateway
// is ready as soon as one is.
func waitAllUp(t *testing.T, g *gateway, n int) {
	t.Helper()
	for i := range n {
		waitBusState(t, g, i, api.BusUp)
	}
}

// Three `gateway bus` assistants behind one gateway: thirty sessions spread
// over all three, each session's utterances all go to its own bus (the one
// its rendezvous order puts first), every answer comes back, and readiness,
// the admin's list and the metrics name every bus.
func TestSessionsSpreadOverThreeBuses(t *testing.T) {
	var urls []string
	var ws []*busWatcher
	for range 3 {
		b := startBusCommand(t)
		urls = append(urls, b.URL)
		ws = append(ws, watchBus(t, b.URL))
	}
	g := startGateway(t, map[string]string{"BUS_URL": strings.Join(urls, ","), "LOGIN_RATE": "1000"})
	waitAllUp(t, g, len(urls))
	code, states := g.readiness(t)
	if code != http.StatusOK || len(states) != 3 {
		t.Fatalf("readyz %d %+v", code, states)
	}
	for i, s := range states {
		if s.Bus != buses.Label(i) || s.State != api.BusUp {
			t.Fatalf("readyz bus %d: %+v", i, s)
		}
	}
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i], _ = buses.Key(u)
	}

	perBus := make([]int, 3)
	for c := range 6 {
		id := fmt.Sprintf("room-%d", c)
		key := g.createClient(t, id)
		for range 5 {
			s := g.login(t, id, key)
			tok := s.Token.Reveal()
			want := buses.Order(keys, s.SessionID)[0]
			for _, text := range []string{"hello", "tell me a joke"} {
				r := sayWait(t, g, tok, text)
				if r.Status != api.StatusHandled || len(r.Speech) == 0 {
					t.Fatalf("session %s, %q: %+v", s.SessionID, text, r)
				}
				if got := busOf(t, ws, s.SessionID, text); got != want {
					t.Fatalf("session %s: %q went to bus %d, its order puts bus %d first", s.SessionID, text, got+1, want+1)
				}
			}
			perBus[want]++
		}
	}
	for i, n := range perBus {
		if n == 0 {
			t.Fatalf("bus %d got none of 30 sessions: %v", i+1, perBus)
		}
	}
	for i, n := range perBus {
		label := buses.Label(i)
		if v := scrape(t, g, `gateway_bus_utterances_total{bus="`+label+`",status="handled"}`); v != float64(2*n) {
			t.Fatalf("bus %s: %v handled, want %d", label, v, 2*n)
		}
		if v := scrape(t, g, `gateway_bus_link_up{bus="`+label+`"}`); v != 1 {
			t.Fatalf("bus %s: link_up %v", label, v)
		}
	}
	var infos []api.BusInfo
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/buses", g.AdminToken, nil, &infos), http.StatusOK)
	if len(infos) != 3 || infos[1].URL != urls[1] || infos[1].State != api.BusUp || infos[1].InFlight != 0 {
		t.Fatalf("admin's buses: %+v", infos)
	}
}

// A bus that goes away mid utterance: that utterance ends with error (it is
// not sent again elsewhere), the session's next utterance is answered by the
// next bus of its order, a session on another bus does not notice (its
// question stays pending and its answer is taken), readiness and metrics
// follow, and once the bus is back its sessions return to it.
func TestABusGoingDownMovesOnlyItsSessions(t *testing.T) {
	var urls []string
	var stops []func()
	var ws []*busWatcher
	for range 3 {
		u, stop := startAssistantOn(t, "127.0.0.1:0")
		urls, stops, ws = append(urls, u), append(stops, stop), append(ws, watchBus(t, u))
	}
	g := startGateway(t, map[string]string{"BUS_URL": strings.Join(urls, ",")})
	waitAllUp(t, g, len(urls))
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i], _ = buses.Key(u)
	}
	// Two sessions on different buses.
	key := g.createClient(t, "kitchen")
	var victim, other api.SessionResponse
	for victim.SessionID == "" || other.SessionID == "" {
		s := g.login(t, "kitchen", key)
		switch {
		case victim.SessionID == "":
			victim = s
		case buses.Order(keys, s.SessionID)[0] != buses.Order(keys, victim.SessionID)[0]:
			other = s
		}
	}
	down := buses.Order(keys, victim.SessionID)[0]
	next := buses.Order(keys, victim.SessionID)[1]
	otherBus := buses.Order(keys, other.SessionID)[0]
	st := g.openStream(t, "kitchen", bearer(victim.Token.Reveal()))

	q := sayWait(t, g, victim.Token.Reveal(), "ask me something")
	oq := sayWait(t, g, other.Token.Reveal(), "ask me something")
	if q.Status != api.StatusAwaitingResponse || oq.Status != api.StatusAwaitingResponse {
		t.Fatalf("questions: %+v %+v", q, oq)
	}
	if got := busOf(t, ws, victim.SessionID, "ask me something"); got != down {
		t.Fatalf("the question went to bus %d, want %d", got+1, down+1)
	}
	if v := scrape(t, g, `gateway_bus_utterances_in_flight{bus="`+buses.Label(down)+`"}`); v != 1 {
		t.Fatalf("in flight on bus %d: %v", down+1, v)
	}

	stops[down]()
	for {
		d := decode[api.DoneEvent](t, st.next(t, api.EventDone).Data)
		if d.UtteranceID == q.ID {
			if d.Status != api.StatusError {
				t.Fatalf("the utterance on the bus that went down ended %q", d.Status)
			}
			break
		}
		if d.UtteranceID == oq.ID {
			t.Fatalf("the other bus's utterance ended: %+v", d)
		}
	}
	waitBusState(t, g, down, api.BusDown)
	if code, _ := g.readiness(t); code != http.StatusOK {
		t.Fatalf("readyz %d with two buses up", code)
	}
	if v := scrape(t, g, `gateway_bus_link_up{bus="`+buses.Label(down)+`"}`); v != 0 {
		t.Fatalf("link_up of the bus that went down: %v", v)
	}
	if v := scrape(t, g, `gateway_bus_utterances_total{bus="`+buses.Label(down)+`",status="error"}`); v != 1 {
		t.Fatalf("errors on the bus that went down: %v", v)
	}

	// The session's next utterance goes to its second bus.
	r := sayWait(t, g, victim.Token.Reveal(), "hello")
	if r.Status != api.StatusHandled {
		t.Fatalf("after its bus went down: %+v", r)
	}
	if got := busOf(t, ws, victim.SessionID, "hello"); got != next {
		t.Fatalf("the next utterance went to bus %d, want the second of its order, %d", got+1, next+1)
	}
	if n := len(ws[down].seen(victim.SessionID)); n != 1 {
		t.Fatalf("the bus that went down saw %d utterances of the session", n)
	}
	// The other session never noticed: its question is still pending on its
	// bus and takes its answer there.
	a := sayWait(t, g, other.Token.Reveal(), "blue")
	if a.Status != api.StatusHandled || len(a.Speech) == 0 || !strings.Contains(a.Speech[0].Utterance, "blue") {
		t.Fatalf("the other session's answer: %+v", a)
	}
	if got := busOf(t, ws, other.SessionID, "blue"); got != otherBus {
		t.Fatalf("the other session moved from bus %d to %d", otherBus+1, got+1)
	}

	// Every bus down: not ready, and the 503 still lists them.
	for i, stop := range stops {
		stop()
		waitBusState(t, g, i, api.BusDown)
	}
	if code, states := g.readiness(t); code != http.StatusServiceUnavailable || len(states) != 3 {
		t.Fatalf("readyz %d %+v with every bus down", code, states)
	}
	wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", victim.Token.Reveal(), api.UtteranceRequest{Utterance: "hello"}, nil), http.StatusServiceUnavailable)

	// The bus comes back: the session returns to it.
	addr := strings.TrimSuffix(strings.TrimPrefix(urls[down], "ws://"), "/core")
	back, _ := startAssistantOn(t, addr)
	w := watchBus(t, back)
	waitBusState(t, g, down, api.BusUp)
	if r := sayWait(t, g, victim.Token.Reveal(), "good morning"); r.Status != api.StatusHandled {
		t.Fatalf("after its bus came back: %+v", r)
	}
	waitFor(t, func() bool { return len(w.seen(victim.SessionID)) == 1 })
	if v := scrape(t, g, `gateway_bus_reconnects_total{bus="`+buses.Label(down)+`"}`); v < 1 {
		t.Fatalf("reconnects of the bus that came back: %v", v)
	}
}

// The protected-intent check asks the session's own bus which intent would
// match, and the utterance, once unlocked, goes to that same bus.
func TestDryRunAsksTheSessionsBus(t *testing.T) {
	var urls []string
	var ws []*busWatcher
	for range 3 {
		b := startBusCommand(t)
		urls, ws = append(urls, b.URL), append(ws, watchBus(t, b.URL))
	}
	g := startGateway(t, map[string]string{"BUS_URL": strings.Join(urls, ","), "LOGIN_RATE": "1000"})
	waitAllUp(t, g, len(urls))
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:*"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i], _ = buses.Key(u)
	}
	key := g.createClient(t, "study")
	for range 6 {
		s := g.login(t, "study", key)
		want := buses.Order(keys, s.SessionID)[0]
		var p api.Problem
		wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "tell me a joke"}, &p), http.StatusForbidden)
		if got := busOf(t, ws, s.SessionID, "intent? tell me a joke"); got != want {
			t.Fatalf("session %s: the dry run went to bus %d, its bus is %d", s.SessionID, got+1, want+1)
		}
		req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/utterances?wait=10s", strings.NewReader(`{"utterance":"tell me a joke"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.Token.Reveal())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Intent-Password", "pw")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantStatus(t, resp, http.StatusOK)
		// The utterance itself, after the dry runs noted before it.
		if got := busOf(t, ws, s.SessionID, "\ntell me a joke"); got != want {
			t.Fatalf("session %s: the unlocked utterance went to bus %d, its bus is %d", s.SessionID, got+1, want+1)
		}
	}
}

// A bad list of buses is refused at start, naming the entry.
func TestBadBusListFailsAtStart(t *testing.T) {
	for list, want := range map[string]string{
		"ws://127.0.0.1:1/core,":                                   "entry 2 is empty",
		"ws://127.0.0.1:1/core,ws://127.0.0.1:1/core":              "entry 2 (ws://127.0.0.1:1/core) names the same bus as entry 1",
		"ws://127.0.0.1:1/core,http://127.0.0.1:2/core":            "entry 2 (http://127.0.0.1:2/core): not a ws:// or wss:// URL",
		"ws://127.0.0.1:1/core,ws://user:hunter2@127.0.0.1:1/core": "entry 2 (ws://127.0.0.1:1/core) names the same bus as entry 1",
	} {
		env := map[string]string{"GATEWAY_DATA_DIR": t.TempDir(), "GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_BUS_URL": list}
		var out, errOut gatewaytest.Buffer
		err := run(context.Background(), nil, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", list, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}

// gateway bus refuses a dialect it does not speak and an address it cannot
// listen on.
func TestBusCommandRefusesBadFlags(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, args := range [][]string{{"bus", "--dialect", "cobol"}, {"bus", "--addr", ln.Addr().String()}, {"bus", "extra"}} {
		if err := run(context.Background(), args, nil, strings.NewReader(""), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// startBusBinary runs the built gateway binary as `gateway bus` in its own
// process, so that the test can stop or kill it.
func startBusBinary(t *testing.T) (url string, proc *os.Process) {
	t.Helper()
	cmd := exec.Command(gatewaytest.Binary(t), "bus", "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := &gatewaytest.Buffer{}
	go func() { _, _ = io.Copy(out, stdout) }()
	waitFor(t, func() bool { return busLine.MatchString(out.String()) })
	return busLine.FindStringSubmatch(out.String())[1], cmd.Process
}

// `gateway bus` as a process of its own is a whole assistant: a gateway
// with GATEWAY_BUS_URL pointing at it (and no embedded bus) answers an
// utterance on the client's stream with speak, then done, in that order.
func TestBusCommandAnswersAGateway(t *testing.T) {
	url, _ := startBusBinary(t)
	w := watchBus(t, url)
	g := startGateway(t, map[string]string{"BUS_URL": url})
	waitAllUp(t, g, 1)
	s := g.newClient(t, "kitchen")
	st := g.openStream(t, "kitchen", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	acc := say(t, g, s.Token.Reveal(), "hello")
	ev := st.next(t, api.EventSpeak, api.EventDone)
	if ev.Name != api.EventSpeak {
		t.Fatalf("first %s, want speak", ev.Name)
	}
	speak := decode[api.SpeakEvent](t, ev.Data)
	if speak.UtteranceID == nil || *speak.UtteranceID != acc.ID || speak.Utterance == "" {
		t.Fatalf("speak %+v, want an answer to %s", speak, acc.ID)
	}
	done := decode[api.DoneEvent](t, st.next(t, api.EventDone).Data)
	if done.UtteranceID != acc.ID || done.Status != api.StatusHandled {
		t.Fatalf("done %+v", done)
	}
	// The answer came from that process, not from an assistant of the
	// gateway's own: the utterance went over its bus.
	if got := busOf(t, []*busWatcher{w}, s.SessionID, "hello"); got != 0 {
		t.Fatalf("the utterance went to bus %d", got+1)
	}
}

// doneOf waits for the done event of utterance id on st and returns its
// status. A stopped bus is noticed by the link's pings within seconds; the
// bound only keeps a broken gateway from hanging the test.
func doneOf(t *testing.T, st *stream, id string) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-st.events:
			if ev.Name != api.EventDone {
				continue
			}
			if d := decode[api.DoneEvent](t, ev.Data); d.UtteranceID == id {
				return d.Status
			}
		case <-deadline:
			t.Fatalf("no done event for %s", id)
		}
	}
}

// Three `gateway bus` processes: one is stopped (SIGSTOP) and another killed
// (SIGKILL) while a session of each has a question pending. Each of those
// utterances ends with error, the session's next utterance is answered by
// the next bus of its order that is up, a session on the third bus is not
// disturbed, and readiness follows until no bus is left.
func TestBusProcessesStoppedAndKilled(t *testing.T) {
	var urls []string
	var procs []*os.Process
	var ws []*busWatcher
	for range 3 {
		u, p := startBusBinary(t)
		urls, procs, ws = append(urls, u), append(procs, p), append(ws, watchBus(t, u))
	}
	t.Cleanup(func() {
		_ = procs[0].Signal(syscall.SIGCONT)
		_ = procs[1].Signal(syscall.SIGCONT)
		_ = procs[2].Signal(syscall.SIGCONT)
	})
	g := startGateway(t, map[string]string{"BUS_URL": strings.Join(urls, ","), "LOGIN_RATE": "1000"})
	waitAllUp(t, g, len(urls))
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i], _ = buses.Key(u)
	}
	// One session first on each bus.
	key := g.createClient(t, "hall")
	byBus := make([]api.SessionResponse, 3)
	for n := 0; n < 3; {
		s := g.login(t, "hall", key)
		if first := buses.Order(keys, s.SessionID)[0]; byBus[first].SessionID == "" {
			byBus[first] = s
			n++
		}
	}
	st := g.openStream(t, "hall", bearer(byBus[0].Token.Reveal()))
	upAfter := func(sid string, down ...int) int {
		for _, pos := range buses.Order(keys, sid) {
			if !slices.Contains(down, pos) {
				return pos
			}
		}
		return -1
	}

	for _, tc := range []struct {
		name   string
		pos    int
		signal syscall.Signal
		down   []int
	}{
		{"stopped", 0, syscall.SIGSTOP, []int{0}},
		{"killed", 1, syscall.SIGKILL, []int{0, 1}},
	} {
		s := byBus[tc.pos]
		q := sayWait(t, g, s.Token.Reveal(), "ask me something")
		if q.Status != api.StatusAwaitingResponse {
			t.Fatalf("%s: question %+v", tc.name, q)
		}
		if got := busOf(t, ws, s.SessionID, "ask me something"); got != tc.pos {
			t.Fatalf("%s: the question went to bus %d", tc.name, got+1)
		}
		if err := procs[tc.pos].Signal(tc.signal); err != nil {
			t.Fatal(err)
		}
		if status := doneOf(t, st, q.ID); status != api.StatusError {
			t.Fatalf("%s: the utterance on the bus ended %q, want error", tc.name, status)
		}
		waitBusState(t, g, tc.pos, api.BusDown)
		if code, _ := g.readiness(t); code != http.StatusOK {
			t.Fatalf("%s: readyz %d while a bus is up", tc.name, code)
		}
		r := sayWait(t, g, s.Token.Reveal(), "hello")
		if r.Status != api.StatusHandled {
			t.Fatalf("%s: the next utterance %+v", tc.name, r)
		}
		if got, want := busOf(t, ws, s.SessionID, "hello"), upAfter(s.SessionID, tc.down...); got != want {
			t.Fatalf("%s: the next utterance went to bus %d, want %d", tc.name, got+1, want+1)
		}
		if v := scrape(t, g, `gateway_bus_utterances_total{bus="`+buses.Label(tc.pos)+`",status="error"}`); v != 1 {
			t.Fatalf("%s: errors on the bus: %v", tc.name, v)
		}
	}
	// The third bus's session never noticed.
	third := byBus[2]
	if r := sayWait(t, g, third.Token.Reveal(), "tell me a joke"); r.Status != api.StatusHandled {
		t.Fatalf("the third bus's session: %+v", r)
	}
	if got := busOf(t, ws, third.SessionID, "tell me a joke"); got != 2 {
		t.Fatalf("the third bus's session moved to bus %d", got+1)
	}
	if v := scrape(t, g, `gateway_bus_utterances_total{bus="3",status="error"}`); v != 0 {
		t.Fatalf("errors on the third bus: %v", v)
	}
	if err := procs[2].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitBusState(t, g, 2, api.BusDown)
	if code, states := g.readiness(t); code != http.StatusServiceUnavailable || len(states) != 3 {
		t.Fatalf("readyz %d %+v with no bus left", code, states)
	}
}
