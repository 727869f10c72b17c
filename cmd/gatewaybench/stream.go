package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/apiclient"
)

// Sizes of a stream's reader.
const (
	streamBuffer = 4096
	// maxEventBytes bounds one event's data: a bus frame carried whole.
	maxEventBytes = 1 << 20
)

// stream is one open event stream of a client, read by its own goroutine.
// Only a client's primary stream reports speak and done events (the others
// get the same events and only count them).
type stream struct {
	cl      *clientState
	primary bool
	conn    net.Conn
	events  *apiclient.Decoder
	// last is the last comment the server wrote: why it ended the stream.
	last atomic.Value // string
}

// openStream connects from src, asks for the client's stream and reads up
// to its ready event. The caller reads the rest with read (or, for a slow
// stream, never).
func openStream(ctx context.Context, src *source, hostport string, cl *clientState, primary, slow bool) (*stream, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if slow {
		conn, err = src.dialSlow(dctx, hostport)
	} else {
		conn, err = src.dialer.DialContext(dctx, "tcp", hostport)
	}
	if err != nil {
		return nil, fmt.Errorf("stream of %s: %w", cl.id, err)
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	req := "GET /v1/clients/" + cl.id + "/events HTTP/1.1\r\nHost: " + hostport +
		"\r\nAuthorization: Bearer " + cl.token + "\r\nAccept: text/event-stream\r\nUser-Agent: gatewaybench\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("stream of %s: %w", cl.id, err)
	}
	br := bufio.NewReaderSize(conn, streamBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("stream of %s: %w", cl.id, err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = conn.Close()
		return nil, fmt.Errorf("stream of %s: %w", cl.id, &statusError{status: resp.StatusCode, body: string(raw)})
	}
	s := &stream{cl: cl, primary: primary, conn: conn}
	s.last.Store("")
	s.events = newEventDecoder(resp.Body, func(c string) { s.last.Store(c) })
	// Up to ready: the retry hint, then ready.
	for {
		ev, err := s.events.Next()
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("stream of %s before ready: %w", cl.id, err)
		}
		if ev.Name == "ready" {
			break
		}
	}
	s.last.Store("") // what came before ready says nothing of the end
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// read reads events until the stream ends; it returns nil when ctx ended
// it (the caller closes the connection), else why it ended.
func (s *stream) read(ctx context.Context, events *atomic.Uint64) error {
	for {
		ev, err := s.events.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if c := s.last.Load().(string); c != "" {
				return fmt.Errorf("stream of %s ended (%q): %w", s.cl.id, c, err)
			}
			return fmt.Errorf("stream of %s ended: %w", s.cl.id, err)
		}
		events.Add(1)
		if !s.primary {
			continue
		}
		switch ev.Name {
		case "speak":
			if id := jsonField(ev.Data, "utterance_id"); id != "" {
				s.cl.speak(id, time.Now())
			}
		case "done":
			if id := jsonField(ev.Data, "utterance_id"); id != "" {
				s.cl.done(id, jsonField(ev.Data, "status"), time.Now())
			}
		}
	}
}

// newEventDecoder reads a stream's events with apiclient's decoder, events
// of at most maxEventBytes of data (a larger one is skipped); comment gets
// each comment the server writes (keepalives, and why it ends a stream).
func newEventDecoder(body io.Reader, comment func(string)) *apiclient.Decoder {
	d := apiclient.NewDecoder(body, maxEventBytes, "")
	d.Observe(func(field, value string) {
		if c := strings.TrimSpace(value); field == "" && c != "" {
			comment(c)
		}
	})
	return d
}
