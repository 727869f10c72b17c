package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxSetupTries bounds the retries of one set-up call refused with 429 or
// 503 (login rate per address, a gateway still starting).
const maxSetupTries = 30

// statusError is an unexpected HTTP status, kept for the error counts.
type statusError struct {
	status     int
	retryAfter time.Duration
	body       string
	closed     bool // the server closes the connection after it
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.status, strings.TrimSpace(e.body))
}

// errorKind names an error for the report: http_429, timeout, network, ...
func errorKind(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "network"
	}
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil); a status other than want is a *statusError.
func call(ctx context.Context, c *http.Client, method, url, token string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		se := &statusError{status: resp.StatusCode, body: string(raw)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return se
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return nil
}

// callRetrying is call, waiting and trying again while the gateway answers
// 429 or 503 (the login rate per address, a bus link still coming up).
func callRetrying(ctx context.Context, c *http.Client, method, url, token string, body, out any, want int) error {
	for try := 1; ; try++ {
		err := call(ctx, c, method, url, token, body, out, want)
		var se *statusError
		if err == nil || !errors.As(err, &se) || (se.status != http.StatusTooManyRequests && se.status != http.StatusServiceUnavailable) || try == maxSetupTries {
			return err
		}
		wait := se.retryAfter
		if wait <= 0 || wait > 5*time.Second {
			wait = time.Second
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// createClient registers a client and returns its access key.
func createClient(ctx context.Context, c *http.Client, base, admin, id string) (string, error) {
	var out struct {
		AccessKey string `json:"access_key"`
	}
	body := map[string]any{"id": id, "name": id}
	if err := callRetrying(ctx, c, http.MethodPost, base+"/v1/admin/clients", admin, body, &out, http.StatusCreated); err != nil {
		return "", fmt.Errorf("create client %s: %w", id, err)
	}
	return out.AccessKey, nil
}

// deleteClient removes a client (and ends its streams).
func deleteClient(ctx context.Context, c *http.Client, base, admin, id string) error {
	if err := callRetrying(ctx, c, http.MethodDelete, base+"/v1/admin/clients/"+id, admin, nil, nil, http.StatusNoContent); err != nil {
		return fmt.Errorf("delete client %s: %w", id, err)
	}
	return nil
}

// login opens a session and returns its token.
func login(ctx context.Context, c *http.Client, base, id, key string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	body := map[string]string{"client_id": id, "access_key": key}
	if err := callRetrying(ctx, c, http.MethodPost, base+"/v1/sessions", "", body, &out, http.StatusCreated); err != nil {
		return "", fmt.Errorf("log in %s: %w", id, err)
	}
	if out.Token == "" {
		return "", fmt.Errorf("log in %s: no token in the answer", id)
	}
	return out.Token, nil
}

// speaker posts utterances for one talker over its own keep-alive
// connection, writing each request and reading its answer on the talker's
// goroutine. net/http's client hands every request to two goroutines of its
// own, which on this kind of machine adds about 0.1 ms to each round trip:
// the tool would measure itself, not the gateway.
type speaker struct {
	src      *source
	hostport string
	head     []byte // the request up to the body
	conn     net.Conn
	br       *bufio.Reader
}

func newSpeaker(src *source, hostport, token string, body []byte) *speaker {
	head := "POST /v1/utterances HTTP/1.1\r\nHost: " + hostport + "\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nUser-Agent: gatewaybench\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return &speaker{src: src, hostport: hostport, head: append([]byte(head), body...)}
}

// say posts the utterance and returns its id (202 Accepted), within timeout.
func (s *speaker) say(ctx context.Context, timeout time.Duration) (string, error) {
	if s.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := s.src.dialer.DialContext(dctx, "tcp", s.hostport)
		cancel()
		if err != nil {
			return "", err
		}
		s.conn, s.br = c, bufio.NewReaderSize(c, 4096)
	}
	id, err := s.roundTrip(timeout)
	if err != nil {
		var se *statusError
		if !errors.As(err, &se) || se.closed {
			s.close()
		}
	}
	return id, err
}

func (s *speaker) roundTrip(timeout time.Duration) (string, error) {
	_ = s.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := s.conn.Write(s.head); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return "", err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", &statusError{status: resp.StatusCode, body: string(raw), closed: resp.Close}
	}
	if resp.Close {
		s.close()
	}
	id := jsonField(raw, "id")
	if id == "" {
		return "", fmt.Errorf("utterance accepted without an id: %q", raw)
	}
	return id, nil
}

func (s *speaker) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn, s.br = nil, nil
	}
}

// jsonField finds the string member name in a flat JSON object the gateway
// wrote (ids hold no escapes): a cheap scan instead of a decode, so that the
// tool spends its CPU loading the server, not parsing.
func jsonField(raw []byte, name string) string {
	key := `"` + name + `":"`
	i := bytes.Index(raw, []byte(key))
	if i < 0 {
		return ""
	}
	rest := raw[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
