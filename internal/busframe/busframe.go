// Package busframe decodes the messagebus's frames: the envelope of a
// websocket text frame, the routing facts of its context, a member of its
// data or context by name, and the frame on one line.
//
// It reads JSON with jsontext (github.com/go-json-experiment/json, the
// syntactic layer of Go's encoding/json/v2), configured to accept what
// encoding/json accepts: RFC 8259, invalid UTF-8 inside strings (read as
// U+FFFD), duplicate member names, nesting up to 10000 levels. Members are
// matched by their exact (unescaped) names, the last one winning, as the
// assistant's Python peers read them (json.loads, then msg["type"]): not
// case-folded as encoding/json matches struct fields, so {"TYPE":...} has
// no type here either. The tests compare every decision with encoding/json
// decoding into maps, on the recorded OVOS frames and on fuzzed input.
package busframe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ovosgw/gateway/api"
)

// asEncodingJSON makes jsontext accept what encoding/json accepts: invalid
// UTF-8 (and lone surrogate escapes) inside strings, duplicate names.
var asEncodingJSON = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// reader is a pooled decoder over a byte slice: jsontext reads a
// bytes.Buffer in place, without copying it.
type reader struct {
	buf bytes.Buffer
	dec jsontext.Decoder
	src []byte
}

var readers = sync.Pool{New: func() any { return new(reader) }}

func newReader(b []byte) *reader {
	r := readers.Get().(*reader)
	r.buf = *bytes.NewBuffer(b)
	r.src = b
	r.dec.Reset(&r.buf, asEncodingJSON...)
	return r
}

func (r *reader) free() {
	r.buf, r.src = bytes.Buffer{}, nil
	r.dec.Reset(&r.buf) // drop the reference to the input
	readers.Put(r)
}

// value reads the next value and returns its bytes in the input (so that
// they share its memory, not the decoder's).
func (r *reader) value() ([]byte, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	end := int(r.dec.InputOffset())
	return r.src[end-len(v) : end : end], nil
}

// name reads the next member name and reports whether it is, unescaped,
// exactly one of names; it returns its index there, or -1.
func (r *reader) name(names ...string) (int, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return -1, err
	}
	return nameIndex(v, names), nil
}

// nameIndex returns the index in names of the quoted name q, unescaped, or
// -1 when it is none of them.
func nameIndex(q []byte, names []string) int {
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		var buf [32]byte
		u, err := jsontext.AppendUnquote(buf[:0], q)
		if err != nil {
			return -1 // invalid UTF-8: U+FFFD is in no name we look for
		}
		inner = u
	}
	for i, n := range names {
		if string(inner) == n {
			return i
		}
	}
	return -1
}

// end checks that the input holds nothing after the value read.
func (r *reader) end() error {
	if _, err := r.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("invalid character after top-level value")
		}
		return err
	}
	return nil
}

// Parse decodes one websocket text frame. It fails, without panicking, on
// anything that is not a JSON object with a non-empty string type and
// object (or missing/null) data and context; odd member types inside the
// context (a numeric session id, say) are read as absent instead. It
// decides as a Python peer does: member names are exact ({"TYPE":"speak"}
// has no type), the last duplicate wins. The frame's Data and Context share
// raw's bytes.
func Parse(raw []byte) (*api.Frame, error) {
	r := newReader(raw)
	defer r.free()
	var (
		typ, data, ctx []byte
		typeBad        bool // a "type" member was neither a string nor null
		route          api.Route
	)
	tok, err := r.dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
	}
	if tok.Kind() != '{' {
		return nil, errors.New("bus frame is not a JSON envelope: not an object")
	}
	for r.dec.PeekKind() == '"' {
		i, err := r.name("type", "data", "context")
		if err != nil {
			return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
		}
		switch i {
		case 0:
			typ, err = r.value()
			if err == nil && typ[0] != '"' && typ[0] != 'n' {
				typeBad = true // any type member, not only the last
			}
		case 1:
			data, err = r.value()
		case 2:
			start := r.dec.InputOffset()
			route = api.Route{} // the last context wins
			if r.dec.PeekKind() == '{' {
				err = r.context(&route)
			} else {
				_, err = r.dec.ReadValue()
			}
			if err == nil {
				end := r.dec.InputOffset()
				ctx = bytes.TrimLeft(raw[start:end:end], " \t\r\n:")
			}
		default:
			err = r.dec.SkipValue()
		}
		if err != nil {
			return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
		}
	}
	if _, err := r.dec.ReadToken(); err != nil { // }
		return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
	}
	if typeBad {
		return nil, errors.New("bus frame is not a JSON envelope: type is not a string")
	}
	t, _ := jsonString(typ)
	if t == "" {
		return nil, errors.New("bus frame has no type")
	}
	f := &api.Frame{Message: api.Message{Type: t}, Raw: raw}
	if f.Data, err = objectOrEmpty(data); err != nil {
		return nil, fmt.Errorf("bus frame %q data: %w", f.Type, err)
	}
	if f.Context, err = objectOrEmpty(ctx); err != nil {
		return nil, fmt.Errorf("bus frame %q context: %w", f.Type, err)
	}
	if len(ctx) == 0 || ctx[0] != '{' {
		route = api.Route{}
	}
	// data can be large: it is searched only when it holds the key as
	// written, then its members are matched exactly.
	if bytes.Contains(f.Data, []byte(`"target"`)) {
		route.Target, _ = jsonString(Member(f.Data, "target"))
	}
	f.Route = route
	return f, nil
}

// context reads a context object, setting the routing facts it holds.
func (r *reader) context(route *api.Route) error {
	if _, err := r.dec.ReadToken(); err != nil { // {
		return err
	}
	for r.dec.PeekKind() == '"' {
		i, err := r.name("source", "destination", "session", "utterance_id")
		if err != nil {
			return err
		}
		switch i {
		case 0:
			route.Source, err = r.names()
		case 1:
			route.Destination, err = r.names()
		case 2:
			route.SessionID = ""
			if r.dec.PeekKind() == '{' {
				err = r.session(route)
			} else {
				err = r.dec.SkipValue()
			}
		case 3:
			var v []byte
			v, err = r.value()
			route.UtteranceID, _ = jsonString(v)
		default:
			err = r.dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken() // }
	return err
}

// session reads a session object for its session_id.
func (r *reader) session(route *api.Route) error {
	if _, err := r.dec.ReadToken(); err != nil { // {
		return err
	}
	for r.dec.PeekKind() == '"' {
		i, err := r.name("session_id")
		if err != nil {
			return err
		}
		if i == 0 {
			var v []byte
			v, err = r.value()
			route.SessionID, _ = jsonString(v)
		} else {
			err = r.dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken() // }
	return err
}

// names reads a context's source or destination: a string, the strings of
// a list (other members skipped), or nothing (null, or a number or an
// object where a name belongs).
func (r *reader) names() (api.Names, error) {
	switch r.dec.PeekKind() {
	case '"':
		v, err := r.value()
		s, _ := jsonString(v)
		return api.Names{s}, err
	case '[':
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, err
		}
		out := make(api.Names, 0, 1)
		for k := r.dec.PeekKind(); k != ']' && k != 0; k = r.dec.PeekKind() {
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			if s, ok := jsonString(v); ok {
				out = append(out, s)
			}
		}
		_, err := r.dec.ReadToken() // ]
		return out, err
	default:
		return nil, r.dec.SkipValue()
	}
}

func objectOrEmpty(raw []byte) (json.RawMessage, error) {
	if len(raw) == 0 || raw[0] == 'n' {
		return json.RawMessage("{}"), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	return raw, nil
}

// jsonString decodes a valid JSON value that is a string; ok is false for
// any other kind. Like encoding/json, it reads invalid UTF-8 as U+FFFD.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	u, _ := jsontext.AppendUnquote(nil, v) // an error only says U+FFFD stands in for invalid UTF-8
	return string(u), true
}

// Member returns the value of obj's member name as a Python peer reads it
// (and encoding/json into a map): the last member whose name, unescaped, is
// exactly name; nil when there is none. obj is meant to be a valid JSON
// object, as the Data and Context of a parsed frame are; on anything else
// Member returns nil or some value, and never panics. It lets a frame's
// readers pick a member without decoding the object again.
func Member(obj json.RawMessage, name string) json.RawMessage {
	r := newReader(obj)
	defer r.free()
	if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	var found []byte
	for r.dec.PeekKind() == '"' {
		i, err := r.name(name)
		if err != nil {
			return found
		}
		if i == 0 {
			v, err := r.value()
			if err != nil {
				return found
			}
			found = v
		} else if r.dec.SkipValue() != nil {
			return found
		}
	}
	return found
}

// Compact returns the frame as the bus carried it, without insignificant
// whitespace (so on one line, an SSE data line): f.Raw itself when it has
// none (do not modify it). f.Raw is meant to be valid JSON, as Parse leaves
// it; on anything else Compact returns some bytes and never panics.
//
// It is the one piece of JSON this package reads by hand: a loop that
// skips strings and drops the whitespace between them. jsontext's
// AppendFormat does the same with a full check and a copy of every frame,
// about 2.5 µs a recorded OVOS frame against 0.6–0.9 µs and no copy here
// when the frame is already compact; the bridge compacts every frame it
// routes to a client (docs/PERFORMANCE.md, "Decoding bus frames").
func Compact(f *api.Frame) []byte {
	raw := f.Raw
	var out []byte // nil until the first whitespace outside a string
	start := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			i = stringEnd(raw, i) - 1
		case ' ', '\t', '\n', '\r':
			if out == nil {
				out = make([]byte, 0, len(raw))
			}
			out = append(out, raw[start:i]...)
			start = i + 1
		}
	}
	if out == nil {
		return raw
	}
	return append(out, raw[start:]...)
}

// stringEnd returns the index after the string whose opening quote is at
// i, or len(b) when it is not closed.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return len(b)
		}
		i += 1 + j
		// The quote closes the string unless an odd number of backslashes
		// stands before it (the opening quote stops the count).
		n := 0
		for k := i - 1; b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
}
