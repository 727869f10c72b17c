package busclient

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// FuzzReceive feeds untrusted bytes to the receive path (echo filter, parse,
// dispatch): it must never panic, deliver only frames with a type and the
// exact bytes received, and never deliver our own echo.
func FuzzReceive(f *testing.F) {
	for _, s := range []string{
		`{"type":"connected","data":{},"context":{"session":{"session_id":"default"}}}`,
		`{"type":"speak","data":{"utterance":"hi","target":"x"},"context":{"source":["skills"],"destination":"gateway:a"}}`,
		`{"type":"x","context":{"source":5,"destination":[1,"a",null],"session":{"session_id":7}}}`,
		`not json`, `[1]`, `{"data":{}}`, `{"type":"x","data":"s"}`, `{"type":""}`, `null`, ``,
	} {
		f.Add([]byte(s), false)
	}
	if paths, _ := filepath.Glob("../testdata/ovos-wire/*.jsonl"); len(paths) > 0 {
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				f.Add(bytes.Clone(sc.Bytes()), true)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, ours bool) {
		c, err := New(Config{URL: "ws://embedded/core"})
		if err != nil {
			t.Fatal(err)
		}
		var got []*api.Frame
		c.Subscribe(func(fr *api.Frame) { got = append(got, fr) })
		l := &link{echo: newEchoFilter(echoMaxEntries, echoTTL)}
		if ours {
			l.echo.add(raw, time.Now())
		}
		c.receive(l, raw)
		_, perr := busframe.Parse(raw)
		s := c.Stats()
		switch {
		case ours:
			if len(got) != 0 || s.Echoes != 1 {
				t.Fatalf("own echo delivered (%d) or not counted (%+v)", len(got), s)
			}
		case perr != nil:
			if len(got) != 0 || s.Dropped != 1 {
				t.Fatalf("bad frame delivered (%d) or not counted (%+v)", len(got), s)
			}
		default:
			if len(got) != 1 || got[0].Type == "" || !bytes.Equal(got[0].Raw, raw) {
				t.Fatalf("good frame not delivered as received: %v", got)
			}
		}
		if s.FramesIn != 1 {
			t.Fatalf("FramesIn = %d", s.FramesIn)
		}
		if h := logHead(raw); len(h) > 3*logPayloadMax {
			t.Fatalf("log head of %d bytes", len(h))
		}
	})
}

func TestLogHead(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"short", "abc", "abc"},
		{"long", string(bytes.Repeat([]byte("x"), 500)), string(bytes.Repeat([]byte("x"), logPayloadMax))},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"cut rune", string(bytes.Repeat([]byte("x"), logPayloadMax-1)) + "é", string(bytes.Repeat([]byte("x"), logPayloadMax-1)) + "\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logHead([]byte(tc.in)); got != tc.want {
				t.Fatalf("logHead = %q", got)
			}
		})
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max time.Duration
		base     time.Duration
	}{
		{"at min", time.Second, time.Minute, time.Second},
		{"middle", time.Second, time.Minute, 8 * time.Second},
		{"at max", time.Second, time.Minute, time.Minute},
		{"min equals max", time.Second, time.Second, time.Second},
		{"tiny", time.Nanosecond, time.Nanosecond, time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{URL: "ws://h/core", MinBackoff: tc.min, MaxBackoff: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			lo := max(time.Duration(float64(tc.base)*(1-backoffJitter)), tc.min)
			hi := min(time.Duration(float64(tc.base)*(1+backoffJitter)), tc.max)
			for range 1000 {
				if d := c.jitter(tc.base); d < lo || d > hi {
					t.Fatalf("jitter(%v) = %v, want within [%v, %v]", tc.base, d, lo, hi)
				}
			}
		})
	}
}

func TestURLScrub(t *testing.T) {
	u, err := parseBusURL("wss://alice:hunter22@bus.example:8181/core#frag")
	if err != nil {
		t.Fatal(err)
	}
	if u.public != "wss://bus.example:8181/core" || u.dial != u.public {
		t.Fatalf("public %q dial %q", u.public, u.dial)
	}
	if got := u.header.Get("Authorization"); got != "Basic YWxpY2U6aHVudGVyMjI=" {
		t.Fatalf("Authorization %q", got)
	}
	if s := u.scrub(errString("proxy said alice:hunter22 and hunter22")); bytes.Contains([]byte(s), []byte("hunter22")) || bytes.Contains([]byte(s), []byte("alice")) {
		t.Fatalf("scrub left a secret: %s", s)
	}
	if _, err := parseBusURL("ws://alice:hunter22@[::1/core"); err == nil || bytes.Contains([]byte(err.Error()), []byte("hunter22")) {
		t.Fatalf("bad URL error %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
