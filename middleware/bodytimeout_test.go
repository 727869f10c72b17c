package middleware_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/middleware"
)

// bodyTimeoutServer is a real server whose handler reads the body under
// BodyTimeout(d), then waits hold (a ?wait= request) and answers 200, or 408
// when the body did not arrive in time.
func bodyTimeoutServer(t *testing.T, d, hold time.Duration) *httptest.Server {
	t.Helper()
	h := middleware.BodyTimeout(d)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			if errors.Is(err, middleware.ErrBodyTimeout) {
				w.WriteHeader(http.StatusRequestTimeout)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			return // cut off: the client sees no answer
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// slowPost sends headers announcing a 100-byte body, then the body's bytes
// one every pace (never, when pace is 0, after the first), and returns the
// status line the server answers with.
func slowPost(t *testing.T, addr string, pace time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	if pace > 0 {
		go func() {
			for range 99 {
				time.Sleep(pace)
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
	}
	// Bounded, and far beyond the timeout under test: the answer is awaited,
	// not timed.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestBodyTimeoutCutsSlowBodies(t *testing.T) {
	srv := bodyTimeoutServer(t, 100*time.Millisecond, 0)
	addr := srv.Listener.Addr().String()
	// A body that stops after its first byte, and one that trickles in a
	// byte every 50 ms (5 s for all of it): both cut at the deadline.
	for name, pace := range map[string]time.Duration{"stalled": 0, "trickling": 50 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			if got := slowPost(t, addr, pace); got != "HTTP/1.1 408 Request Timeout" {
				t.Fatalf("answer %q, want 408", got)
			}
		})
	}
}

// Once the body is in, the deadline is lifted: a handler that waits longer
// than the body timeout (?wait=) is not cut off.
func TestBodyTimeoutLiftedOnceTheBodyIsIn(t *testing.T) {
	srv := bodyTimeoutServer(t, 50*time.Millisecond, 300*time.Millisecond)
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"utterance":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	// And a request without a body is not touched.
	req, _ := http.NewRequest(http.MethodDelete, srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("no body: status %d, want 200", resp.StatusCode)
	}
}
