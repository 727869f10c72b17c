package redistest

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A server answers, is configured as the tests expect (its own directory,
// nothing saved), and is gone once the test that started it has ended.
func TestServerAnswersAndStopsWithItsTest(t *testing.T) {
	var s *Server
	t.Run("inner", func(t *testing.T) {
		s = Start(t, Options{})
		if got := s.MustDo(t, "PING"); got != "PONG" {
			t.Fatalf("PING answered %q", got)
		}
		s.MustDo(t, "SET", "greeting", "hello\r\nworld")
		if got := s.MustDo(t, "GET", "greeting"); got != "hello\r\nworld" {
			t.Fatalf("GET answered %q", got)
		}
		if got := s.MustDo(t, "CONFIG", "GET", "dir"); got != "dir\n"+s.Dir {
			t.Fatalf("dir %q, want %q", got, s.Dir)
		}
		if got := s.MustDo(t, "CONFIG", "GET", "save"); got != "save\n" {
			t.Fatalf("save %q, want none", got)
		}
		if got := s.MustDo(t, "CONFIG", "GET", "appendonly"); got != "appendonly\nno" {
			t.Fatalf("appendonly %q", got)
		}
		if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/0") {
			t.Fatalf("URL %q", s.URL())
		}
	})
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after its test ended", s.Addr)
	}
}

// Two servers in one test are two: their own ports, their own data.
func TestServersAreApart(t *testing.T) {
	a, b := Start(t, Options{}), Start(t, Options{})
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("both on %s in %s", a.Addr, a.Dir)
	}
	a.MustDo(t, "SET", "k", "a")
	if got := b.MustDo(t, "GET", "k"); got != "(nil)" {
		t.Fatalf("b sees a's key: %q", got)
	}
}

// With AppendOnly, what was written is back after a restart on the same
// port; without it, nothing is.
func TestRestartKeepsWhatTheAppendOnlyFileHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"appendonly", Options{AppendOnly: true}, "kept"},
		{"in memory", Options{}, "(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, tc.opts)
			s.MustDo(t, "SET", "k", "kept")
			addr := s.Addr
			s.Restart(t)
			if s.Addr != addr {
				t.Fatalf("restarted on %s, not %s", s.Addr, addr)
			}
			if got := s.MustDo(t, "GET", "k"); got != tc.want {
				t.Fatalf("after restart: %q, want %q", got, tc.want)
			}
		})
	}
}

// Kill ends the server at once: nothing answers until Restart.
func TestKillThenRestart(t *testing.T) {
	s := Start(t, Options{})
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("a killed server answered PING")
	}
	s.Restart(t)
	if got := s.MustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after restart: %q", got)
	}
}

// A Redis error comes back as an error, not as a reply.
func TestDoReturnsRedisErrors(t *testing.T) {
	s := Start(t, Options{})
	s.MustDo(t, "SET", "k", "v")
	if _, err := s.Do("INCR", "k"); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("INCR of a string: %v", err)
	}
	if _, err := s.Do("NOSUCHCOMMAND"); err == nil {
		t.Fatal("an unknown command answered without an error")
	}
}

// Without redis-server on PATH, a test that needs it fails, saying what to
// install; it is never skipped.
func TestMissingServerFailsTheTest(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		Start(t, Options{})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingServerFailsTheTest$", "-test.v")
	cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1", "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the test passed without redis-server:\n%s", out)
	}
	if strings.Contains(string(out), "SKIP") || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "install Debian's redis-server") {
		t.Fatalf("not a clear failure:\n%s", out)
	}
}
