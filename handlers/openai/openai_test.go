package openai

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
)

// busDown is a Talker whose bus is down: what comes back is the refusal.
type busDown struct{ got *api.UtteranceRequest }

func (b busDown) Start(_ context.Context, _ api.Identity, _ netip.Addr, r api.UtteranceRequest) (*bridge.Pending, error) {
	if b.got != nil {
		*b.got = r
	}
	return nil, &api.Error{Code: api.EUNAVAILABLE, Detail: "the assistant's messagebus is not connected"}
}

func newHandler(t testing.TB, talk Talker) http.Handler {
	t.Helper()
	h, err := New(Config{}, talk)
	if err != nil {
		t.Fatal(err)
	}
	return Errors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeChat(w, r.WithContext(api.WithIdentity(r.Context(), api.Identity{ClientID: "kitchen"})))
	}))
}

func post(t testing.TB, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestUtteranceIsTheLastUserMessage: history and system prompts are not
// said; text parts are joined and white space made single spaces.
func TestUtteranceIsTheLastUserMessage(t *testing.T) {
	var got api.UtteranceRequest
	h := newHandler(t, busDown{got: &got})
	w := post(t, h, `{"model":"ovos","messages":[
		{"role":"system","content":"Be brief."},
		{"role":"user","content":"what time is it"},
		{"role":"assistant","content":"It's noon."},
		{"role":"user","content":[{"type":"text","text":"and the\ndate"},{"type":"text","text":" today?"}]}]}`)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got.Utterance != "and the date today?" {
		t.Fatalf("utterance %q", got.Utterance)
	}
	var body struct {
		Error api.OpenAIError `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Type != "server_error" || body.Error.Code != api.EUNAVAILABLE {
		t.Fatalf("error object %s (%v)", w.Body, err)
	}
}

func TestAnswer(t *testing.T) {
	said := []api.Speech{{Utterance: "One."}, {Utterance: "Two."}}
	cases := []struct {
		status string
		speech []api.Speech
		text   string
		code   string
	}{
		{api.StatusHandled, said, "One.\nTwo.", ""},
		{api.StatusHandled, nil, "", ""},
		{api.StatusAwaitingResponse, said[:1], "One.", ""},
		{api.StatusIntentFailure, nil, NotUnderstood, ""},
		{api.StatusIntentFailure, said[:1], "One.", ""},
		{api.StatusTimeout, nil, "", api.EASSISTANTTIMEOUT},
		{api.StatusAccepted, nil, "", api.EASSISTANTTIMEOUT},
		{api.StatusTimeout, said, "One.\nTwo.", ""},
		{api.StatusError, nil, "", api.EASSISTANT},
	}
	for _, c := range cases {
		text, err := answer(c.status, c.speech)
		if text != c.text || api.ErrorCode(err) != c.code {
			t.Errorf("answer(%s, %d speeches) = %q, %v; want %q, %q", c.status, len(c.speech), text, err, c.text, c.code)
		}
	}
}

// TestConversation: a token without user keeps its session; a user names
// a conversation of its own, the same each time, and never another
// client's.
func TestConversation(t *testing.T) {
	tok := api.Identity{ClientID: "a", SessionID: "jwt-session"}
	key := api.Identity{ClientID: "a"}
	if got := Conversation(tok, "").SessionID; got != "jwt-session" {
		t.Errorf("token, no user: %q", got)
	}
	standing := Conversation(key, "").SessionID
	alice := Conversation(key, "alice").SessionID
	if standing == "" || alice == standing || Conversation(tok, "alice").SessionID != alice || Conversation(key, "alice").SessionID != alice {
		t.Errorf("standing %q alice %q", standing, alice)
	}
	if Conversation(api.Identity{ClientID: "b"}, "alice").SessionID == alice {
		t.Error("two clients share a conversation")
	}
}

// FuzzChatRequest: whatever the body, the answer is a 4xx with OpenAI's
// error object (or the bus's 503 once the request is valid), never a 5xx
// of our own making, never a panic.
func FuzzChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"ovos","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"ovos","stream":true,"user":"x","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"model":"ovos","n":2,"tools":[],"messages":[{"role":"tool","content":null}]}`,
		`{"model":"ovos","messages":[{"role":"user","content":[[{"type":"image_url"}]]}]}`,
		`{"messages":{}}`, `[]`, `{"model":"ovos","messages":[{"role":"user","content":"\u0000"}]}`,
	} {
		f.Add(s)
	}
	h := newHandler(f, busDown{})
	f.Fuzz(func(t *testing.T, body string) {
		w := post(t, h, body)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		var out struct {
			Error *api.OpenAIError `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Error == nil || out.Error.Message == "" {
			t.Fatalf("no error object for %q: %s", body, w.Body)
		}
	})
}

func TestNewNeedsATalker(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("New without a talker")
	}
	var pe *paramError
	if err := unsupported("n", "more than one choice"); !errors.As(err, &pe) || api.ErrorCode(err) != api.EINVALID {
		t.Fatalf("unsupported: %v", err)
	}
}
