// Package gatewaytest runs the real gateway binary on port 0 for the
// end-to-end tests of other packages (the satellite, the console): it builds
// ./cmd/gateway once per test process, starts it with a fresh data dir, and
// offers the few calls those tests need. It is imported by tests only.
package gatewaytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds ./cmd/gateway once and returns the path of the binary.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "gatewaytest")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "gateway")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/gateway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/gateway: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// httpClient bounds every call, so that a stuck gateway fails the test
// instead of hanging it.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// Gateway is a running gateway process.
type Gateway struct {
	URL        string
	AdminToken string
	DataDir    string
	// BusURL is the embedded bus's address when EMBEDDED_BUS_ADDR was set.
	BusURL string
	env    []string
	cmd    *exec.Cmd
	out    *Buffer
	logs   *Buffer
	t      testing.TB
}

// Buffer is an io.Writer that tests may read (String) while other
// goroutines write to it: a process's output, a logger's sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	listenLine = regexp.MustCompile(`gateway listening on (https?://\S+) `)
	adminLine  = regexp.MustCompile(`admin token \(shown once, only its hash is kept\): (\S+)`)
	busLine    = regexp.MustCompile(`embedded messagebus: (ws://\S+)`)
)

// Start runs the gateway with env (GATEWAY_* names without the prefix, e.g.
// "EMBEDDED_BUS_ADDR": "127.0.0.1:0") on a fresh data dir unless env names
// DATA_DIR, and waits until /readyz answers 200 (or, with wantReady false,
// until it listens). It is stopped when the test ends.
func Start(t testing.TB, env map[string]string) *Gateway {
	t.Helper()
	g := &Gateway{t: t, out: &Buffer{}, logs: &Buffer{}}
	full := map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "LOG_LEVEL": "debug"}
	for k, v := range env {
		full[k] = v
	}
	g.DataDir = full["DATA_DIR"]
	for k, v := range full {
		g.env = append(g.env, "GATEWAY_"+k+"="+v)
	}
	g.start(t, true)
	return g
}

func (g *Gateway) start(t testing.TB, waitReady bool) {
	t.Helper()
	g.out.mu.Lock()
	g.out.b.Reset()
	g.out.mu.Unlock()
	cmd := exec.Command(Binary(t), "serve")
	cmd.Env = append(os.Environ(), g.env...)
	cmd.Stdout = g.out
	cmd.Stderr = g.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.cmd = cmd
	t.Cleanup(g.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenLine.FindStringSubmatch(g.out.String()); m != nil {
			g.URL = m[1]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g.URL == "" {
		t.Fatalf("gateway did not start; logs:\n%s", g.logs.String())
	}
	if m := adminLine.FindStringSubmatch(g.out.String()); m != nil {
		g.AdminToken = m[1]
	}
	if m := busLine.FindStringSubmatch(g.out.String()); m != nil {
		g.BusURL = m[1]
	}
	if !waitReady {
		return
	}
	for time.Now().Before(deadline) {
		resp, err := httpClient.Get(g.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gateway not ready; logs:\n%s", g.logs.String())
}

// Restart stops the gateway and starts it again on the same address and
// data dir (so clients and keys survive). The new process is stopped when t
// ends: pass the outer test, not a subtest that ends sooner.
func (g *Gateway) Restart(t testing.TB) {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimPrefix(g.URL, "http://"), "https://")
	g.Stop()
	replaced := false
	for i, e := range g.env {
		if strings.HasPrefix(e, "GATEWAY_ADDR=") {
			g.env[i], replaced = "GATEWAY_ADDR="+addr, true
		}
	}
	if !replaced {
		g.env = append(g.env, "GATEWAY_ADDR="+addr)
	}
	g.start(t, true)
}

// Stop ends the process with SIGTERM and waits for it.
func (g *Gateway) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	cmd := g.cmd
	g.cmd = nil
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Logs returns what the gateway logged so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// Do sends a JSON request (body may be nil) with a Bearer token (may be
// empty) and decodes a JSON answer into out (may be nil). It returns the
// status.
func (g *Gateway) Do(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
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
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// CreateClient registers a client through the admin API and returns its
// access key.
func (g *Gateway) CreateClient(t testing.TB, id string, aliases ...string) string {
	t.Helper()
	var out struct {
		AccessKey string `json:"access_key"`
	}
	body := map[string]any{"id": id, "name": id, "aliases": aliases}
	if st := g.Do(t, http.MethodPost, "/v1/admin/clients", g.AdminToken, body, &out); st != http.StatusCreated {
		t.Fatalf("create client %s: status %d", id, st)
	}
	return out.AccessKey
}

// ProtectIntent protects an intent pattern with a password.
func (g *Gateway) ProtectIntent(t testing.TB, pattern, password string) {
	t.Helper()
	st := g.Do(t, http.MethodPut, "/v1/admin/protected-intents/"+pattern, g.AdminToken, map[string]string{"password": password}, nil)
	if st != http.StatusOK {
		t.Fatalf("protect %s: status %d", pattern, st)
	}
}

// ScanLines is a helper for tests reading a process's output line by line.
func ScanLines(ctx context.Context, r io.Reader, lines chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		select {
		case lines <- sc.Text():
		case <-ctx.Done():
			return
		}
	}
	close(lines)
}

// WaitLimit bounds Eventually: long enough for a slow, loaded machine, short
// enough that a test that can never succeed still fails rather than hangs.
const WaitLimit = 10 * time.Second

// Eventually polls cond until it holds, and fails the test (naming what it
// waited for) when it has not after WaitLimit. It is how a test waits for
// something another goroutine or process does, instead of sleeping.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitLimit, what, cond)
}

// EventuallyWithin is Eventually with another bound than WaitLimit, for
// what takes longer on a loaded machine (a server started with -race) or
// must be noticed sooner.
func EventuallyWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", limit, what)
		}
		time.Sleep(wait)
	}
}
