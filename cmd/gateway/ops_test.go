package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/settings"
)

// serveBus runs a bare messagebus (no assistant) on addr ("127.0.0.1:0" for
// any port) and returns its address and a stop function.
func serveBus(t *testing.T, addr string) (string, func()) {
	t.Helper()
	bus, err := messagebus.New(messagebus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	// The port may take a moment to be free again.
	gatewaytest.Eventually(t, "listening on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := &http.Server{Handler: bus.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { _ = srv.Close(); _ = bus.Close() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// Readiness follows the bus link: 503 with the reason while it is down, 200
// again once it is back.
func TestReadinessFollowsTheBusLink(t *testing.T) {
	addr, stop := serveBus(t, "127.0.0.1:0")
	g := startGateway(t, map[string]string{"BUS_URL": "ws://" + addr + "/core"})
	stop()
	waitFor(t, func() bool {
		return g.call(t, http.MethodGet, "/readyz", "", nil, nil).StatusCode == http.StatusServiceUnavailable
	})
	var p api.Problem
	resp := g.call(t, http.MethodGet, "/readyz", "", nil, &p)
	if !strings.Contains(p.Detail, "bus link down") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("not ready without a reason: %+v", p)
	}
	wantStatus(t, g.call(t, http.MethodGet, "/healthz", "", nil, nil), http.StatusOK)
	// Probes that find it not ready are not errors of the gateway: none of
	// their lines is at ERROR (the link going down is logged, once, by the
	// link).
	for _, line := range strings.Split(g.Logs.String(), "\n") {
		if strings.Contains(line, "route=/readyz") && strings.Contains(line, "status=503") && !strings.Contains(line, "level=INFO") {
			t.Fatalf("a not-ready probe logged above INFO: %s", line)
		}
	}
	if !strings.Contains(g.Logs.String(), "messagebus link down") {
		t.Fatalf("the link going down was not logged:\n%s", g.Logs.String())
	}
	// An utterance while the bus is away is refused, not lost.
	s := g.newClient(t, "offline")
	wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "hello"}, nil), http.StatusServiceUnavailable)

	serveBus(t, addr)
	waitFor(t, func() bool { return g.call(t, http.MethodGet, "/readyz", "", nil, nil).StatusCode == http.StatusOK })
}

// scrape returns the value of one sample of /metrics ("name{labels}").
func scrape(t *testing.T, g *gateway, sample string) float64 {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(sample):]), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func TestMetricsFollowWhatHappens(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2"})
	handled := `gateway_utterances_total{status="handled"}`
	if v := scrape(t, g, handled); v != 0 {
		t.Fatalf("%s = %v before anything", handled, v)
	}
	s := g.newClient(t, "metered")
	st := g.openStream(t, "metered", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	if v := scrape(t, g, "gateway_streams_open"); v != 1 {
		t.Fatalf("streams_open = %v", v)
	}
	sayWait(t, g, s.Token.Reveal(), "hello")
	sayWait(t, g, s.Token.Reveal(), "blorp")
	waitFor(t, func() bool { return scrape(t, g, handled) == 1 })
	if v := scrape(t, g, `gateway_utterances_total{status="intent_failure"}`); v != 1 {
		t.Fatalf("intent failures = %v", v)
	}
	if v := scrape(t, g, `gateway_utterance_latency_seconds_count{event="done"}`); v != 2 {
		t.Fatalf("done latency observations = %v", v)
	}
	if v := scrape(t, g, `gateway_http_requests_total{method="POST",route="/v1/utterances",status="200"}`); v != 2 {
		t.Fatalf("utterance requests = %v", v)
	}
	if v := scrape(t, g, `gateway_bus_link_up{bus="1"}`); v != 1 {
		t.Fatalf("bus_link_up = %v", v)
	}
	failLogins(t, g.from(t, "127.0.0.12"), 2)
	if v := scrape(t, g, `gateway_auth_failures_total{reason="login"}`); v != 2 {
		t.Fatalf("login failures = %v", v)
	}
	if v := scrape(t, g, "gateway_bans_total"); v != 1 {
		t.Fatalf("bans = %v", v)
	}
	if v := scrape(t, g, `gateway_blacklist_entries{source="auto"}`); v != 1 {
		t.Fatalf("auto entries = %v", v)
	}
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:*"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	g.call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "tell me a joke"}, nil)
	if v := scrape(t, g, `gateway_protected_intent_checks_total{outcome="password_required"}`); v != 1 {
		t.Fatalf("password refusals = %v", v)
	}
	if v := scrape(t, g, "gateway_intent_dry_run_seconds_count"); v < 1 {
		t.Fatalf("dry runs timed = %v", v)
	}
}

// metricsLines scrapes /metrics and returns its lines.
func metricsLines(t *testing.T, g *gateway) []string {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// Requests with made-up methods and paths, each a 404 or 405 that no login
// or rate limit stops, add no series to /metrics: every label value comes
// from a fixed set (unknown methods are "other").
func TestMadeUpRequestsDoNotGrowMetrics(t *testing.T) {
	g := startGateway(t, nil)
	send := func(round, n int) {
		for i := range n {
			method := fmt.Sprintf("X%dR%dQWERTYUIOPASDFGHJKLZXCVBNMQWERTYUIOPASDFGHJKLZXCVBNM", i, round)
			for _, path := range []string{"/healthz", fmt.Sprintf("/nope-%d-%d", round, i), fmt.Sprintf("/v1/clients/c%d-%d/events", round, i), fmt.Sprintf("/assets/a%d-%d.js", round, i)} {
				for _, m := range []string{method, http.MethodGet} {
					req, err := http.NewRequest(m, g.URL+path, nil)
					if err != nil {
						t.Fatal(err)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}
	metricsLines(t, g) // the scrape's own series
	send(0, 3)
	before := metricsLines(t, g)
	send(1, 100)
	after := metricsLines(t, g)
	if len(after) != len(before) {
		t.Fatalf("/metrics grew from %d to %d lines", len(before), len(after))
	}
	for _, line := range after {
		if strings.Contains(line, "QWERTY") || strings.Contains(line, "nope-") || strings.Contains(line, "c1-") {
			t.Fatalf("a label from the request reached /metrics: %s", line)
		}
	}
	// Each is still counted, under method "other".
	var other float64
	for _, line := range after {
		if strings.HasPrefix(line, `gateway_http_requests_total{method="other",`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatal(err)
			}
			other += v
		}
	}
	if other != 4*103 {
		t.Fatalf("requests with made-up methods counted %v times as other, want %d", other, 4*103)
	}
}

func TestMetricsCanRequireTheAdminToken(t *testing.T) {
	g := startGateway(t, map[string]string{"METRICS": "admin"})
	wantStatus(t, g.call(t, http.MethodGet, "/metrics", "", nil, nil), http.StatusUnauthorized)
	wantStatus(t, g.call(t, http.MethodGet, "/metrics", g.AdminToken, nil, nil), http.StatusOK)
	off := startGateway(t, map[string]string{"METRICS": "off"})
	wantStatus(t, off.call(t, http.MethodGet, "/metrics", "", nil, nil), http.StatusNotFound)
}

// SIGTERM with streams open and answers awaited: the process tells every
// stream to reconnect, lets the waiting requests finish, and exits 0.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	busAddr, _ := serveBus(t, "127.0.0.1:0") // no assistant: utterances stay pending
	dir := t.TempDir()
	cmd := exec.Command(gatewaytest.Binary(t), "serve")
	cmd.Env = append(os.Environ(), "GATEWAY_ADDR=127.0.0.1:0", "GATEWAY_DATA_DIR="+dir, "GATEWAY_BUS_URL=ws://"+busAddr+"/core", "GATEWAY_SHUTDOWN_TIMEOUT=10s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	out := &gatewaytest.Buffer{}
	go func() { _, _ = io.Copy(out, stdout) }()
	waitFor(t, func() bool { return listenLine.MatchString(out.String()) })
	g := &gateway{URL: listenLine.FindStringSubmatch(out.String())[1], AdminToken: adminLine.FindStringSubmatch(out.String())[1], client: &http.Client{Transport: newValidatingTransport(t, nil)}}
	waitFor(t, func() bool { return g.call(t, http.MethodGet, "/readyz", "", nil, nil).StatusCode == http.StatusOK })

	const streams, waiters = 3, 3
	var opened []*stream
	var tokens []string
	for i := range streams {
		s := g.newClient(t, "dev-"+strconv.Itoa(i))
		st := g.openStream(t, "dev-"+strconv.Itoa(i), bearer(s.Token.Reveal()))
		st.next(t, api.EventReady)
		opened, tokens = append(opened, st), append(tokens, s.Token.Reveal())
	}
	results := make(chan int, waiters)
	for i := range waiters {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/utterances?wait=2s", strings.NewReader(`{"utterance":"hello"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	// The waits are in flight: their utterances are pending.
	waitFor(t, func() bool { return scrape(t, g, "gateway_utterances_pending") >= waiters })
	// One utterance surely pending on each stream (202 before the signal).
	pending := make([]string, streams)
	for i := range streams {
		pending[i] = say(t, g, tokens[i], "hello").ID
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, st := range opened {
		// Issue 17, item 2: the pending utterance's end reaches the stream
		// before the stream is told to reconnect.
		for {
			d := decode[api.DoneEvent](t, st.next(t, api.EventDone).Data)
			if d.UtteranceID != pending[i] {
				continue // a waiter's utterance
			}
			if d.Status != api.StatusError {
				t.Errorf("stream %d: done %+v, want error", i, d)
			}
			break
		}
		select {
		case r := <-st.retry:
			if ms, err := strconv.Atoi(r); err != nil || ms < 2000 {
				t.Fatalf("final retry hint %q", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream was not told to reconnect")
		}
		st.waitClosed(t)
	}
	for range waiters {
		if code := <-results; code != http.StatusOK {
			t.Fatalf("a waiting request ended with %d", code)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

var tableRow = regexp.MustCompile("^\\| `--([a-z-]+)` \\| `(GATEWAY_[A-Z_]+)` \\| `([^`]*)` \\| (.+) \\|$")

// The README's settings table is the configuration struct: same flags,
// variables, defaults and meanings, in the same order.
func TestReadmeSettingsTableMatchesTheConfig(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if m := tableRow.FindStringSubmatch(line); m != nil {
			rows = append(rows, m[1:])
		}
	}
	want := settings.Of[config]()
	if len(rows) != len(want) {
		t.Fatalf("README lists %d settings, the config has %d", len(rows), len(want))
	}
	for i, s := range want {
		got := rows[i]
		if got[0] != s.Flag || got[1] != envPrefix+s.Env || got[2] != s.Default || got[3] != s.Help {
			t.Errorf("row %d: %q, want --%s %s%s %q %q", i, got, s.Flag, envPrefix, s.Env, s.Default, s.Help)
		}
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out, errOut gatewaytest.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	help := errOut.String() + out.String()
	for _, s := range settings.Of[config]() {
		if !strings.Contains(help, "--"+s.Flag) || !strings.Contains(help, envPrefix+s.Env) || !strings.Contains(help, s.Help) {
			t.Errorf("--help lacks %s", s.Env)
		}
	}
}

// A clean shutdown of the embedded default is quiet: the links to the
// embedded bus close before the bus does, so nothing is logged as a warning
// or an error after "shutting down" (an operator's alerting reads those).
func TestCleanShutdownLogsNoWarning(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	g.Stop()
	logs := g.Logs()
	_, after, ok := strings.Cut(logs, `msg="shutting down"`)
	if !ok {
		t.Fatalf("no shutdown line in the logs:\n%s", logs)
	}
	for line := range strings.Lines(after) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a clean shutdown logged: %s", line)
		}
	}
}

// What answers GET answers HEAD (same status and headers, no body), but the
// event stream; a 405 names the methods that are allowed; a made-up method
// on a path no route serves is a 404.
func TestHeadAndAllow(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "header")
	for _, tc := range []struct{ path, token string }{
		{"/healthz", ""}, {"/readyz", ""}, {"/", ""}, {"/openapi.yaml", ""}, {"/metrics", ""},
		{"/assets/api.js", ""}, {"/v1/clients/me", s.Token.Reveal()}, {"/v1/admin/clients", g.AdminToken},
	} {
		get := g.call(t, http.MethodGet, tc.path, tc.token, nil, nil)
		head := g.call(t, http.MethodHead, tc.path, tc.token, nil, nil)
		body, _ := io.ReadAll(head.Body)
		if head.StatusCode != get.StatusCode || head.StatusCode != http.StatusOK || len(body) != 0 ||
			head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q with %d bytes; GET: %d %q", tc.path, head.StatusCode, head.Header.Get("Content-Type"), len(body), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodDelete, "/openapi.yaml", "GET, HEAD"},
		{"XMADEUP", "/healthz", "GET, HEAD"},
		{http.MethodGet, "/v1/utterances", "POST"},
		{http.MethodHead, "/v1/clients/header/events", "GET"},
		{http.MethodPut, "/v1/admin/clients/x", "PATCH, DELETE"},
		{http.MethodGet, "/v1/sessions/current", "DELETE"},
	} {
		req, _ := http.NewRequest(tc.method, g.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
		if tc.method != http.MethodHead && problemType(t, g.call(t, tc.method, tc.path, "", nil, nil)) != api.ProblemTypePrefix+api.EMETHOD {
			t.Errorf("%s %s: not a method-not-allowed problem", tc.method, tc.path)
		}
	}
	req, _ := http.NewRequest("XMADEUP", g.URL+"/no/such/route", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a made-up method on no route: %d, want 404", resp.StatusCode)
	}
}

// The log ends with a line saying the gateway stopped, and JSON logs write
// durations as text, not nanoseconds (issue 17, item 11).
func TestLogsEndWithStopped(t *testing.T) {
	g := startGateway(t, map[string]string{"LOG_FORMAT": "json"})
	wantStatus(t, g.call(t, http.MethodGet, "/healthz", "", nil, nil), http.StatusOK)
	g.Stop(t)
	lines := strings.Split(strings.TrimSpace(g.Logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"gateway stopped"`) {
		t.Errorf("last log line %s", last)
	}
	if !regexp.MustCompile(`"duration":"[0-9.]+[µnm]?s"`).MatchString(g.Logs.String()) {
		t.Errorf("no duration written as text in the access log:\n%s", g.Logs.String())
	}
}

// The example configurations (docs/examples: systemd units, the compose
// file, the replicas' environment) and docs/gateway.service name only
// settings that exist: every GATEWAY_ name in them is one of the config's.
func TestExamplesNameOnlyRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings.Of[config]() {
		known[envPrefix+s.Env] = true
	}
	files, err := filepath.Glob("../../docs/examples/*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../docs/gateway.service")
	name := regexp.MustCompile(`GATEWAY_[A-Z0-9_]+`)
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			seen++
			if !known[n] {
				t.Errorf("%s names %s, which is not a setting", filepath.Base(f), n)
			}
		}
	}
	if len(files) < 5 || seen < 10 {
		t.Fatalf("only %d files and %d settings read: the examples moved?", len(files), seen)
	}
}
