package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// This file is the bus's hot path: every frame the gateway receives is
// checked and routed here, so it is read in one pass over its bytes instead
// of through encoding/json's reflection (several passes and a copy of every
// member). The grammar is RFC 8259's, exactly as encoding/json accepts it
// (invalid UTF-8 inside strings included, nesting up to 10000 levels), and
// members are matched by their exact (unescaped) names, the last one
// winning, as the assistant's Python peers read them (json.loads, then
// msg["type"]): not case-folded as encoding/json matches struct fields, so
// {"TYPE":...} is no type here either. The fuzz tests compare it with
// encoding/json decoding into maps on arbitrary input.

// maxNesting is encoding/json's nesting limit.
const maxNesting = 10000

// errNesting mirrors encoding/json's error for too deep a value.
var errNesting = errors.New("exceeded max depth")

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

// member is one member of a JSON object: its key (still quoted and escaped)
// and its value's bytes.
type member struct {
	key []byte // without the quotes, escapes as written
	esc bool   // key holds a backslash escape
	val []byte
}

// scanner validates JSON in one pass. At depth 1 of an object it reports
// each member to env, if set. ws records whether any insignificant
// whitespace was seen, i.e. whether the input is not already compact.
type scanner struct {
	b     []byte
	i     int
	depth int
	ws    bool
	env   *envelope // when set, told of the top-level object's members
}

func (s *scanner) fail(msg string) error { return &syntaxError{msg: msg, off: s.i} }

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.ws = true
			s.i++
		default:
			return
		}
	}
}

// document checks that b is exactly one JSON value, with optional
// whitespace around it.
func (s *scanner) document() error {
	s.skipSpace()
	if err := s.value(); err != nil {
		return err
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return s.fail("invalid character after top-level value")
	}
	return nil
}

func (s *scanner) value() error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of JSON input")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	default:
		return s.fail("invalid character looking for beginning of value")
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// ValidNumber reports whether s is exactly one JSON number (RFC 8259), as
// encoding/json's json.Number accepts it.
func ValidNumber(s string) bool {
	if s == "" {
		return false
	}
	sc := scanner{b: []byte(s)}
	return sc.number() == nil && sc.i == len(s)
}

func (s *scanner) number() error {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return s.fail("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			s.i = i
			return s.fail("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			s.i = i
			return s.fail("invalid number")
		}
	}
	s.i = i
	return nil
}

// str scans a string starting at its opening quote and reports whether it
// holds an escape.
func (s *scanner) str() (esc bool, err error) {
	b := s.b
	i := s.i + 1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = len(b)
				return esc, s.fail("unexpected end of JSON input")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					s.i = i
					return esc, s.fail("invalid escape in string")
				}
				i += 6
			default:
				s.i = i
				return esc, s.fail("invalid escape in string")
			}
		case c < 0x20:
			s.i = i
			return esc, s.fail("invalid control character in string")
		default:
			i++
		}
	}
	s.i = len(b)
	return esc, s.fail("unexpected end of JSON input")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) object() error {
	s.depth++
	if s.depth > maxNesting {
		return errNesting
	}
	s.i++ // {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail("invalid character looking for beginning of object key string")
		}
		k0 := s.i
		esc, err := s.str()
		if err != nil {
			return err
		}
		k1 := s.i
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("invalid character after object key")
		}
		s.i++
		s.skipSpace()
		v0 := s.i
		if err := s.value(); err != nil {
			return err
		}
		if s.depth == 1 && s.env != nil {
			s.env.member(member{key: s.b[k0+1 : k1-1], esc: esc, val: s.b[v0:s.i]})
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of JSON input")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipSpace()
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("invalid character after object key:value pair")
		}
	}
}

func (s *scanner) array() error {
	s.depth++
	if s.depth > maxNesting {
		return errNesting
	}
	s.i++ // [
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if err := s.value(); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of JSON input")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipSpace()
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("invalid character after array element")
		}
	}
}

// Member returns the value of obj's member name as a Python peer reads it
// (and encoding/json into a map): the last member whose key, unescaped, is
// exactly name; nil when there is none. obj is meant to be
// a valid JSON object, as the Data and Context of a parsed Frame are; on
// anything else Member returns nil or some value, and never panics. It lets
// a frame's readers pick a member without decoding the object again.
func Member(obj json.RawMessage, name string) json.RawMessage {
	var v []byte
	eachMember(obj, func(m member) {
		if m.keyIs(name) {
			v = m.val
		}
	})
	return v
}

// eachMember calls fn for every member of obj, a JSON object already known
// to be valid. It skips values without checking them again; on invalid
// input it stops early but never panics.
func eachMember(obj []byte, fn func(member)) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		k0 := i
		var esc bool
		i, esc = skipString(obj, i)
		k1 := i
		if k1-1 <= k0 || obj[k1-1] != '"' {
			return // unterminated: not valid JSON
		}
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return // no value: not valid JSON
		}
		i = skipSpace(obj, i+1)
		v0 := i
		i = skipValue(obj, i)
		fn(member{key: obj[k0+1 : k1-1], esc: esc, val: obj[v0:i]})
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipSpace(obj, i+1)
	}
}

// eachElement calls fn for every element of arr, a JSON array already known
// to be valid.
func eachElement(arr []byte, fn func([]byte)) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	i = skipSpace(arr, i+1)
	for i < len(arr) && arr[i] != ']' {
		v0 := i
		i = skipValue(arr, i)
		fn(arr[v0:i])
		i = skipSpace(arr, i)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i = skipSpace(arr, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the valid string starting at i, and
// whether it holds an escape.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '"':
			return i + 1, esc
		}
	}
	return len(b), esc
}

// skipValue returns the index after the valid value starting at i.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		i, _ = skipString(b, i)
		return i
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number or literal
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// keyIs reports whether a member's key, unescaped, is exactly field.
func (m member) keyIs(field string) bool {
	if !m.esc {
		return string(m.key) == field
	}
	var k string
	if json.Unmarshal(append(append([]byte{'"'}, m.key...), '"'), &k) != nil {
		return false
	}
	return k == field
}

// jsonString decodes a valid JSON value that is a string; ok is false for
// any other kind. Like encoding/json, it turns invalid UTF-8 into U+FFFD.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// appendCompact appends src, which must be valid JSON, without its
// insignificant whitespace.
func appendCompact(dst, src []byte) []byte {
	start := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			i, _ = skipString(src, i)
			i--
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}
