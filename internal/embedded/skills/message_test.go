package skills

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// fixtureLine is one line of a real OVOS wire transcript (the repository's
// testdata/ovos-wire).
type fixtureLine struct {
	Dir   string          `json:"dir"`
	MS    int             `json:"ms"`
	Frame json.RawMessage `json:"frame"`
}

func loadFixture(tb testing.TB, name string) []fixtureLine {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "testdata", "ovos-wire", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var lines []fixtureLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l fixtureLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(lines) == 0 {
		tb.Fatalf("%s: empty fixture", name)
	}
	return lines
}

func fixtureNames(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "ovos-wire", "*.jsonl"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// mustMessage parses a raw frame as the bus client would and decodes it.
func mustMessage(tb testing.TB, raw []byte) *message {
	tb.Helper()
	f, err := busframe.Parse(raw)
	if err != nil {
		tb.Fatalf("busframe.Parse(%s): %v", raw, err)
	}
	m, err := decodeMessage(f.Message)
	if err != nil {
		tb.Fatalf("decodeMessage(%s): %v", raw, err)
	}
	return m
}

// jsonNorm turns any JSON-able value into what decoding its JSON with
// UseNumber gives, so values built in Go and values decoded compare equal.
func jsonNorm(tb testing.TB, v any) any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %#v: %v", v, err)
	}
	return jsonDecode(tb, b)
}

func jsonDecode(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func jsonEqual(tb testing.TB, a, b any) bool {
	tb.Helper()
	return reflect.DeepEqual(jsonNorm(tb, a), jsonNorm(tb, b))
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestReplyMatchesFixtures builds, from the frame we sent, the replies the
// real assistant sent back, and checks that source, destination and every
// context member we sent come back exactly as on the wire.
func TestReplyMatchesFixtures(t *testing.T) {
	for _, name := range []string{"intent-handled.jsonl", "intent-failure.jsonl", "intent-get-adapt.jsonl", "fallback-handled.jsonl"} {
		t.Run(name, func(t *testing.T) {
			lines := loadFixture(t, name)
			sent := mustMessage(t, lines[0].Frame)
			replies := 0
			for _, l := range lines[1:] {
				got := mustMessage(t, l.Frame)
				if !reflect.DeepEqual(got.Context[ctxDestination], "go-gateway") {
					continue // the connected frame, our echo, forwards
				}
				replies++
				r := sent.reply(got.Type, got.Data)
				for _, k := range []string{ctxLang, ctxSkillID} {
					if v, ok := got.Context[k]; ok {
						r.withContext(k, v)
					}
				}
				for _, k := range []string{ctxSource, ctxDestination, ctxLang, ctxSkillID} {
					if !jsonEqual(t, r.Context[k], got.Context[k]) {
						t.Errorf("%s: context.%s = %s, wire has %s", got.Type, k, mustJSON(t, r.Context[k]), mustJSON(t, got.Context[k]))
					}
				}
				if got.sessionID() != sent.session()[sessSessionID] && sent.session() != nil {
					t.Errorf("%s: session id %q on the wire, sent %v", got.Type, got.sessionID(), sent.session()[sessSessionID])
				}
				for k, v := range sent.Context {
					if k == ctxSource || k == ctxDestination || k == ctxSession {
						continue
					}
					if !jsonEqual(t, r.Context[k], v) {
						t.Errorf("%s: context.%s not carried through", got.Type, k)
					}
				}
				if !jsonEqual(t, r.Data, got.Data) {
					t.Errorf("%s: data changed by reply", got.Type)
				}
			}
			if replies == 0 {
				t.Fatal("fixture has no replies")
			}
		})
	}
}

// TestForwardMatchesFixture: ovos-core forwards the fallback ping from the
// utterance, so its source stays ours, unswapped.
func TestForwardMatchesFixture(t *testing.T) {
	lines := loadFixture(t, "fallback-handled.jsonl")
	sent := mustMessage(t, lines[0].Frame)
	var ping *message
	for _, l := range lines {
		if m := mustMessage(t, l.Frame); m.Type == api.TypeFallbackPing {
			ping = m
		}
	}
	if ping == nil {
		t.Fatal("no ping in fixture")
	}
	f := sent.forward(ping.Type, ping.Data)
	for _, k := range []string{ctxSource, ctxDestination} {
		if !jsonEqual(t, f.Context[k], ping.Context[k]) {
			t.Errorf("context.%s = %s, wire has %s", k, mustJSON(t, f.Context[k]), mustJSON(t, ping.Context[k]))
		}
	}
	if f.Context[ctxSource] != "go-gateway" {
		t.Errorf("forward changed source: %v", f.Context[ctxSource])
	}
}

// TestForwardRoundTrip: every fixture frame, decoded, forwarded with its own
// type and data and encoded again, is the same JSON (numbers such as the
// active_skills timestamp keep their digits; unknown members survive).
func TestForwardRoundTrip(t *testing.T) {
	for _, name := range fixtureNames(t) {
		for i, l := range loadFixture(t, name) {
			m := mustMessage(t, l.Frame)
			env, err := m.forward(m.Type, m.Data).encode()
			if err != nil {
				t.Fatalf("%s:%d: encode: %v", name, i+1, err)
			}
			b, err := env.MarshalJSON()
			if err != nil {
				t.Fatalf("%s:%d: marshal: %v", name, i+1, err)
			}
			if !reflect.DeepEqual(jsonDecode(t, b), jsonDecode(t, l.Frame)) {
				t.Errorf("%s:%d: round trip changed the frame:\n got %s\nwant %s", name, i+1, b, l.Frame)
			}
			if strings.Contains(string(l.Frame), "1795638741.3194752") && !strings.Contains(string(b), "1795638741.3194752") {
				t.Errorf("%s:%d: timestamp lost its digits", name, i+1)
			}
		}
	}
}

// TestReplyTwiceRestores: the swap is its own inverse.
func TestReplyTwiceRestores(t *testing.T) {
	for _, l := range loadFixture(t, "intent-handled.jsonl") {
		m := mustMessage(t, l.Frame)
		back := m.reply("x", nil).reply("y", nil)
		if !reflect.DeepEqual(back.Context, m.Context) {
			t.Errorf("%s: reply(reply()) context = %s, want %s", m.Type, mustJSON(t, back.Context), mustJSON(t, m.Context))
		}
	}
}

func TestReplySwapOnlyWhenBothPresent(t *testing.T) {
	tests := []struct {
		name    string
		context string
		want    string
	}{
		{"both", `{"source":"gw","destination":["skills"]}`, `{"source":["skills"],"destination":"gw"}`},
		{"both lists", `{"source":["a","b"],"destination":["skills"]}`, `{"source":["skills"],"destination":["a","b"]}`},
		{"only source", `{"source":"gw"}`, `{"source":"gw"}`},
		{"only destination", `{"destination":"gw"}`, `{"destination":"gw"}`},
		{"neither", `{"session":{"session_id":"s"}}`, `{"session":{"session_id":"s"}}`},
		{"null destination is present", `{"source":"gw","destination":null}`, `{"source":null,"destination":"gw"}`},
		{"empty context", `{}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMessage(t, []byte(`{"type":"t","data":{},"context":`+tt.context+`}`))
			r := m.reply("r", nil)
			if !reflect.DeepEqual(jsonNorm(t, r.Context), jsonDecode(t, []byte(tt.want))) {
				t.Errorf("reply context = %s, want %s", mustJSON(t, r.Context), tt.want)
			}
			f := m.forward("f", nil)
			if !reflect.DeepEqual(jsonNorm(t, f.Context), jsonDecode(t, []byte(tt.context))) {
				t.Errorf("forward context = %s, want %s", mustJSON(t, f.Context), tt.context)
			}
			if r.Data == nil || len(r.Data) != 0 {
				t.Errorf("reply with nil data has data %v, want {}", r.Data)
			}
		})
	}
}

func TestReplyAndForwardDeepCopy(t *testing.T) {
	m := mustMessage(t, []byte(`{"type":"t","data":{"list":[1,{"a":"b"}]},"context":{"source":"gw","destination":["skills"],"session":{"session_id":"s","blacklisted_intents":["x:Y"]}}}`))
	before := mustJSON(t, m.Context)
	beforeData := mustJSON(t, m.Data)
	// A forwarded message shares its context until withContext copies it
	// (message.forward): only its data is a deep copy of its own.
	f := m.forward("f", m.Data)
	f.Data["list"].([]any)[1].(map[string]any)["a"] = "changed"
	f.withContext(ctxLang, "xx")
	f.withContext(ctxSkillID, "yy")
	if got := mustJSON(t, m.Context); got != before {
		t.Errorf("original context changed by withContext on a forward: %s, was %s", got, before)
	}
	if _, ok := f.Context[ctxLang]; !ok {
		t.Error("withContext on a forward lost its first member")
	}
	m.withContext(ctxLang, "zz")
	if f.Context[ctxLang] != "xx" {
		t.Errorf("the forward's context changed with the original's: lang %v", f.Context[ctxLang])
	}
	m = mustMessage(t, []byte(`{"type":"t","data":{"list":[1,{"a":"b"}]},"context":{"source":"gw","destination":["skills"],"session":{"session_id":"s","blacklisted_intents":["x:Y"]}}}`))
	for _, r := range []*message{m.reply("r", m.Data), m.response(m.Data)} {
		r.session()["session_id"] = "changed"
		r.session()["blacklisted_intents"].([]any)[0] = "changed"
		for _, k := range []string{ctxSource, ctxDestination} {
			if l, ok := r.Context[k].([]any); ok {
				l[0] = "changed"
			}
		}
		r.Data["list"].([]any)[1].(map[string]any)["a"] = "changed"
		r.withContext(ctxLang, "xx")
	}
	if got := mustJSON(t, m.Context); got != before {
		t.Errorf("original context changed: %s, was %s", got, before)
	}
	if got := mustJSON(t, m.Data); got != beforeData {
		t.Errorf("original data changed: %s, was %s", got, beforeData)
	}
}

func TestResponse(t *testing.T) {
	m := mustMessage(t, []byte(`{"type":"mycroft.skills.is_ready","context":{"source":"gw","destination":["skills"],"utterance_id":"u1"}}`))
	r := m.response(map[string]any{"status": true})
	env, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != "mycroft.skills.is_ready.response" {
		t.Errorf("type = %q", env.Type)
	}
	want := `{"destination":"gw","source":["skills"],"utterance_id":"u1"}`
	if !reflect.DeepEqual(jsonDecode(t, env.Context), jsonDecode(t, []byte(want))) {
		t.Errorf("context = %s, want %s", env.Context, want)
	}
	if string(env.Data) != `{"status":true}` {
		t.Errorf("data = %s", env.Data)
	}
}

func TestEncodeKeepsText(t *testing.T) {
	m := &message{Type: "speak", Data: map[string]any{"utterance": "a <b> & c", "n": json.Number("1e400")}, Context: nil}
	env, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env.Data), `"a <b> & c"`) {
		t.Errorf("HTML escaped: %s", env.Data)
	}
	if !strings.Contains(string(env.Data), `1e400`) {
		t.Errorf("number changed: %s", env.Data)
	}
	if string(env.Context) != `{}` {
		t.Errorf("nil context = %s, want {}", env.Context)
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		context string
		ok      bool
	}{
		{"objects", `{"a":1}`, `{"b":2}`, true},
		{"missing", ``, ``, true},
		{"null", `null`, `null`, true},
		{"data array", `[1]`, `{}`, false},
		{"context string", `{}`, `"x"`, false},
		{"trailing garbage", `{} {}`, `{}`, false},
		{"broken", `{"a":`, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(api.Message{Type: "t", Data: json.RawMessage(tt.data), Context: json.RawMessage(tt.context)})
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (m.Data == nil || m.Context == nil) {
				t.Errorf("nil maps: %+v", m)
			}
		})
	}
}

func TestLang(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  string
	}{
		{"data", `{"type":"t","data":{"lang":"en-US"},"context":{"lang":"de-DE","session":{"lang":"pt-PT"}}}`, "en-US"},
		{"context", `{"type":"t","data":{},"context":{"lang":"de-DE","session":{"lang":"pt-PT"}}}`, "de-DE"},
		{"session", `{"type":"t","data":{"lang":5},"context":{"session":{"lang":"pt-PT"}}}`, "pt-PT"},
		{"default", `{"type":"t"}`, "en-us"},
		{"empty strings", `{"type":"t","data":{"lang":""},"context":{"session":"odd"}}`, "en-us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustMessage(t, []byte(tt.frame)).lang(); got != tt.want {
				t.Errorf("lang = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpandSession(t *testing.T) {
	tests := []struct {
		name    string
		context string
		want    string
	}{
		{"none", `{}`, `{"session":{"session_id":"default","lang":"en-US"}}`},
		{"null", `{"session":null}`, `{"session":{"session_id":"default","lang":"en-US"}}`},
		{"kept", `{"session":{"session_id":"s1","blacklisted_intents":["a:B"],"x":{"y":1}}}`,
			`{"session":{"session_id":"s1","blacklisted_intents":["a:B"],"x":{"y":1},"lang":"en-US"}}`},
		{"own lang kept", `{"session":{"session_id":"s1","lang":"pt-PT"}}`, `{"session":{"session_id":"s1","lang":"pt-PT"}}`},
		{"not an object", `{"session":"odd"}`, `{"session":"odd"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := decodeObject(json.RawMessage(tt.context))
			if err != nil {
				t.Fatal(err)
			}
			expandSession(ctx, "en-US")
			if !reflect.DeepEqual(jsonNorm(t, ctx), jsonDecode(t, []byte(tt.want))) {
				t.Errorf("got %s, want %s", mustJSON(t, ctx), tt.want)
			}
		})
	}
}

func BenchmarkReplyEncode(b *testing.B) {
	lines := loadFixture(b, "intent-handled.jsonl")
	raw := lines[len(lines)-1].Frame
	f, err := busframe.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := decodeMessage(f.Message)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.reply(api.TypeSpeak, map[string]any{"utterance": "hi"}).withContext(ctxLang, "en-US").encode(); err != nil {
			b.Fatal(err)
		}
	}
}
