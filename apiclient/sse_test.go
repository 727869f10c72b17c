package apiclient

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func decodeAll(t testing.TB, in string, max int, lastID string) ([]Event, *Decoder) {
	t.Helper()
	d := NewDecoder(strings.NewReader(in), max, lastID)
	var out []Event
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, d
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, ev)
	}
}

func TestDecoder(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		lastID    string
		want      []Event
		wantLast  string
		wantRetry time.Duration
		dropped   uint64
	}{
		{name: "gateway opening", in: "retry: 2000\n\nid: 7\nevent: ready\ndata: {\"client_id\":\"k\"}\n\n",
			want: []Event{{ID: "7", Name: "ready", Data: []byte(`{"client_id":"k"}`)}}, wantLast: "7", wantRetry: 2 * time.Second},
		{name: "multi-line data joined by LF", in: "event: speak\ndata: a\ndata: b\n\n",
			want: []Event{{Name: "speak", Data: []byte("a\nb")}}},
		{name: "CRLF and CR line ends", in: "id: 1\r\nevent: x\r\ndata: one\r\n\r\nid: 2\revent: y\rdata: two\r\r",
			want: []Event{{ID: "1", Name: "x", Data: []byte("one")}, {ID: "2", Name: "y", Data: []byte("two")}}, wantLast: "2"},
		{name: "comments and unknown fields ignored", in: ": keepalive\nfoo: bar\ndata: x\n\n",
			want: []Event{{Name: "message", Data: []byte("x")}}},
		{name: "id persists to the next event", in: "id: 5\ndata: a\n\ndata: b\n\n", lastID: "4",
			want: []Event{{ID: "5", Name: "message", Data: []byte("a")}, {ID: "5", Name: "message", Data: []byte("b")}}, wantLast: "5"},
		{name: "resumed id kept when none comes", in: "data: a\n\n", lastID: "41",
			want: []Event{{ID: "41", Name: "message", Data: []byte("a")}}, wantLast: "41"},
		{name: "event without data not dispatched", in: "event: ping\n\ndata: x\n\n",
			want: []Event{{Name: "message", Data: []byte("x")}}},
		{name: "no space after colon", in: "event:speak\ndata:x\n\n", want: []Event{{Name: "speak", Data: []byte("x")}}},
		{name: "field without colon", in: "data\n\n", want: []Event{{Name: "message", Data: []byte("")}}},
		{name: "id with NUL ignored", in: "id: 3\x004\ndata: x\n\n", lastID: "2", want: []Event{{ID: "2", Name: "message", Data: []byte("x")}}, wantLast: "2"},
		{name: "bad retry ignored", in: "retry: soon\nretry: -5\ndata: x\n\n", want: []Event{{Name: "message", Data: []byte("x")}}},
		{name: "BOM skipped", in: "\xEF\xBB\xBFdata: x\n\n", want: []Event{{Name: "message", Data: []byte("x")}}},
		{name: "unterminated event not dispatched", in: "data: x\n", want: nil},
		{name: "oversized event skipped, next kept", in: "id: 1\nevent: message\ndata: " + strings.Repeat("a", 100) + "\n\nid: 2\nevent: speak\ndata: ok\n\n", max: 32,
			want: []Event{{ID: "2", Name: "speak", Data: []byte("ok")}}, wantLast: "2", dropped: 1},
		{name: "oversized across data lines", in: "data: " + strings.Repeat("a", 20) + "\ndata: " + strings.Repeat("b", 20) + "\n\ndata: ok\n\n", max: 32,
			want: []Event{{Name: "message", Data: []byte("ok")}}, dropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := decodeAll(t, tt.in, tt.max, tt.lastID)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %q, want %q", got, tt.want)
			}
			if d.LastID() != tt.wantLast {
				t.Errorf("last id %q, want %q", d.LastID(), tt.wantLast)
			}
			if d.Retry() != tt.wantRetry {
				t.Errorf("retry %v, want %v", d.Retry(), tt.wantRetry)
			}
			if d.Dropped() != tt.dropped {
				t.Errorf("dropped %d, want %d", d.Dropped(), tt.dropped)
			}
		})
	}
}

// FuzzDecoder: whatever a gateway (or anything posing as one) sends, the
// decoder neither panics nor returns more data than its limit.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"retry: 2000\n\nid: 7\nevent: ready\ndata: {}\n\n",
		"data: a\r\ndata: b\r\r\n",
		"\xEF\xBB\xBF: c\nid: \x00\n\n",
		"data: " + strings.Repeat("x", 80) + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(strings.NewReader(string(in)), 64, "")
		for range len(in) + 1 {
			ev, err := d.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > 64 {
				t.Fatalf("event data %d bytes over the limit", len(ev.Data))
			}
			if len(ev.ID) > maxIDLen {
				t.Fatalf("id %d bytes", len(ev.ID))
			}
		}
		t.Fatal("more events than input bytes")
	})
}

func BenchmarkDecoder(b *testing.B) {
	one := "id: 1795655311701100\nevent: speak\ndata: {\"utterance_id\":\"NRveQm1lQvzfdWrhbwb-vA\",\"utterance\":\"Why did the robot go on holiday?\",\"expect_response\":false,\"lang\":\"en-us\"}\n\n"
	in := strings.Repeat(one, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		d := NewDecoder(strings.NewReader(in), 0, "")
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
	}
}

// TestDecoderObserve: Observe sees the comments, the retry hints as sent and
// every field, in order, between the events Next returns.
func TestDecoderObserve(t *testing.T) {
	d := NewDecoder(strings.NewReader("retry: 2000\n\n: keepalive\nid: 1\nevent: speak\ndata: x\n\n:no space\nretry: soon\nfoo\n\n"), 0, "")
	var seen []string
	d.Observe(func(field, value string) { seen = append(seen, field+"="+value) })
	ev, err := d.Next()
	if err != nil || ev.Name != "speak" || string(ev.Data) != "x" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	want := []string{"retry=2000", "=keepalive", "id=1", "event=speak", "data=x"}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("observed %q before the event, want %q", seen, want)
	}
	if _, err := d.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want EOF", err)
	}
	want = append(want, "=no space", "retry=soon", "foo=")
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("observed %q, want %q", seen, want)
	}
}
