package satellite

import (
	"encoding/json"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

func frame(t testing.TB, raw string) *api.Frame {
	t.Helper()
	f, err := busframe.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return f
}

// TestLoopProtection: only the device's own utterances are forwarded; what
// a satellite re-emitted and what the gateway sent for its clients never is.
func TestLoopProtection(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		forward bool
	}{
		{"microphone", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"audio","destination":["skills"]}}`, true},
		{"cli without session", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"client_name":"mycroft_cli","source":"debug_cli","destination":["skills"]}}`, true},
		{"gui as a list", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":["mycroft-gui"]}}`, true},
		{"no context at all", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]}}`, true},
		{"marked re-emitted", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"audio","satellite_reemitted":true}}`, false},
		{"satellite source", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"satellite"}}`, false},
		{"satellite source in a list", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":["x","satellite"]}}`, false},
		{"gateway client", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"gateway:kitchen","destination":["skills"]}}`, false},
		{"mark not true", `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":"audio","satellite_reemitted":"yes"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notForwarded(frame(t, tt.raw)) == ""; got != tt.forward {
				t.Fatalf("forwarded = %v, want %v", got, tt.forward)
			}
		})
	}
}

// TestReemittedIsNeverForwarded: whatever the bridge re-emits carries its
// mark, so a bridge on the same bus (or the same one after a reconnect)
// never takes it for a device's utterance.
func TestReemittedIsNeverForwarded(t *testing.T) {
	id := "u1"
	sp, err := speakMessage(api.SpeakEvent{UtteranceID: &id, Utterance: "hi", Lang: "en-us"}, json.RawMessage(`{"session_id":"default"}`))
	if err != nil {
		t.Fatal(err)
	}
	fw, err := forwardedMessage([]byte(`{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"source":["skills"],"destination":"gateway:k"}}`))
	if err != nil {
		t.Fatal(err)
	}
	fw2, err := forwardedMessage([]byte(`{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []api.Message{sp, fw, fw2} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		f := frame(t, string(b))
		// Even typed as an utterance, it is not forwarded.
		f.Type = api.TypeUtterance
		if notForwarded(f) == "" {
			t.Errorf("re-emitted %s would be forwarded", b)
		}
	}
}

func TestSpeakMessage(t *testing.T) {
	session := json.RawMessage(`{"session_id":"s9","lang":"en-US","active_skills":[["x",1]]}`)
	m, err := speakMessage(api.SpeakEvent{Utterance: "It's noon.", ExpectResponse: true, Lang: "en-us"}, session)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	var got struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
		Ctx  struct {
			Source      string          `json:"source"`
			Destination []string        `json:"destination"`
			Session     json.RawMessage `json:"session"`
			Reemitted   bool            `json:"satellite_reemitted"`
		} `json:"context"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "speak" || got.Data["utterance"] != "It's noon." || got.Data["expect_response"] != true || got.Data["lang"] != "en-us" || len(got.Data) != 3 {
		t.Errorf("data %v", got.Data)
	}
	if got.Ctx.Source != "satellite" || len(got.Ctx.Destination) != 1 || got.Ctx.Destination[0] != "audio" || !got.Ctx.Reemitted {
		t.Errorf("context %+v", got.Ctx)
	}
	if string(got.Ctx.Session) != string(session) {
		t.Errorf("session %s, want the original %s", got.Ctx.Session, session)
	}
	m, _ = speakMessage(api.SpeakEvent{Utterance: "x"}, nil)
	if f := frame(t, mustJSON(t, m)); f.Route.SessionID != "default" {
		t.Errorf("no session: got %q, want default", f.Route.SessionID)
	}
}

func TestForwardedMessageKeepsTheRest(t *testing.T) {
	in := `{"type":"joke.builtin:JokeIntent","data":{"utterance":"tell me a joke","n":[1,2]},"context":{"destination":"gateway:k","session":{"session_id":"s"},"utterance_id":"u"}}`
	m, err := forwardedMessage([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f := frame(t, mustJSON(t, m))
	if f.Type != "joke.builtin:JokeIntent" || f.Route.SessionID != "s" || f.Route.UtteranceID != "u" || !f.Route.Destination.Has("gateway:k") {
		t.Errorf("frame %+v", f.Route)
	}
	if string(f.Data) != `{"utterance":"tell me a joke","n":[1,2]}` {
		t.Errorf("data %s", f.Data)
	}
	for _, bad := range []string{`[]`, `{"type":""}`, `{"type":"x","context":[1]}`, `nope`} {
		if _, err := forwardedMessage([]byte(bad)); err == nil {
			t.Errorf("%s re-emitted", bad)
		}
	}
}

func TestParseUtterance(t *testing.T) {
	tests := []struct {
		name, raw   string
		ok          bool
		text, lang  string
		sid, source string
	}{
		{name: "ovos listener", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":["  What time is it "],"lang":"en-US"},"context":{"source":"audio","destination":["skills"],"session":{"session_id":"default"}}}`,
			ok: true, text: "What time is it", lang: "en-US", sid: "default", source: "audio"},
		{name: "lang from the session, posix style", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"]},"context":{"session":{"session_id":"s","lang":"pt_BR"}}}`,
			ok: true, text: "hi", lang: "pt-BR", sid: "s"},
		{name: "lang from the context", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":["hi","high"]},"context":{"lang":"de-de"}}`,
			ok: true, text: "hi", lang: "de-de", sid: "default"},
		{name: "odd lang dropped", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"],"lang":"C.UTF-8"}}`,
			ok: true, text: "hi", sid: "default"},
		{name: "no utterances", raw: `{"type":"recognizer_loop:utterance","data":{}}`},
		{name: "empty utterance", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":[" "]}}`},
		{name: "utterances not strings", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":[1]}}`},
		{name: "utterances a string", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":"hi"}}`},
		// Names are exact, as the device's assistant reads them: neither
		// "Utterances" nor "LANG" is read.
		{name: "utterances in another case", raw: `{"type":"recognizer_loop:utterance","data":{"Utterances":["hi"]}}`},
		{name: "lang in another case", raw: `{"type":"recognizer_loop:utterance","data":{"utterances":["hi"],"LANG":"fr-fr"},"context":{"lang":"de-de"}}`,
			ok: true, text: "hi", lang: "de-de", sid: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := parseUtterance(frame(t, tt.raw))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if u.text != tt.text || u.lang != tt.lang || u.sessionID != tt.sid || sourceOrEmpty(u.source) != tt.source {
				t.Errorf("got %+v", u)
			}
		})
	}
}

func sourceOrEmpty(n api.Names) string {
	if len(n) == 0 {
		return ""
	}
	return n[0]
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzFrames: no frame from the local bus or event from the gateway makes
// the bridge's readers panic, and what is re-emitted is always a well-formed
// message carrying the mark.
func FuzzFrames(f *testing.F) {
	for _, s := range []string{
		utt("hello", "default"),
		reply(api.TypeIntentFailure, "d", `{"utterances":["x"]}`),
		`{"type":"x","data":{"utterances":[null]},"context":{"session":{"session_id":5},"satellite_reemitted":1}}`,
		`{"type":"speak","context":{"utterance_id":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_ = contextUtteranceID(raw)
		if m, err := forwardedMessage(raw); err == nil {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-emitted message does not marshal: %v", err)
			}
			fr, err := busframe.Parse(b)
			if err != nil {
				t.Fatalf("re-emitted %s does not parse: %v", b, err)
			}
			if notForwarded(fr) == "" {
				t.Fatalf("re-emitted %s lacks the mark", b)
			}
		}
		fr, err := busframe.Parse(raw)
		if err != nil {
			return
		}
		_ = notForwarded(fr)
		_ = failureText(fr)
		if u, err := parseUtterance(fr); err == nil && u.text == "" {
			t.Fatal("an empty utterance parsed")
		}
	})
}

// TestReemitted: the allow-list of what the bridge re-emits (issue 17,
// item 8).
func TestReemitted(t *testing.T) {
	for typ, want := range map[string]bool{
		"speak":                            true,
		"mycroft.audio.service.play":       true,
		"mycroft.audio.service.stop":       true,
		"mycroft.audio.play_sound":         false,
		"joke.builtin:JokeIntent":          false,
		"mycroft.skill.handler.start":      false,
		"mycroft.skill.handler.complete":   false,
		"complete_intent_failure":          false,
		"recognizer_loop:utterance":        false,
		"mycroft.audio.service.play.extra": true,
		"mycroft.audio.servicexplay":       false,
		"ovos.utterance.handled":           false,
	} {
		if got := Reemitted(typ); got != want {
			t.Errorf("Reemitted(%q) = %v, want %v", typ, got, want)
		}
	}
}
