package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// busLine is what `gateway bus` prints once it listens.
var busLine = regexp.MustCompile(`(ws://\S+)`)

// startBus runs `gateway bus` on a free port, stopped when the test ends,
// and returns its URL.
func startBus(t *testing.T) string {
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
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := busLine.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return m[1]
		}
	}
	t.Fatalf("gateway bus exited before printing its address: %v", sc.Err())
	return ""
}

// handled reads gateway_utterances_total{status="handled"} from a replica's
// /metrics (0 when absent).
func handled(t *testing.T, g *gatewaytest.Gateway) int {
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
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `gateway_utterances_total{status="handled"} `); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q", line)
			}
			return int(n)
		}
	}
	return 0
}

// TestRunOverReplicas spreads a run over two replicas of one gateway (one
// Redis, one `gateway bus`), as -url a,b documents: every stream is on the
// first replica, every login and utterance on the second, and every
// utterance is answered on its stream. The second replica accepted (and
// its bridge handled) every utterance, the first none. Paced like
// TestSmokeRun, so that no limit can refuse anything on any machine.
func TestRunOverReplicas(t *testing.T) {
	const smokeRate = 15
	srv := redistest.Start(t, redistest.Options{})
	bus := startBus(t)
	env := map[string]string{
		"REDIS_URL": srv.URL(), "BUS_URL": bus,
		"JWT_SECRET": strings.Repeat("j", 32), "ADMIN_TOKEN": "gwa_" + strings.Repeat("a", 40),
		"UTTERANCE_RATE": "100", "ADDR_RATE": "100", "LOGIN_RATE": "1000",
	}
	a, b := gatewaytest.Start(t, env), gatewaytest.Start(t, env)
	var out, errOut bytes.Buffer
	args := []string{
		"-url", a.URL + "," + b.URL + "/", "-admin-token", env["ADMIN_TOKEN"], "-clients", "2", "-streams", "1", "-talkers", "2",
		"-rate", strconv.Itoa(smokeRate), "-duration", "2s", "-warmup", "200ms", "-settle", "100ms", "-format", "json",
	}
	if err := run(t.Context(), args, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Errors) != 0 || len(rep.Samples) != 0 {
		t.Fatalf("errors %v, stream failures %v", rep.Errors, rep.Samples)
	}
	if rep.URL != a.URL || len(rep.PostURLs) != 1 || rep.PostURLs[0] != b.URL {
		t.Fatalf("report names streams on %s and posts on %v; want %s and %s", rep.URL, rep.PostURLs, a.URL, b.URL)
	}
	if rep.Setup.StreamsOpened != 2 || rep.Setup.ClientsDeleted != 2 {
		t.Fatalf("set-up %+v", rep.Setup)
	}
	if rep.Run == nil || rep.Run.Completed == 0 || rep.Run.Completed != rep.Run.Accepted || rep.Statuses["handled"] != rep.Run.Completed {
		t.Fatalf("run %+v, statuses %v", rep.Run, rep.Statuses)
	}
	if rep.Latency.Speak.N != rep.Run.Completed {
		t.Fatalf("latencies %+v", rep.Latency)
	}
	if na, nb := handled(t, a), handled(t, b); na != 0 || nb < rep.Run.Completed {
		t.Fatalf("handled: %d on the streams' replica, %d on the posts' replica; want 0 and at least %d", na, nb, rep.Run.Completed)
	}
}

// Several URLs are checked one by one, and -exec starts one gateway only.
func TestParseConfigReplicas(t *testing.T) {
	env := func(string) string { return "gwa_x" }
	c, err := parseConfig([]string{"-url", "http://a:1, http://b:2/,http://c:3"}, env, io.Discard)
	if err != nil || strings.Join(c.URLs, " ") != "http://a:1 http://b:2 http://c:3" {
		t.Fatalf("urls %q, %v", c.URLs, err)
	}
	for _, args := range [][]string{{"-url", "http://a:1,,http://b:2"}, {"-url", "http://a:1,ftp://b"}, {"-exec", "x", "-url", "http://a:1,http://b:2"}} {
		if _, err := parseConfig(args, env, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
