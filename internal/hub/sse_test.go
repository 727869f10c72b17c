package hub

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/apiclient"
)

// sseEvent is one event as an EventSource dispatches it.
type sseEvent struct {
	ID    string // the last event id after this event
	HasID bool   // an id: field came with this event
	Name  string
	Data  string
}

// sseStream is what parseSSE found in a stream.
type sseStream struct {
	Events   []sseEvent
	Fields   []string // every field name seen, in order
	Comments []string
	Retry    []string
}

// parseSSE reads back what the encoders write with the decoder clients use
// (apiclient's, which follows the WHATWG HTML "event stream interpretation"
// steps), seeing every field and comment through its Observe.
func parseSSE(tb testing.TB, stream []byte) sseStream {
	tb.Helper()
	var (
		out   sseStream
		hasID bool
	)
	d := apiclient.NewDecoder(bytes.NewReader(stream), len(stream)+1, "")
	d.Observe(func(field, value string) {
		switch field {
		case "":
			out.Comments = append(out.Comments, value)
			return
		case "id":
			hasID = hasID || !strings.Contains(value, "\x00")
		case "retry":
			out.Retry = append(out.Retry, value)
		}
		out.Fields = append(out.Fields, field)
	})
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("decoding %q: %v", stream, err)
		}
		out.Events = append(out.Events, sseEvent{ID: ev.ID, HasID: hasID, Name: ev.Name, Data: string(ev.Data)})
		hasID = false
	}
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name   string
		id     uint64
		event  string
		data   string
		want   string
		wantEv sseEvent
	}{
		{
			name: "json object", id: 42, event: "speak", data: `{"utterance":"hi"}`,
			want:   "id: 42\nevent: speak\ndata: {\"utterance\":\"hi\"}\n\n",
			wantEv: sseEvent{ID: "42", HasID: true, Name: "speak", Data: `{"utterance":"hi"}`},
		},
		{
			name: "no id when zero", id: 0, event: "gap", data: `{}`,
			want:   "event: gap\ndata: {}\n\n",
			wantEv: sseEvent{Name: "gap", Data: "{}"},
		},
		{
			name: "largest id", id: 18446744073709551615, event: "done", data: `{}`,
			want:   "id: 18446744073709551615\nevent: done\ndata: {}\n\n",
			wantEv: sseEvent{ID: "18446744073709551615", HasID: true, Name: "done", Data: "{}"},
		},
		{
			name: "empty data is one empty data line", id: 1, event: "message", data: "",
			want:   "id: 1\nevent: message\ndata: \n\n",
			wantEv: sseEvent{ID: "1", HasID: true, Name: "message", Data: ""},
		},
		{
			name: "LF injection stays data", id: 7, event: "message", data: "a\nid: 999\nevent: ready\n\ndata: x",
			want:   "id: 7\nevent: message\ndata: a\ndata: id: 999\ndata: event: ready\ndata: \ndata: data: x\n\n",
			wantEv: sseEvent{ID: "7", HasID: true, Name: "message", Data: "a\nid: 999\nevent: ready\n\ndata: x"},
		},
		{
			name: "CR injection stays data", id: 7, event: "message", data: "a\rretry: 1\r\rb",
			want:   "id: 7\nevent: message\ndata: a\ndata: retry: 1\ndata: \ndata: b\n\n",
			wantEv: sseEvent{ID: "7", HasID: true, Name: "message", Data: "a\nretry: 1\n\nb"},
		},
		{
			name: "CRLF is one line break", id: 7, event: "message", data: "a\r\nb\r\n",
			want:   "id: 7\nevent: message\ndata: a\ndata: b\ndata: \n\n",
			wantEv: sseEvent{ID: "7", HasID: true, Name: "message", Data: "a\nb\n"},
		},
		{
			name: "leading space kept", id: 3, event: "message", data: " x",
			want:   "id: 3\nevent: message\ndata:  x\n\n",
			wantEv: sseEvent{ID: "3", HasID: true, Name: "message", Data: " x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeEvent(tt.id, tt.event, []byte(tt.data))
			if err != nil {
				t.Fatalf("EncodeEvent: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("EncodeEvent = %q, want %q", got, tt.want)
			}
			if len(got) != cap(got) {
				t.Errorf("len %d != cap %d: appending could write into a shared frame", len(got), cap(got))
			}
			s := parseSSE(t, got)
			if len(s.Events) != 1 || s.Events[0] != tt.wantEv {
				t.Fatalf("parsed %+v, want one %+v", s.Events, tt.wantEv)
			}
		})
	}
}

func TestEncodeEventRefusesBadNames(t *testing.T) {
	for _, name := range []string{
		"", "speak\n", "a\rb", "a\r\nid: 1", "nul\x00", "tab\t", "del\x7f",
		"c1\u0085", "bad\xffutf8",
	} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			got, err := EncodeEvent(1, name, []byte("{}"))
			if !errors.Is(err, ErrInvalidEventName) || got != nil {
				t.Fatalf("EncodeEvent(%q) = %q, %v; want nil, ErrInvalidEventName", name, got, err)
			}
		})
	}
}

func TestEncodeComment(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"plain", "ok", ": ok\n\n"},
		{"empty", "", ": \n\n"},
		{"line breaks removed", "a\nevent: x\r\ndata: y\rz", ": aevent: xdata: yz\n\n"},
		{"controls removed", "\x00b\x7fc\u0085d\te", ": bcde\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeComment(tt.text)
			if string(got) != tt.want {
				t.Fatalf("EncodeComment(%q) = %q, want %q", tt.text, got, tt.want)
			}
			s := parseSSE(t, got)
			if len(s.Fields) != 0 || len(s.Events) != 0 || len(s.Comments) != 1 {
				t.Fatalf("parsed %+v, want one comment only", s)
			}
		})
	}
}

func TestEncodeRetry(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 3 * time.Second, "retry: 3000\n\n"},
		{"sub-millisecond truncates", 1500 * time.Microsecond, "retry: 1\n\n"},
		{"zero", 0, "retry: 0\n\n"},
		{"negative is zero", -time.Second, "retry: 0\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeRetry(tt.d); string(got) != tt.want {
				t.Fatalf("EncodeRetry(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestParseEventID(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"1719000000000001", 1719000000000001, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"18446744073709551616", 0, false}, // overflows
		{"", 0, false},
		{"01", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"１", 0, false}, // a full-width digit
		{"123456789012345678901", 0, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, ok := ParseEventID(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ParseEventID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add(uint64(1), "speak", []byte(`{"a":1}`))
	f.Add(uint64(0), "gap", []byte(""))
	f.Add(uint64(9), "message", []byte("a\r\nid: 1\revent: x\n\ndata: y\r"))
	f.Add(uint64(2), "x\ny", []byte("z"))
	f.Add(uint64(3), " sp", []byte("\xff\x00"))
	f.Fuzz(func(t *testing.T, id uint64, name string, data []byte) {
		got, err := EncodeEvent(id, name, data)
		valid := name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0
		if err != nil {
			if valid {
				t.Fatalf("EncodeEvent refused valid name %q: %v", name, err)
			}
			return
		}
		if !valid {
			t.Fatalf("EncodeEvent accepted invalid name %q", name)
		}
		if !bytes.HasSuffix(got, []byte("\n\n")) {
			t.Fatalf("frame %q does not end with a blank line", got)
		}
		s := parseSSE(t, got)
		if len(s.Events) != 1 || len(s.Comments) != 0 || len(s.Retry) != 0 {
			t.Fatalf("frame %q parsed as %+v, want exactly one event", got, s)
		}
		ids, events := 0, 0
		for _, field := range s.Fields {
			switch field {
			case "id":
				ids++
			case "event":
				events++
			case "data":
			default:
				t.Fatalf("frame %q carries injected field %q", got, field)
			}
		}
		wantIDs := 1
		if id == 0 {
			wantIDs = 0
		}
		if ids != wantIDs || events != 1 {
			t.Fatalf("frame %q has %d id and %d event fields", got, ids, events)
		}
		ev := s.Events[0]
		if ev.Name != name {
			t.Fatalf("event name %q, want %q", ev.Name, name)
		}
		if id != 0 && ev.ID != strconv.FormatUint(id, 10) {
			t.Fatalf("event id %q, want %d", ev.ID, id)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if ev.Data != want {
			t.Fatalf("event data %q, want %q", ev.Data, want)
		}
	})
}

func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"0", "1", "007", "18446744073709551615", "18446744073709551616", "-1", " 1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseEventID(s)
		if !ok {
			if v != 0 {
				t.Fatalf("ParseEventID(%q) = %d with ok false", s, v)
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil && strconv.FormatUint(u, 10) == s {
				t.Fatalf("ParseEventID refused canonical id %q", s)
			}
			return
		}
		if strconv.FormatUint(v, 10) != s {
			t.Fatalf("ParseEventID(%q) = %d, which is not its canonical form", s, v)
		}
		if back, ok := ParseEventID(strconv.FormatUint(v, 10)); !ok || back != v {
			t.Fatalf("round trip of %d gave %d, %v", v, back, ok)
		}
	})
}
