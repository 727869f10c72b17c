package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
)

var alice = Utterance{ClientID: "alice", SessionID: "sess-a", Text: "hello there", Lang: "en-US"}

// intentReply is an intent.service.intent.reply for alice carrying uid.
func intentReply(uid, data string) string {
	return `{"type":"intent.service.intent.reply","data":` + data + `,"context":` + ctxJSON("gateway:alice", "sess-a", uid) + `}`
}

func TestIntentAnswers(t *testing.T) {
	cases := []struct {
		name string
		data string
		want *Intent
		code string
	}{
		{"nothing matches", `{"intent":null,"utterance":"hello there"}`, nil, ""},
		{"classic, no utterance member", `{"intent":null}`, nil, ""},
		{"padatious classic", `{"intent":{"name":"weather.skill:forecast.intent","sent":"x","conf":0.9}}`,
			&Intent{Name: "weather.skill:forecast.intent", Type: "weather.skill:forecast.intent", SkillID: "weather.skill"}, ""},
		{"odd member types", `{"intent":{"intent_name":5,"intent_type":["a"],"skill_id":{"x":1}}}`, &Intent{}, ""},
		{"intent not an object", `{"intent":"weather"}`, nil, api.EUNAVAILABLE},
		// Names are exact, as the assistant writes them and its Python peers
		// read them: neither "INTENT" nor "Intent_Type" is read.
		{"intent in capitals", `{"intent":null,"INTENT":{"intent_type":"joke.skill:JokeIntent"}}`, nil, ""},
		{"members in another case", `{"intent":{"Intent_Type":"joke.skill:JokeIntent","intent_type":"time.skill:TimeIntent","Skill_ID":"joke.skill"}}`,
			&Intent{Name: "time.skill:TimeIntent", Type: "time.skill:TimeIntent", SkillID: "time.skill"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, bus, _ := newBridge(t, Config{})
			bus.onRequest = func(m api.Message) {
				bus.replies = []*api.Frame{frame(t, intentReply(ctxOf(t, m).UtteranceID, tc.data))}
			}
			in, err := b.Intent(context.Background(), alice)
			if api.ErrorCode(err) != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			switch {
			case tc.want == nil && in != nil:
				t.Errorf("Intent = %+v, want nil", in)
			case tc.want != nil && in == nil:
				t.Errorf("Intent = nil, want %+v", tc.want)
			case tc.want != nil:
				if !sameIntent(*in, *tc.want) {
					t.Errorf("Intent = %+v, want %+v", *in, *tc.want)
				}
			}
		})
	}
}

// TestIntentMatch: the reply is the one routed back to this query: by
// utterance id when the context has one, else by destination.
func TestIntentMatch(t *testing.T) {
	b, bus, _ := newBridge(t, Config{})
	var sent string
	bus.onRequest = func(m api.Message) {
		sent = ctxOf(t, m).UtteranceID
		bus.replies = []*api.Frame{
			frame(t, `{"type":"intent.service.intent.reply","data":{"intent":{"intent_name":"other-uid"}},"context":`+ctxJSON("gateway:alice", "sess-a", "someone-else")+`}`),
			frame(t, `{"type":"intent.service.intent.reply","data":{"intent":{"intent_name":"other-client"}},"context":`+ctxJSON("gateway:bob", "sess-b", "")+`}`),
			frame(t, `{"type":"ovos.skills.fallback.pong","data":{"intent":{"intent_name":"other-type"}},"context":`+ctxJSON("gateway:alice", "sess-a", sent)+`}`),
			frame(t, `{"type":"intent.service.intent.reply","data":{"intent":{"intent_name":"ours"}},"context":`+ctxJSON("elsewhere", "", sent)+`}`),
		}
	}
	in, err := b.Intent(context.Background(), alice)
	if err != nil || in == nil || in.Name != "ours" {
		t.Fatalf("Intent = %+v, %v; want the reply naming our utterance id", in, err)
	}
}

// TestIntentUnavailable: link down or no answer in time: EUNAVAILABLE, and
// the caller's own cancellation is reported as such.
func TestIntentUnavailable(t *testing.T) {
	t.Run("link down", func(t *testing.T) {
		b, bus, _ := newBridge(t, Config{})
		bus.down.Store(true)
		_, err := b.Intent(context.Background(), alice)
		wantUnavailable(t, err)
	})
	t.Run("no answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, _, _ := newBridge(t, Config{IntentTimeout: 2 * time.Second})
			start := time.Now()
			_, err := b.Intent(context.Background(), alice)
			wantUnavailable(t, err)
			if waited := time.Since(start); waited != 2*time.Second {
				t.Errorf("waited %v, want the intent timeout", waited)
			}
			if st := b.Stats(); st.DryRunFailures != 1 || st.Pending != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	})
	t.Run("caller gives up", func(t *testing.T) {
		b, _, _ := newBridge(t, Config{})
		_, err := b.Intent(cancelled(), alice)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

// TestIntentTrafficHidden: what a dry run causes on the bus (pings, the
// reply) never reaches the client, even after the query returned.
func TestIntentTrafficHidden(t *testing.T) {
	b, bus, pub := newBridge(t, Config{})
	send(t, b, "alice", "sess-a", "first", false)
	var uid string
	bus.onRequest = func(m api.Message) {
		uid = ctxOf(t, m).UtteranceID
		bus.replies = []*api.Frame{frame(t, intentReply(uid, `{"intent":null}`))}
	}
	if _, err := b.Intent(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	b.Dispatch(frame(t, intentReply(uid, `{"intent":null}`)))
	b.Dispatch(frame(t, `{"type":"ovos.skills.fallback.pong","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", uid)+`}`))
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", uid)+`}`))
	if evs := pub.all(); len(evs) != 0 {
		t.Errorf("dry run traffic published: %d events", len(evs))
	}
	var out struct{ Utterance, Lang string }
	if err := json.Unmarshal(bus.last(t).Data, &out); err != nil || out.Utterance != "hello there" {
		t.Errorf("query data %s", bus.last(t).Data)
	}
}

// sameIntent compares everything but Raw.
func sameIntent(a, b Intent) bool {
	return a.Name == b.Name && a.Type == b.Type && a.SkillID == b.SkillID && a.Service == b.Service
}

// TestIntentKnowsAWaitingQuestion: while a follow-up question of the
// session waits for its answer, the dry run says so (Intent.Answer); once an
// utterance answered it, or in another session, it does not.
func TestIntentKnowsAWaitingQuestion(t *testing.T) {
	b, bus, _ := newBridge(t, Config{})
	bus.onRequest = func(m api.Message) {
		bus.replies = []*api.Frame{frame(t, intentReply(ctxOf(t, m).UtteranceID, `{"intent":{"intent_type":"joke.skill:JokeIntent"}}`))}
	}
	answer := func() bool {
		t.Helper()
		in, err := b.Intent(context.Background(), alice)
		if err != nil || in == nil {
			t.Fatalf("Intent = %v, %v", in, err)
		}
		return in.Answer
	}
	if answer() {
		t.Fatal("an answer with no question")
	}
	q := send(t, b, "alice", "sess-a", "ask me something", true)
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+ctxJSON("gateway:alice", "sess-a", q.ID())+`}`))
	if !answer() {
		t.Fatal("the question is not seen by the dry run")
	}
	send(t, b, "alice", "other-session", "hello", true)
	if !answer() {
		t.Fatal("an utterance of another session answered the question")
	}
	send(t, b, "alice", "sess-a", "blue", true)
	if answer() {
		t.Fatal("the question is still waiting after its answer")
	}
}
