package apiclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// Event is one Server-Sent Event of a client's stream.
type Event struct {
	// ID is the stream's last event id once this event arrived (SSE keeps
	// the previous id for an event without an id line).
	ID string
	// Name is the event type (api.EventSpeak, ...); "message" when the
	// event named none, as in the SSE grammar.
	Name string
	// Data is the event's data lines joined by "\n".
	Data []byte
}

// maxIDLen bounds an id kept from the stream; the gateway's are 20 digits,
// and the header it goes back in is capped at 64.
const maxIDLen = 64

// errTooLong marks a line longer than the decoder's limit.
var errTooLong = errors.New("sse line too long")

// Decoder reads Server-Sent Events from an untrusted stream as the WHATWG
// HTML standard ("Server-sent events", interpreting an event stream)
// describes, within bounds: lines end at CRLF, LF or CR; comments and
// unknown fields are ignored; an event whose data would exceed the size
// limit is skipped whole (and counted) instead of growing a buffer without
// end. It never panics on any input.
type Decoder struct {
	r       *bufio.Reader
	max     int
	line    []byte
	afterCR bool
	started bool

	lastID  string
	retry   time.Duration
	dropped uint64
	observe func(field, value string)
}

// NewDecoder returns a Decoder reading r, with events of at most maxEvent
// bytes of data, and lastID as the last event id so far (what a reconnect
// sent as Last-Event-ID).
func NewDecoder(r io.Reader, maxEvent int, lastID string) *Decoder {
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEventSize
	}
	return &Decoder{r: bufio.NewReaderSize(r, 4096), max: maxEvent, lastID: lastID}
}

// LastID is the last event id the stream set.
func (d *Decoder) LastID() string { return d.lastID }

// Retry is the last reconnection time the stream asked for (retry:), zero if
// none.
func (d *Decoder) Retry() time.Duration { return d.retry }

// Dropped counts events skipped for their size.
func (d *Decoder) Dropped() uint64 { return d.dropped }

// Observe has fn called, from Next, with every line read other than the
// blank lines that end events and the lines too long to keep: a comment as
// field "" and its text, a field as its name and value (one space after the
// colon removed), whether or not the decoder uses it. It shows what Next
// leaves out: the keepalive comments, the reason a server gives before it
// ends a stream, each retry hint as sent.
func (d *Decoder) Observe(fn func(field, value string)) { d.observe = fn }

// Next returns the next event, or the read error (io.EOF when the stream
// ended cleanly; an event cut off by the end is not returned).
func (d *Decoder) Next() (Event, error) {
	var (
		name    string
		data    []byte
		hasData bool
		skip    bool
	)
	for {
		line, err := d.readLine()
		if errors.Is(err, errTooLong) {
			// A field this long cannot be kept: drop the event it belongs to.
			skip = true
			continue
		}
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 { // dispatch
			if skip {
				d.dropped++
				name, data, hasData, skip = "", nil, false, false
				continue
			}
			if !hasData {
				name = ""
				continue
			}
			if name == "" {
				name = "message"
			}
			return Event{ID: d.lastID, Name: name, Data: data}, nil
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if d.observe != nil {
			d.observe(string(field), string(value))
		}
		if len(field) == 0 { // a comment
			continue
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if skip {
				continue
			}
			if len(data)+len(value)+1 > d.max {
				skip = true
				data = nil
				continue
			}
			if hasData {
				data = append(data, '\n')
			} else {
				data = make([]byte, 0, len(value))
			}
			data = append(data, value...)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 && len(value) <= maxIDLen {
				d.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 32); err == nil && allDigits(value) {
				d.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

// readLine returns the next line without its terminator (CRLF, LF or CR). A
// line longer than the limit is consumed and reported as errTooLong. It
// scans what the reader holds in bulk, and returns a line as soon as its
// terminator is in, without waiting for the byte after a CR.
func (d *Decoder) readLine() ([]byte, error) {
	d.line = d.line[:0]
	tooLong := false
	for {
		if d.afterCR {
			// The LF of a CRLF whose CR ended the previous line.
			b, err := d.r.ReadByte()
			if err != nil {
				return nil, err
			}
			d.afterCR = false
			if b != '\n' {
				_ = d.r.UnreadByte()
			}
			continue
		}
		if _, err := d.r.Peek(1); err != nil {
			return nil, err
		}
		if !d.started {
			d.started = true
			// One leading U+FEFF (EF BB BF) is ignored.
			if b, _ := d.r.Peek(1); b[0] == 0xEF {
				if bom, err := d.r.Peek(3); err == nil && bom[1] == 0xBB && bom[2] == 0xBF {
					_, _ = d.r.Discard(3)
					continue
				}
			}
		}
		buf, _ := d.r.Peek(d.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		chunk := buf
		if i >= 0 {
			chunk = buf[:i]
		}
		if room := d.max + 16 - len(d.line); len(chunk) > room { // room for the field name
			chunk, tooLong = chunk[:max(room, 0)], true
		}
		d.line = append(d.line, chunk...)
		if i < 0 {
			_, _ = d.r.Discard(len(buf))
			continue
		}
		d.afterCR = buf[i] == '\r'
		_, _ = d.r.Discard(i + 1)
		if tooLong {
			return nil, errTooLong
		}
		return d.line, nil
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
