package hass

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
)

// TestResult maps every way handling ends to Home Assistant's response
// (developers.home-assistant.io, Conversation API): response types
// action_done, query_answer, error with data.code, speech.plain.speech.
func TestResult(t *testing.T) {
	said := []api.Speech{{Utterance: "It is noon."}, {Utterance: "Anything else?", ExpectResponse: true}}
	cases := []struct {
		status string
		speech []api.Speech
		typ    string
		code   string
		says   string
		cont   bool
	}{
		{api.StatusHandled, said[:1], api.HassQueryAnswer, "", "It is noon.", false},
		{api.StatusHandled, nil, api.HassActionDone, "", "", false},
		{api.StatusAwaitingResponse, said, api.HassQueryAnswer, "", "It is noon.\nAnything else?", true},
		{api.StatusIntentFailure, nil, api.HassError, api.HassNoIntentMatch, notUnderstood, false},
		{api.StatusTimeout, nil, api.HassError, api.HassFailed, tooSlow, false},
		{api.StatusAccepted, nil, api.HassError, api.HassFailed, tooSlow, false},
		{api.StatusError, nil, api.HassError, api.HassUnknown, failed, false},
	}
	for _, c := range cases {
		r := result(api.UtteranceResult{Status: c.status, Speech: c.speech}, "en", "conv-1")
		code, _ := r.Response.Data["code"].(string)
		if r.Response.ResponseType != c.typ || code != c.code || r.Response.Speech.Plain.Speech != c.says ||
			r.ContinueConversation != c.cont || r.ConversationID != "conv-1" || r.Response.Language != "en" {
			t.Errorf("%s: %+v", c.status, r)
		}
		if c.code == "" {
			if _, ok := r.Response.Data["targets"]; !ok {
				t.Errorf("%s: no targets list: %+v", c.status, r.Response.Data)
			}
		}
	}
}

type busDown struct{}

func (busDown) Start(context.Context, api.Identity, netip.Addr, api.UtteranceRequest) (*bridge.Pending, error) {
	return nil, &api.Error{Code: api.EUNAVAILABLE, Detail: "the assistant's messagebus is not connected"}
}

// FuzzConversationRequest: whatever the body, a 4xx (or the bus's 503 once
// the request is valid), never a 5xx of our making, never a panic.
func FuzzConversationRequest(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello","language":"en","conversation_id":"x","agent_id":"y"}`,
		`{"text":5}`, `{"text":"hi","conversation_id":{}}`, `{}`, `[`, `{"text":"\u0007"}`,
	} {
		f.Add(s)
	}
	h, err := New(Config{}, busDown{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/conversation/process", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(api.WithIdentity(req.Context(), api.Identity{ClientID: "ha"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
