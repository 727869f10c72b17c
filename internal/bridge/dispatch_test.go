package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
)

// ctxJSON is a reply context: source/destination as a real assistant swaps
// them, our session, and optionally our utterance id.
func ctxJSON(dest, session, uid string) string {
	parts := []string{`"source":["skills"]`}
	if dest != "" {
		parts = append(parts, `"destination":"`+dest+`"`)
	}
	if session != "" {
		parts = append(parts, `"session":{"session_id":"`+session+`","lang":"en-US"}`)
	}
	if uid != "" {
		parts = append(parts, `"utterance_id":"`+uid+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func speakFrame(text, ctx string) string {
	return `{"type":"speak","data":{"utterance":"` + text + `","expect_response":false,"lang":"en-US"},"context":` + ctx + `}`
}

// TestClassicDialect: classic mycroft-core ends an intent with
// mycroft.skill.handler.complete and forwards complete_intent_failure
// unswapped (source still ours, destination ["skills"]), often with no session.
func TestClassicDialect(t *testing.T) {
	cases := []struct {
		name   string
		frame  func(uid string) string
		status string
	}{
		{"handler complete", func(uid string) string {
			return `{"type":"mycroft.skill.handler.complete","data":{"name":"X.handle"},"context":` + ctxJSON("gateway:alice", "", uid) + `}`
		}, api.StatusHandled},
		{"unswapped intent failure", func(uid string) string {
			return `{"type":"complete_intent_failure","data":{"utterances":["x"]},"context":{"source":"gateway:alice","destination":["skills"],"client_name":"ALICE","utterance_id":"` + uid + `"}}`
		}, api.StatusIntentFailure},
		{"unswapped intent failure, session only", func(string) string {
			return `{"type":"complete_intent_failure","data":{},"context":{"source":"gateway:alice","destination":["skills"],"session":{"session_id":"sess-a"}}}`
		}, api.StatusIntentFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _, pub := newBridge(t, Config{})
			p := send(t, b, "alice", "sess-a", "joke", true)
			b.Dispatch(frame(t, tc.frame(p.ID())))
			got := summaries(t, pub.of("alice"))
			if len(got) != 2 || !strings.HasPrefix(got[0], "message:") || got[1] != "done:"+tc.status {
				t.Fatalf("events %q, want a message then done:%s", got, tc.status)
			}
			if res := p.Wait(context.Background()); res.Status != tc.status {
				t.Errorf("Wait status %q, want %q", res.Status, tc.status)
			}
		})
	}
}

// TestRouting covers whom a frame reaches.
func TestRouting(t *testing.T) {
	resolve := func(name string) (string, bool) {
		switch name {
		case "alice", "ally":
			return "alice", true
		case "carol":
			return "carol", true
		case "50338": // the 2017 scheme's socket id (the seed's logs)
			return "legacy", true
		}
		return "", false
	}
	cases := []struct {
		name    string
		raw     string
		client  string // "" when nobody may get it
		summary string
	}{
		{"destination string", speakFrame("hi", ctxJSON("gateway:alice", "", "")), "alice", "speak:hi"},
		{"destination list, first ours", speakFrame("hi", `{"destination":["audio","gateway:alice","gateway:bob"]}`), "alice", "speak:hi"},
		{"destination unknown but resolvable", `{"type":"x.y","data":{},"context":{"destination":"gateway:carol"}}`, "carol", "message:x.y"},
		{"destination unknown", `{"type":"x.y","data":{},"context":{"destination":"gateway:mallory"}}`, "", ""},
		{"destination of another kind, our session", `{"type":"x.y","data":{},"context":{"destination":["skills"],"session":{"session_id":"sess-b"}}}`, "bob", "message:x.y"},
		{"session only, not a speak", `{"type":"x.y","data":{},"context":{"session":{"session_id":"sess-b"}}}`, "bob", "message:x.y"},
		{"speak broadcast with our session", speakFrame("aloud", `{"session":{"session_id":"sess-a"}}`), "", ""},
		{"speak broadcast", speakFrame("aloud", `{}`), "", ""},
		{"speak broadcast, target id", `{"type":"speak","data":{"utterance":"t","target":"alice"},"context":{}}`, "alice", "speak:t"},
		{"speak broadcast, target alias", `{"type":"speak","data":{"utterance":"t","target":"ally"},"context":null}`, "alice", "speak:t"},
		{"speak, target gateway name", `{"type":"speak","data":{"utterance":"t","target":"gateway:bob"}}`, "bob", "speak:t"},
		{"seed 2017 speak", `{"data": {"target": "50338", "mute": false, "expect_response": false, "more": false, "utterance": "The Chuck Norris Eclipse plugin made alien contact.", "metadata": {}}, "type": "speak", "context": null}`, "legacy", "speak:The Chuck Norris Eclipse plugin made alien contact."},
		{"target unknown", `{"type":"speak","data":{"utterance":"t","target":"nobody"}}`, "", ""},
		{"target not a string", `{"type":"speak","data":{"utterance":"t","target":50338}}`, "", ""},
		{"default session", `{"type":"x.y","data":{},"context":{"session":{"session_id":"default"}}}`, "", ""},
		{"source ours, not a failure", `{"type":"x.y","data":{},"context":{"source":"gateway:alice","destination":["skills"]}}`, "", ""},
		{"another gateway's utterance", `{"type":"recognizer_loop:utterance","data":{"utterances":["x"]},"context":{"source":"gateway:alice","destination":["skills"],"session":{"session_id":"sess-a"}}}`, "", ""},
		{"another gateway's dry run", `{"type":"intent.service.intent.get","data":{"utterance":"x"},"context":{"source":"gateway:alice","session":{"session_id":"sess-a"}}}`, "", ""},
		{"bus greeting", `{"type":"connected","data":{},"context":{"session":{"session_id":"default"}}}`, "", ""},
		{"destination beats session", `{"type":"x.y","data":{},"context":{"destination":"gateway:alice","session":{"session_id":"sess-b"}}}`, "alice", "message:x.y"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _, pub := newBridge(t, Config{Resolve: resolve})
			send(t, b, "alice", "sess-a", "one", false)
			send(t, b, "bob", "sess-b", "two", false)
			b.Dispatch(frame(t, tc.raw))
			all := pub.all()
			if tc.client == "" {
				if len(all) != 0 {
					t.Fatalf("delivered %d events to %q, want none", len(all), all[0].client)
				}
				return
			}
			if len(all) != 1 || all[0].client != tc.client {
				t.Fatalf("events %+v, want one for %s", all, tc.client)
			}
			if got := summary(t, all[0].ev); got != tc.summary {
				t.Errorf("event %q, want %q", got, tc.summary)
			}
		})
	}
}

// TestSpeakAttribution: a speak names the utterance it answers only when that
// utterance is the routed client's and still pending.
func TestSpeakAttribution(t *testing.T) {
	b, _, pub := newBridge(t, Config{RecentUtterances: 2})
	pa := send(t, b, "alice", "sess-a", "one", true)
	pb := send(t, b, "bob", "sess-b", "two", true)

	uidOf := func() *string {
		t.Helper()
		all := pub.all()
		return speakOf(t, all[len(all)-1].ev).UtteranceID
	}
	// bob's reply carrying alice's utterance id: bob hears it, unattributed,
	// and it neither collects into nor ends alice's utterance.
	b.Dispatch(frame(t, speakFrame("cross", ctxJSON("gateway:bob", "sess-b", pa.ID()))))
	if id := uidOf(); id != nil {
		t.Errorf("cross speak names %q, want null", *id)
	}
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:bob", "sess-b", pa.ID())+`}`))
	for _, e := range pub.all() {
		if e.client == "alice" {
			t.Fatalf("alice got %s from bob's replies", e.ev.Name)
		}
		if e.ev.Name == api.EventDone {
			t.Fatalf("a foreign utterance id ended something: %s", e.ev.Data)
		}
	}
	// An id we never issued names nothing, and does not fall back to the session.
	b.Dispatch(frame(t, speakFrame("stranger", ctxJSON("gateway:alice", "sess-a", "not-ours"))))
	if id := uidOf(); id != nil {
		t.Errorf("unknown utterance id kept: %q", *id)
	}
	// End alice's; a late speak reaches her but names no utterance (done
	// was its utterance's last event), and is not collected.
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", pa.ID())+`}`))
	b.Dispatch(frame(t, speakFrame("later", ctxJSON("gateway:alice", "sess-a", pa.ID()))))
	if all := pub.all(); all[len(all)-1].client != "alice" {
		t.Errorf("late speak went to %s", all[len(all)-1].client)
	}
	if id := uidOf(); id != nil {
		t.Errorf("late speak names %q, want null", *id)
	}
	if res := pa.Wait(context.Background()); res.Status != api.StatusHandled || len(res.Speech) != 0 {
		t.Errorf("alice Wait = %+v, want handled without speech", res)
	}
	// After more utterances end, the memory of alice's is gone (bounded).
	for i := range 3 {
		p := send(t, b, "alice", "sess-a", fmt.Sprint(i), false)
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", p.ID())+`}`))
	}
	b.Dispatch(frame(t, speakFrame("much later", ctxJSON("gateway:alice", "sess-a", pa.ID()))))
	if id := uidOf(); id != nil {
		t.Errorf("speak names forgotten utterance %q", *id)
	}
	if res := pb.Wait(cancelled()); res.Status != api.StatusAccepted {
		t.Errorf("bob's utterance status %q, want still pending", res.Status)
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestSpeakLang: data.lang, else the context's lang, else the utterance's,
// else the default.
func TestSpeakLang(t *testing.T) {
	cases := []struct {
		name, raw, want string
	}{
		{"data", `{"type":"speak","data":{"utterance":"x","lang":"pt-PT"},"context":{"destination":"gateway:alice","lang":"de-DE","utterance_id":"UID"}}`, "pt-PT"},
		{"context", `{"type":"speak","data":{"utterance":"x"},"context":{"destination":"gateway:alice","lang":"de-DE","utterance_id":"UID"}}`, "de-DE"},
		{"utterance", `{"type":"speak","data":{"utterance":"x","lang":7},"context":{"destination":"gateway:alice","utterance_id":"UID"}}`, "fr-FR"},
		{"default", `{"type":"speak","data":{"utterance":"x"},"context":{"destination":"gateway:alice"}}`, "es-es"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _, pub := newBridge(t, Config{DefaultLang: "es-es"})
			p, err := b.Send(context.Background(), Utterance{ClientID: "alice", SessionID: "s", Text: "x", Lang: "fr-FR"}, false)
			if err != nil {
				t.Fatal(err)
			}
			b.Dispatch(frame(t, strings.ReplaceAll(tc.raw, "UID", p.ID())))
			evs := pub.of("alice")
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			if s := speakOf(t, evs[0]); s.Lang != tc.want {
				t.Errorf("lang %q, want %q", s.Lang, tc.want)
			}
		})
	}
}

// TestEndOnce: an utterance ends once, whatever end signals follow; a second
// end signal without utterance id ends the session's next oldest one only when
// that one is still pending (OVOS with a stripped context).
func TestEndOnce(t *testing.T) {
	b, _, pub := newBridge(t, Config{})
	p1 := send(t, b, "alice", "sess-a", "one", false)
	p2 := send(t, b, "alice", "sess-a", "two", false)
	for _, typ := range []string{api.TypeHandlerComplete, api.TypeUtteranceHandled, api.TypeIntentFailure} {
		b.Dispatch(frame(t, `{"type":"`+typ+`","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", p1.ID())+`}`))
	}
	var dones []api.DoneEvent
	for _, ev := range pub.of("alice") {
		if ev.Name == api.EventDone {
			dones = append(dones, doneOf(t, ev))
		}
	}
	if len(dones) != 1 || dones[0] != (api.DoneEvent{UtteranceID: p1.ID(), SessionID: "sess-a", Status: api.StatusHandled}) {
		t.Fatalf("done events %+v, want one handled for %s", dones, p1.ID())
	}
	// Without an utterance id: the session's oldest pending one.
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:alice", "sess-a", "")+`}`))
	if res := p2.Wait(context.Background()); res.Status != api.StatusHandled {
		t.Errorf("second utterance %q, want handled", res.Status)
	}
	if st := b.Stats(); st.Handled != 2 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestForget: logout stops routing by session; deleting a client ends its
// utterances with error and stops routing to it.
func TestForget(t *testing.T) {
	b, _, pub := newBridge(t, Config{})
	pa := send(t, b, "alice", "sess-a", "one", false)
	send(t, b, "bob", "sess-b", "two", false)

	b.ForgetSession("sess-b")
	b.Dispatch(frame(t, `{"type":"x.y","data":{},"context":{"destination":["skills"],"session":{"session_id":"sess-b"}}}`))
	if n := len(pub.of("bob")); n != 0 {
		t.Errorf("forgotten session still routed: %d events", n)
	}
	b.Dispatch(frame(t, `{"type":"x.y","data":{},"context":{"destination":"gateway:bob"}}`))
	if n := len(pub.of("bob")); n != 1 {
		t.Errorf("bob by destination after logout: %d events, want 1", n)
	}

	b.ForgetClient("alice")
	if res := pa.Wait(context.Background()); res.Status != api.StatusError {
		t.Errorf("deleted client's utterance %q, want error", res.Status)
	}
	before := len(pub.of("alice"))
	b.Dispatch(frame(t, speakFrame("hi", ctxJSON("gateway:alice", "sess-a", pa.ID()))))
	if n := len(pub.of("alice")); n != before {
		t.Errorf("deleted client still routed")
	}
}

// TestMessageIsTheFrame: a message event carries the frame as the bus carried
// it, unknown members included, on one line.
func TestMessageIsTheFrame(t *testing.T) {
	b, _, pub := newBridge(t, Config{})
	send(t, b, "alice", "sess-a", "one", false)
	raw := "{\n  \"type\": \"x.y\",\n  \"data\": {\"n\": 1.50, \"s\": \"a\\nb <&>\"},\n  \"context\": {\"destination\": \"gateway:alice\", \"odd\": [1, {\"k\": null}]},\n  \"extra\": true\n}"
	b.Dispatch(frame(t, raw))
	evs := pub.of("alice")
	want := `{"type":"x.y","data":{"n":1.50,"s":"a\nb <&>"},"context":{"destination":"gateway:alice","odd":[1,{"k":null}]},"extra":true}`
	if len(evs) != 1 || string(evs[0].Data) != want {
		t.Fatalf("message %s\nwant %s", evs[0].Data, want)
	}
	if strings.ContainsAny(string(evs[0].Data), "\r\n") || !json.Valid(evs[0].Data) {
		t.Errorf("message data not one line of JSON")
	}
}

// TestDoneIsLast: once an utterance's done is out, no event names it any
// more: speech after a timeout reaches the client with utterance_id null,
// and the end signal that comes after is not forwarded, so a client can
// treat done as the end.
func TestDoneIsLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, pub := newBridge(t, Config{UtteranceTimeout: time.Second})
		p := send(t, b, "alice", "sess-a", "set a timer", true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if res := p.Wait(context.Background()); res.Status != api.StatusTimeout {
			t.Fatalf("status %q, want timeout", res.Status)
		}
		ctx := ctxJSON("gateway:alice", "sess-a", p.ID())
		b.Dispatch(frame(t, speakFrame("Your timer is done", ctx)))
		b.Dispatch(frame(t, `{"type":"mycroft.skill.handler.complete","data":{},"context":`+ctx+`}`))
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctx+`}`))
		evs := pub.of("alice")
		if got := summaries(t, evs); !equal(got, []string{"done:timeout", "speak:Your timer is done"}) {
			t.Fatalf("events %q", got)
		}
		if id := speakOf(t, evs[1]).UtteranceID; id != nil {
			t.Fatalf("speech after done names %q", *id)
		}
	})
}
