// Package redistest runs a real redis-server for the tests of the Redis
// implementations: Debian's redis-server on a free loopback port, with a
// temporary directory of its own, stopped when the test ends. It never fakes
// Redis. A test that needs Redis fails (never skips) when redis-server is
// missing: `make test` installs it. It is imported by tests only.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// Binary is the server the tests run, looked up on PATH.
const Binary = "redis-server"

// Options are how a test wants its server.
type Options struct {
	// AppendOnly turns on the append-only file (appendonly yes, fsync on
	// every write), so that what was written survives Restart. Without it
	// the server keeps nothing on disk (save '' and appendonly no).
	AppendOnly bool
}

// Server is a redis-server process started for one test.
type Server struct {
	// Addr is host:port on loopback.
	Addr string
	// Dir is the server's working directory (its append-only file).
	Dir string

	opts Options
	port int
	t    testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *gatewaytest.Buffer
}

// Start runs a redis-server for t on a free port with a fresh directory,
// waits until it answers PING, and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("this test needs a real %s, which is not on PATH: install Debian's redis-server (`make redis`, which `make test` runs, does it)", Binary)
	}
	s := &Server{Dir: t.TempDir(), opts: opts, t: t}
	t.Cleanup(s.Stop)
	// A free port may be taken by someone else between our probe and the
	// server's bind: try a few.
	var last string
	for range 10 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if s.launch(t) {
			return s
		}
		last = s.logs.String()
	}
	t.Fatalf("redis-server did not start:\n%s", last)
	return nil
}

// URL is the server's address as GATEWAY_REDIS_URL takes it, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Logs is what the server printed so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Stop ends the server (SIGTERM; SIGKILL if it lingers) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(gatewaytest.WaitLimit):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server and starts it again on the same port and
// directory: with AppendOnly, what it held is back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var ok bool
	// The port is ours, but the kernel may take a moment to free it.
	gatewaytest.Eventually(t, "redis-server to start again on "+s.Addr, func() bool {
		ok = s.launch(t)
		return ok
	})
}

// launch starts the process on s.port and reports whether it answers PING;
// false when it exited first (its port was taken).
func (s *Server) launch(t testing.TB) bool {
	t.Helper()
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "notice",
	}
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(Binary, args...)
	logs := &gatewaytest.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", Binary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.logs = cmd, done, logs
	s.mu.Unlock()

	exited := false
	gatewaytest.Eventually(t, "redis-server on "+s.Addr+" to answer PING", func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		reply, err := s.Do("PING")
		return err == nil && reply == "PONG"
	})
	if exited {
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
		return false
	}
	return true
}

// freePort asks the kernel for a loopback port nobody uses right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Do sends one command on a connection of its own and returns the reply as
// text: a status or a bulk string as it is, an integer in decimal, an array
// as its elements joined by newlines, a nil as "(nil)". A Redis error is
// returned as an error. It is for tests that look at what the server holds
// without going through the code under test.
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(gatewaytest.WaitLimit))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// MustDo is Do that fails the test on an error.
func (s *Server) MustDo(t testing.TB, args ...string) string {
	t.Helper()
	reply, err := s.Do(args...)
	if err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	return reply
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch kind, rest := line[0], line[1:]; kind {
	case '+', ':':
		return rest, nil
	case '-':
		return "", errors.New(rest)
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "(nil)", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "(nil)", nil
		}
		items := make([]string, 0, n)
		for range n {
			item, err := readReply(r)
			if err != nil {
				return "", err
			}
			items = append(items, item)
		}
		return strings.Join(items, "\n"), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}
