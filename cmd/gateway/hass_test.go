package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// Home Assistant's conversation API, against the facts of its developer
// docs: POST /api/conversation/process with text, language,
// conversation_id and agent_id; the answer's response.response_type is
// action_done, query_answer or error (data.code no_intent_match,
// no_valid_targets, failed_to_handle or unknown), the speech is in
// response.speech.plain.speech, conversation_id comes back beside the
// response, and continue_conversation says a follow-up is expected.
func TestHomeAssistantConversation(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "ha")
	cred := "ha:" + key
	process := func(body any) api.HassResult {
		t.Helper()
		var out api.HassResult
		wantStatus(t, g.call(t, http.MethodPost, "/api/conversation/process", cred, body, &out), http.StatusOK)
		return out
	}

	r := process(map[string]any{"text": "say the lights are on", "language": "en", "agent_id": "conversation.ovos"})
	if r.Response.ResponseType != api.HassQueryAnswer || !strings.Contains(r.Response.Speech.Plain.Speech, "the lights are on") ||
		r.Response.Language != "en" || r.ConversationID == "" || r.ContinueConversation {
		t.Fatalf("handled: %+v", r)
	}

	r = process(map[string]any{"text": "blorp frobnicate quux"})
	if r.Response.ResponseType != api.HassError || r.Response.Data["code"] != api.HassNoIntentMatch || r.Response.Speech.Plain.Speech == "" {
		t.Fatalf("not understood: %+v", r)
	}

	// A follow-up continues in its conversation, and only there.
	q := process(map[string]any{"text": "ask me something"})
	if !q.ContinueConversation || !strings.Contains(q.Response.Speech.Plain.Speech, "?") {
		t.Fatalf("question: %+v", q)
	}
	other := process(map[string]any{"text": "hello", "conversation_id": "another"})
	if other.ConversationID != "another" || !strings.Contains(other.Response.Speech.Plain.Speech, "Hello") {
		t.Fatalf("another conversation: %+v", other)
	}
	a := process(map[string]any{"text": "green", "conversation_id": q.ConversationID})
	if a.ConversationID != q.ConversationID || a.Response.ResponseType != api.HassQueryAnswer || !strings.Contains(a.Response.Speech.Plain.Speech, "You said green") {
		t.Fatalf("answer: %+v", a)
	}

	// A protected intent is refused before it reaches the assistant.
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:*"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	var p api.Problem
	wantStatus(t, g.call(t, http.MethodPost, "/api/conversation/process", cred, map[string]any{"text": "tell me a joke"}, &p), http.StatusForbidden)
	if p.Intent != "joke.builtin:JokeIntent" {
		t.Fatalf("refusal %+v", p)
	}
	wantStatus(t, g.call(t, http.MethodPost, "/api/conversation/process", "", map[string]any{"text": "hello"}, nil), http.StatusUnauthorized)
}

// Hostile input on the dialect routes gets a 4xx, never a 5xx.
func TestDialectsRefuseHostileInput(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "lab")
	cred := "lab:" + key
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	many := `{"model":"ovos","messages":[` + strings.TrimSuffix(strings.Repeat(`{"role":"user","content":"hi"},`, 1025), ",") + `]}`
	huge := `{"model":"ovos","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`
	chat := []struct {
		name, body, param string
		want              int
	}{
		{"not JSON", `{"model":`, "", 400},
		{"messages a string", `{"model":"ovos","messages":"hi"}`, "", 400},
		{"stream a string", `{"model":"ovos","stream":"yes","messages":[{"role":"user","content":"hi"}]}`, "", 400},
		{"n a string", `{"model":"ovos","n":"2","messages":[{"role":"user","content":"hi"}]}`, "", 400},
		{"model a number", `{"model":5,"messages":[{"role":"user","content":"hi"}]}`, "", 400},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, "model", 400},
		{"unknown model", `{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}`, "model", 404},
		{"no messages", `{"model":"ovos","messages":[]}`, "messages", 400},
		{"no user message", `{"model":"ovos","messages":[{"role":"system","content":"hi"}]}`, "messages", 400},
		{"bad role", `{"model":"ovos","messages":[{"role":"wizard","content":"hi"}]}`, "messages[0].role", 400},
		{"too many messages", many, "messages", 400},
		{"a huge body", huge, "", 413},
		{"deeply nested content", `{"model":"ovos","messages":[{"role":"user","content":` + deep + `}]}`, "", 400},
		{"nested parts", `{"model":"ovos","messages":[{"role":"user","content":[[[{"type":"text","text":"hi"}]]]}]}`, "messages[0].content[0]", 400},
		{"a part without text", `{"model":"ovos","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`, "messages[0].content[0]", 400},
		{"tools", `{"model":"ovos","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`, "tools", 400},
		{"n of 2", `{"model":"ovos","n":2,"messages":[{"role":"user","content":"hi"}]}`, "n", 400},
		{"logprobs", `{"model":"ovos","logprobs":true,"messages":[{"role":"user","content":"hi"}]}`, "logprobs", 400},
		{"audio out", `{"model":"ovos","modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},"messages":[{"role":"user","content":"hi"}]}`, "audio", 400},
		{"an image", `{"model":"ovos","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`, "messages[0].content[1]", 400},
		{"audio in", `{"model":"ovos","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}`, "messages[0].content[0]", 400},
		{"control characters", `{"model":"ovos","messages":[{"role":"user","content":"hi\u0007"}]}`, "messages", 400},
		{"a user too long", `{"model":"ovos","user":"` + strings.Repeat("u", 300) + `","messages":[{"role":"user","content":"hi"}]}`, "user", 400},
	}
	for _, c := range chat {
		t.Run("chat "+c.name, func(t *testing.T) {
			var out struct {
				api.Problem
				Error api.OpenAIError `json:"error"`
			}
			resp := g.call(t, http.MethodPost, "/v1/chat/completions", cred, c.body, &out)
			wantStatus(t, resp, c.want)
			if out.Error.Message == "" || out.Error.Type == "" {
				t.Fatalf("no OpenAI error object: %+v", out)
			}
			if c.param != "" && (out.Error.Param == nil || *out.Error.Param != c.param) {
				t.Fatalf("param %v, want %q (%s)", out.Error.Param, c.param, out.Error.Message)
			}
		})
	}
	// Unknown members are ignored, as OpenAI does.
	var ok api.ChatCompletion
	wantStatus(t, g.call(t, http.MethodPost, "/v1/chat/completions", cred,
		`{"model":"ovos","temperature":0.3,"max_tokens":20,"stream_options":null,"tool_choice":"none","n":1,"frobnicate":{"x":[1,2]},"messages":[{"role":"user","content":[{"type":"text","text":"say  two\nlines"}]}]}`, &ok), http.StatusOK)
	if ok.Choices[0].Message.Content != "two lines" {
		t.Fatalf("content %q", ok.Choices[0].Message.Content)
	}

	hass := []struct {
		name, body string
		want       int
	}{
		{"not JSON", `{"text":`, 400},
		{"text a number", `{"text":5}`, 400},
		{"no text", `{"language":"en"}`, 400},
		{"conversation_id an object", `{"text":"hi","conversation_id":{}}`, 400},
		{"deeply nested", `{"text":"hi","extra":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, 400},
		{"a bad language", `{"text":"hi","language":"en_US!"}`, 400},
		{"a huge body", `{"text":"` + strings.Repeat("a", 100<<10) + `"}`, 413},
	}
	for _, c := range hass {
		t.Run("hass "+c.name, func(t *testing.T) {
			wantStatus(t, g.call(t, http.MethodPost, "/api/conversation/process", cred, c.body, nil), c.want)
		})
	}
}
