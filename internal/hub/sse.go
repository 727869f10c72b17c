package hub

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidEventName is returned by EncodeEvent for an event name that is
// empty, not UTF-8, or holds a control character: a line break there would let
// the name inject fields of its own into the stream (WHATWG HTML, "Server-sent
// events", event stream interpretation; the same check as Mercure's event.go).
var ErrInvalidEventName = errors.New("hub: invalid SSE event name")

// idHeadroom is the room kept at the front of an encoded frame for its
// "id: N\n" line, N being at most 20 decimal digits (a uint64). Publish
// encodes the event outside the topic lock and writes the id into this room
// once the id is known, so one frame is one allocation.
const idHeadroom = len("id: ") + 20 + len("\n")

// EncodeEvent encodes one Server-Sent Event: an `id:` line (left out when id
// is 0, so that the browser's last event id stays what it was), an `event:`
// line and the data as one `data:` line per line of data, the data being split
// on "\r\n", "\r" and "\n" alike, the three line breaks of the SSE grammar.
// A line break inside data can therefore never start a field of its own
// (no SSE injection), and the receiver gets the data back with every line
// break turned into "\n". The name must be valid UTF-8 without control
// characters, else ErrInvalidEventName.
func EncodeEvent(id uint64, name string, data []byte) ([]byte, error) {
	buf, err := encodeBody(name, data)
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return buf[idHeadroom:len(buf):len(buf)], nil
	}
	return stampID(buf, id), nil
}

// encodeBody encodes the event and data lines of a frame after idHeadroom
// unused bytes.
func encodeBody(name string, data []byte) ([]byte, error) {
	if !validEventName(name) {
		return nil, ErrInvalidEventName
	}
	lines := 1
	for _, c := range data {
		if c == '\n' || c == '\r' {
			lines++ // an upper bound: "\r\n" counts twice
		}
	}
	size := idHeadroom + len("event: ") + len(name) + 1 + len(data) + lines*len("data: \n") + 1
	buf := make([]byte, idHeadroom, size)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, '\n')
	for {
		i := indexLineBreak(data)
		if i < 0 {
			buf = appendDataLine(buf, data)
			break
		}
		buf = appendDataLine(buf, data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(buf, '\n'), nil
}

// stampID writes "id: N\n" at the end of buf's headroom and returns the frame
// that starts there. Its capacity is its length, so that nobody appending to a
// frame shared by several subscribers can write into another's bytes.
func stampID(buf []byte, id uint64) []byte {
	var d [20]byte
	digits := strconv.AppendUint(d[:0], id, 10)
	start := idHeadroom - len("id: ") - len(digits) - 1
	copy(buf[start:], "id: ")
	copy(buf[start+len("id: "):], digits)
	buf[idHeadroom-1] = '\n'
	return buf[start:len(buf):len(buf)]
}

func appendDataLine(buf, line []byte) []byte {
	buf = append(buf, "data: "...)
	buf = append(buf, line...)
	return append(buf, '\n')
}

func indexLineBreak(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

func validEventName(name string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// EncodeComment encodes an SSE comment, ": text\n\n", used as the opening line
// and the idle heartbeat. Control characters (line breaks among them) are
// removed, so a comment stays a comment whatever the text.
func EncodeComment(text string) []byte {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, text)
	buf := make([]byte, 0, len(": \n\n")+len(text))
	buf = append(buf, ": "...)
	buf = append(buf, text...)
	return append(buf, "\n\n"...)
}

// EncodeRetry encodes an SSE reconnection-time hint, "retry: ms\n\n", telling
// an EventSource how long to wait before reconnecting. A negative duration is
// sent as 0.
func EncodeRetry(d time.Duration) []byte {
	ms := max(d.Milliseconds(), 0)
	buf := make([]byte, 0, len("retry: \n\n")+20)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, ms, 10)
	return append(buf, "\n\n"...)
}

// ParseEventID parses a Last-Event-ID as this hub writes event ids: the
// canonical decimal form of a uint64 (digits only, no sign, no leading zero
// unless the id is "0"). Anything else is not an id of ours.
func ParseEventID(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
