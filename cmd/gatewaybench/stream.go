package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
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
	body    *bufio.Reader
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
	s := &stream{cl: cl, primary: primary, conn: conn, body: bufio.NewReaderSize(resp.Body, streamBuffer)}
	s.last.Store("")
	// Up to ready: the retry hint, then ready.
	p := eventParser{}
	for {
		ev, err := p.next(s.body)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("stream of %s before ready: %w", cl.id, err)
		}
		if ev.name == "ready" {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// read reads events until the stream ends; it returns nil when ctx ended
// it (the caller closes the connection), else why it ended.
func (s *stream) read(ctx context.Context, events *atomic.Uint64) error {
	p := eventParser{}
	for {
		ev, err := p.next(s.body)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if c := s.last.Load().(string); c != "" {
				return fmt.Errorf("stream of %s ended (%q): %w", s.cl.id, c, err)
			}
			return fmt.Errorf("stream of %s ended: %w", s.cl.id, err)
		}
		if ev.comment != "" {
			s.last.Store(ev.comment)
			continue
		}
		events.Add(1)
		if !s.primary {
			continue
		}
		switch ev.name {
		case "speak":
			if id := jsonField(ev.data, "utterance_id"); id != "" {
				s.cl.speak(id, time.Now())
			}
		case "done":
			if id := jsonField(ev.data, "utterance_id"); id != "" {
				s.cl.done(id, jsonField(ev.data, "status"), time.Now())
			}
		}
	}
}

// sseEvent is one parsed event, or one comment.
type sseEvent struct {
	name    string
	data    []byte // valid until the next call of next
	comment string
}

// eventParser reads Server-Sent Events (WHATWG HTML, "Server-sent events"):
// field lines up to a blank line; comments are reported on their own.
type eventParser struct {
	name []byte
	data []byte
	line []byte // a line longer than the reader's buffer, put together
}

// errEventTooLarge is returned for an event larger than maxEventBytes.
var errEventTooLarge = errors.New("event larger than 1 MiB")

// next returns the next event or comment.
func (p *eventParser) next(r *bufio.Reader) (sseEvent, error) {
	p.name, p.data = p.name[:0], p.data[:0]
	fields := false
	for {
		line, err := p.readLine(r)
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if !fields {
				continue
			}
			name := "message"
			if len(p.name) > 0 {
				name = string(p.name)
			}
			return sseEvent{name: name, data: p.data}, nil
		}
		if line[0] == ':' {
			return sseEvent{comment: strings.TrimSpace(string(line[1:]))}, nil
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			p.name = append(p.name[:0], value...)
			fields = true
		case "data":
			if len(p.data) > 0 {
				p.data = append(p.data, '\n')
			}
			if len(p.data)+len(value) > maxEventBytes {
				return sseEvent{}, errEventTooLarge
			}
			p.data = append(p.data, value...)
			fields = true
		case "id", "retry":
			fields = fields || field[0] == 'i'
		}
	}
}

// readLine returns one line without its line break ("\n", "\r\n").
func (p *eventParser) readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		p.line = append(p.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(p.line) > maxEventBytes {
				return nil, errEventTooLarge
			}
			line, err = r.ReadSlice('\n')
			p.line = append(p.line, line...)
		}
		line = p.line
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}
