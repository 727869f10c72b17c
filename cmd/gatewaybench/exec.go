package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Lines the gateway prints on standard output at start.
var (
	listenLine = regexp.MustCompile(`gateway listening on (https?://\S+) `)
	adminLine  = regexp.MustCompile(`admin token \(shown once, only its hash is kept\): (\S+)`)
)

// startWait bounds how long a started gateway may take to become ready.
const startWait = 30 * time.Second

// gatewayProc is a gateway the tool started.
type gatewayProc struct {
	cmd   *exec.Cmd
	url   string
	admin string
	logs  *tailBuffer
	// listening and ready are from exec to the listening line and to the
	// first /readyz 200.
	listening, ready time.Duration
	exited           chan struct{}
}

// tailBuffer keeps the last bytes written to it: the gateway's logs, shown
// when it fails.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 16<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// gatewayEnv is the environment of a started gateway: ours, a fresh address
// and the data dir, quiet logs, then the -env settings, which win.
func gatewayEnv(dataDir string, settings []string) []string {
	env := append(os.Environ(), "GATEWAY_ADDR=127.0.0.1:0", "GATEWAY_DATA_DIR="+dataDir, "GATEWAY_LOG_LEVEL=warn")
	for _, kv := range settings {
		if !strings.HasPrefix(kv, "GATEWAY_") {
			kv = "GATEWAY_" + kv
		}
		env = append(env, kv)
	}
	return env
}

// startGateway runs bin serve and waits until it is ready, timing both
// steps. The admin token is read from its output when it prints one (at the
// first start of a data dir).
func startGateway(ctx context.Context, bin, dataDir string, settings []string) (*gatewayProc, error) {
	g := &gatewayProc{logs: &tailBuffer{}, exited: make(chan struct{})}
	cmd := exec.Command(bin, "serve")
	cmd.Env = gatewayEnv(dataDir, settings)
	cmd.Stderr = g.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 16)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g.cmd = cmd
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait()
		close(g.exited)
	}()
	deadline := time.NewTimer(startWait)
	defer deadline.Stop()
	for g.url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("the gateway exited before listening:\n%s", g.logs.String())
			}
			if m := adminLine.FindStringSubmatch(l); m != nil {
				g.admin = m[1]
			}
			if m := listenLine.FindStringSubmatch(l); m != nil {
				g.url = m[1]
				g.listening = time.Since(t0)
			}
		case <-deadline.C:
			g.stop()
			return nil, fmt.Errorf("the gateway did not listen within %s:\n%s", startWait, g.logs.String())
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		}
	}
	go func() { // the rest of its output
		for range lines {
		}
	}()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(g.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.ready = time.Since(t0)
				return g, nil
			}
		}
		select {
		case <-time.After(time.Millisecond):
		case <-deadline.C:
			g.stop()
			return nil, fmt.Errorf("the gateway was not ready within %s:\n%s", startWait, g.logs.String())
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		}
	}
}

// pid is the started gateway's process id.
func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// stop interrupts the gateway and waits for it to exit (killing it after a
// while).
func (g *gatewayProc) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// execGateways starts bin on a fresh data dir, stops it, and starts it again
// restarts times, timing every start; the last one stays up for the load.
func execGateways(ctx context.Context, cfg config, stderr io.Writer) (*gatewayProc, *startupReport, func(), error) {
	dir, err := os.MkdirTemp("", "gatewaybench-data")
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	st := &startupReport{}
	var g *gatewayProc
	admin := ""
	for i := 0; i <= cfg.Restarts; i++ {
		if g != nil {
			g.stop()
		}
		g, err = startGateway(ctx, cfg.Exec, dir, cfg.Env)
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
		if i == 0 {
			st.ListeningMS, st.ReadyMS = ms(g.listening), ms(g.ready)
			admin = g.admin
		} else {
			st.RestartListeningMS = append(st.RestartListeningMS, ms(g.listening))
			st.RestartReadyMS = append(st.RestartReadyMS, ms(g.ready))
		}
	}
	if admin == "" {
		admin = cfg.AdminToken // GATEWAY_ADMIN_TOKEN given through -env
		for _, kv := range cfg.Env {
			if v, ok := strings.CutPrefix(strings.TrimPrefix(kv, "GATEWAY_"), "ADMIN_TOKEN="); ok {
				admin = v
			}
		}
	}
	if admin == "" {
		g.stop()
		cleanup()
		return nil, nil, nil, errors.New("the started gateway printed no admin token")
	}
	g.admin = admin
	sleep(ctx, cfg.Settle)
	if s, err := readProc(g.pid()); err == nil {
		st.IdleRSSBytes = s.rss
	} else {
		fmt.Fprintln(stderr, "gatewaybench: reading the gateway's memory:", err)
	}
	return g, st, func() { g.stop(); cleanup() }, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
