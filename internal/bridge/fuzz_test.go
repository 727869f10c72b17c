package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// checkEvents fails unless every published event is one line of JSON with a
// known name.
func checkEvents(t testing.TB, evs []pubEvent) {
	t.Helper()
	for _, e := range evs {
		switch e.ev.Name {
		case api.EventSpeak, api.EventDone, api.EventMessage:
		default:
			t.Fatalf("event name %q", e.ev.Name)
		}
		if !json.Valid(e.ev.Data) || bytes.ContainsAny(e.ev.Data, "\r\n") || e.client == "" {
			t.Fatalf("event %s for %q: not one line of JSON", e.ev.Data, e.client)
		}
	}
}

// TestOddFrames: what a hostile or broken bus may send never panics, and what
// gets through is well formed.
func TestOddFrames(t *testing.T) {
	huge := `{"destination":"gateway:a","session":{"session_id":"s","blob":"` + strings.Repeat("x", 1<<20) + `","deep":` +
		strings.Repeat(`[`, 500) + strings.Repeat(`]`, 500) + `}}`
	cases := []struct {
		name   string
		raw    string
		events int
	}{
		{"numbers for strings", `{"type":"speak","data":{"utterance":5,"expect_response":"yes","lang":7},"context":{"destination":"gateway:a","session":{"session_id":9},"utterance_id":3}}`, 1},
		{"destination object", `{"type":"x","data":{},"context":{"destination":{"a":1},"source":3}}`, 0},
		{"destination mixed list", `{"type":"x","data":{},"context":{"destination":[1,null,"gateway:a",{"x":[]}]}}`, 1},
		{"session a string", `{"type":"x","data":{},"context":{"session":"s"}}`, 0},
		{"session id null", `{"type":"ovos.utterance.handled","data":{},"context":{"destination":"gateway:a","session":{"session_id":null}}}`, 1},
		{"end signal, utterance id a number", `{"type":"complete_intent_failure","data":{},"context":{"source":"gateway:a","utterance_id":12}}`, 1},
		{"speak, data utterance null", `{"type":"speak","data":{"utterance":null},"context":{"destination":"gateway:a","utterance_id":"nope"}}`, 1},
		{"speak, empty data", `{"type":"speak","context":{"destination":["gateway:a"]}}`, 1},
		{"target an object", `{"type":"speak","data":{"target":{"id":"a"}},"context":{}}`, 0},
		{"empty gateway name", `{"type":"x","data":{},"context":{"destination":"gateway:"}}`, 0},
		{"huge context", `{"type":"speak","data":{"utterance":"big"},"context":` + huge + `}`, 1},
		{"unicode and escapes", `{"type":"x\u2028y","data":{"s":"\u0000\ud800"},"context":{"destination":"gateway:a"}}`, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _, pub := newBridge(t, Config{})
			send(t, b, "a", "s", "x", true)
			f, err := busframe.Parse([]byte(tc.raw))
			if err != nil {
				t.Fatalf("busframe.Parse: %v", err)
			}
			b.Dispatch(f)
			b.Dispatch(nil)
			evs := pub.all()
			checkEvents(t, evs)
			if len(evs) != tc.events {
				t.Errorf("%d events, want %d: %v", len(evs), tc.events, evs)
			}
		})
	}
}

// FuzzDispatch: arbitrary bytes from the bus, through busframe.Parse and
// Dispatch, never panic and only ever publish well-formed events.
func FuzzDispatch(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.jsonl"))
	for _, file := range files {
		for _, l := range loadFixture(f, filepath.Base(file)) {
			f.Add([]byte(rewrite(l.Frame, "a", "s", "")))
		}
	}
	f.Add([]byte(`{"type":"speak","data":{"target":"a","utterance":"x"}}`))
	f.Add([]byte(`{"type":"complete_intent_failure","context":{"source":["gateway:a"]}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		bus, pub := &fakeBus{}, &recPub{}
		b, err := New(Config{Resolve: func(n string) (string, bool) { return n, len(n) == 1 }}, bus, pub)
		if err != nil {
			t.Fatal(err)
		}
		defer b.LinkDown() // stops the timers
		send(t, b, "a", "s", "x", true)
		fr, err := busframe.Parse(raw)
		if err != nil {
			return
		}
		b.Dispatch(fr)
		checkEvents(t, pub.all())
	})
}

// discardPub counts what would be published.
type discardPub struct{ n uint64 }

func (p *discardPub) Publish(string, api.Event) uint64 { p.n++; return p.n }

// BenchmarkDispatchSpeak routes the real fixture speak frame (1.8 KB, an
// expanded OVOS session) with 10 and 10,000 known clients and sessions: the
// cost must not grow with them.
func BenchmarkDispatchSpeak(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(fixtureDir, "intent-handled.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var speak json.RawMessage
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var l fixtureLine
		if json.Unmarshal(line, &l) == nil && bytes.Contains(l.Frame, []byte(`"type":"speak"`)) {
			speak = l.Frame
		}
	}
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			pub := &discardPub{}
			br, err := New(Config{}, &fakeBus{}, pub)
			if err != nil {
				b.Fatal(err)
			}
			defer br.LinkDown()
			var target *Pending
			for i := range n {
				p := send(b, br, fmt.Sprintf("client-%d", i), fmt.Sprintf("sess-%d", i), "hello there", false)
				if i == n/2 {
					target = p
				}
			}
			f, err := busframe.Parse([]byte(rewrite(speak, target.clientID, target.sessionID, target.ID())))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				br.Dispatch(f)
			}
			b.StopTimer()
			if pub.n == 0 {
				b.Fatal("nothing published")
			}
		})
	}
}
