package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// utteranceFixtures are the real transcripts of one utterance and the events
// a client must see for each (no event for the bus greeting or the echo of
// our own utterance).
var utteranceFixtures = []struct {
	file   string
	text   string
	want   []string
	status string
	speech []string
}{
	{
		file: "intent-handled.jsonl",
		text: "hello there",
		want: []string{
			"message:hello-intent.peers.activate",
			"message:hello-intent.peers:HelloIntent",
			"message:mycroft.skill.handler.start",
			"speak:Hello from a real ovos-workshop intent skill",
			"message:mycroft.skill.handler.complete",
			"done:handled", // last: the ovos.utterance.handled that follows is not forwarded
		},
		status: api.StatusHandled,
		speech: []string{"Hello from a real ovos-workshop intent skill"},
	},
	{
		file: "intent-failure.jsonl",
		text: "what is the airspeed of a swallow",
		want: []string{
			"message:mycroft.audio.play_sound",
			"message:complete_intent_failure",
			"done:intent_failure",
		},
		status: api.StatusIntentFailure,
	},
	{
		file: "fallback-handled.jsonl",
		text: "hello there",
		want: []string{
			"message:ovos.skills.fallback.ping",
			"message:ovos.skills.fallback.pong",
			"message:ovos.skills.fallback.hello-fallback.peers.request",
			"message:ovos.skills.fallback.hello-fallback.peers.start",
			"speak:Hello from a real ovos-workshop fallback skill",
			"message:ovos.skills.fallback.hello-fallback.peers.response",
			"message:ovos.utterance.handled",
			"done:handled",
		},
		status: api.StatusHandled,
		speech: []string{"Hello from a real ovos-workshop fallback skill"},
	},
	{
		file: "fallback-none-failure.jsonl",
		text: "what is the airspeed of a swallow",
		want: []string{
			"message:ovos.skills.fallback.ping",
			"message:ovos.skills.fallback.pong",
			"message:mycroft.audio.play_sound",
			"message:complete_intent_failure",
			"done:intent_failure",
		},
		status: api.StatusIntentFailure,
	},
}

// TestFixtures replays each real transcript as if it answered our utterance:
// once as recorded (no utterance id in the context: routing by destination and
// session), once with our utterance id carried in the context as OVOS does.
func TestFixtures(t *testing.T) {
	for _, fx := range utteranceFixtures {
		for _, withID := range []bool{false, true} {
			name := fx.file + "/as-recorded"
			if withID {
				name = fx.file + "/with-utterance-id"
			}
			t.Run(name, func(t *testing.T) {
				lines := loadFixture(t, fx.file)
				b, bus, pub := newBridge(t, Config{})
				p := send(t, b, "alice", "sess-a", fx.text, true)

				// What we sent has the recorded frame's shape, with our names.
				sentRec := frame(t, rewrite(lines[0].Frame, "alice", "sess-a", ""))
				sent := bus.last(t)
				if sent.Type != sentRec.Type {
					t.Fatalf("sent type %q, recorded %q", sent.Type, sentRec.Type)
				}
				if !bytes.Equal(sent.Data, sentRec.Data) {
					t.Errorf("sent data %s, recorded %s", sent.Data, sentRec.Data)
				}
				c := ctxOf(t, sent)
				if !equalNames(c.Source, sentRec.Route.Source) || !equalNames(c.Destination, sentRec.Route.Destination) ||
					c.Session.SessionID != sentRec.Route.SessionID {
					t.Errorf("sent context %+v, recorded route %+v", c, sentRec.Route)
				}
				if c.UtteranceID != p.ID() || c.ClientName != "ALICE" || c.Session.Lang != "en-US" {
					t.Errorf("sent context %+v, want utterance %s, name ALICE, lang en-US", c, p.ID())
				}

				uid := ""
				if withID {
					uid = p.ID()
				}
				raws := received(t, lines, "alice", "sess-a", uid)
				for _, raw := range raws {
					b.Dispatch(frame(t, raw))
				}
				evs := pub.of("alice")
				if got := summaries(t, evs); !equal(got, fx.want) {
					t.Fatalf("events\n got %q\nwant %q", got, fx.want)
				}
				if all := pub.all(); len(all) != len(evs) {
					t.Errorf("%d events for other clients", len(all)-len(evs))
				}
				// Each message event is the frame exactly as the bus carried it;
				// end signals after done are not forwarded.
				msgs, forwarded, dropped := 0, 0, 0
				for _, ev := range evs {
					if ev.Name == api.EventMessage {
						forwarded++
					}
				}
				for _, raw := range raws {
					f := frame(t, raw)
					if f.Type == api.TypeSpeak || f.Type == api.TypeConnected || f.Type == api.TypeUtterance {
						continue
					}
					if msgs == forwarded {
						if endStatus(f.Type) == "" {
							t.Errorf("%s after done was not forwarded", f.Type)
						}
						dropped++
						continue
					}
					var want bytes.Buffer
					_ = json.Compact(&want, []byte(raw))
					if !bytes.Equal(evs[indexOfMessage(t, evs, msgs)].Data, want.Bytes()) {
						t.Errorf("message %d is not the frame as carried", msgs)
					}
					msgs++
				}
				for _, ev := range evs {
					switch ev.Name {
					case api.EventSpeak:
						s := speakOf(t, ev)
						if s.UtteranceID == nil || *s.UtteranceID != p.ID() || s.Lang != "en-US" || s.ExpectResponse {
							t.Errorf("speak %+v, want utterance %s, lang en-US", s, p.ID())
						}
					case api.EventDone:
						if d := doneOf(t, ev); d.UtteranceID != p.ID() {
							t.Errorf("done for %q, want %q", d.UtteranceID, p.ID())
						}
					}
				}
				res := p.Wait(context.Background())
				if res.Status != fx.status || res.ID != p.ID() || res.ClientID != "alice" || res.SessionID != "sess-a" {
					t.Errorf("Wait = %+v, want status %s", res, fx.status)
				}
				var said []string
				for _, s := range res.Speech {
					said = append(said, s.Utterance)
				}
				if !equal(said, fx.speech) {
					t.Errorf("speech %q, want %q", said, fx.speech)
				}
				if st := b.Stats(); st.Pending != 0 || st.Ignored != uint64(2+dropped) || st.Unrouted != 0 {
					t.Errorf("stats %+v: want nothing pending, %d ignored (greeting, echo, end signals after done), nothing unrouted", st, 2+dropped)
				}
			})
		}
	}
}

func indexOfMessage(t *testing.T, evs []api.Event, n int) int {
	t.Helper()
	for i, ev := range evs {
		if ev.Name == api.EventMessage {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("fewer message events than expected")
	return 0
}

func equalNames(a, b api.Names) bool { return equal(a, b) }

// TestFixturesInterleaved plays the same transcript for two clients at once,
// frame by frame interleaved (same texts, same skills), in both orders: each
// client sees exactly its own replies.
func TestFixturesInterleaved(t *testing.T) {
	for _, fx := range utteranceFixtures {
		for _, withID := range []bool{false, true} {
			t.Run(fx.file, func(t *testing.T) {
				lines := loadFixture(t, fx.file)
				b, _, pub := newBridge(t, Config{})
				pa := send(t, b, "alice", "sess-a", fx.text, true)
				pb := send(t, b, "bob", "sess-b", fx.text, true)
				ua, ub := "", ""
				if withID {
					ua, ub = pa.ID(), pb.ID()
				}
				ra := received(t, lines, "alice", "sess-a", ua)
				rb := received(t, lines, "bob", "sess-b", ub)
				// bob's replies run one frame ahead: his utterance ends first.
				for i := range len(ra) + 1 {
					if i < len(rb) {
						b.Dispatch(frame(t, rb[i]))
					}
					if i > 0 {
						b.Dispatch(frame(t, ra[i-1]))
					}
				}
				for _, c := range []struct {
					client string
					p      *Pending
				}{{"alice", pa}, {"bob", pb}} {
					evs := pub.of(c.client)
					if got := summaries(t, evs); !equal(got, fx.want) {
						t.Errorf("%s: events\n got %q\nwant %q", c.client, got, fx.want)
					}
					for _, ev := range evs {
						switch ev.Name {
						case api.EventSpeak:
							if s := speakOf(t, ev); s.UtteranceID == nil || *s.UtteranceID != c.p.ID() {
								t.Errorf("%s: speak for %v, want %s", c.client, s.UtteranceID, c.p.ID())
							}
						case api.EventDone:
							if d := doneOf(t, ev); d.UtteranceID != c.p.ID() {
								t.Errorf("%s: done for %s, want %s", c.client, d.UtteranceID, c.p.ID())
							}
						case api.EventMessage:
							var m struct {
								Context sentContext `json:"context"`
							}
							mustJSON(t, ev.Data, &m)
							if m.Context.Session.SessionID != "sess-"+c.client[:1] {
								t.Errorf("%s got a message of session %q", c.client, m.Context.Session.SessionID)
							}
						}
					}
					if res := c.p.Wait(context.Background()); res.Status != fx.status || len(res.Speech) != len(fx.speech) {
						t.Errorf("%s: Wait = %+v, want %s with %d speech", c.client, res, fx.status, len(fx.speech))
					}
				}
			})
		}
	}
}

// TestFixtureIntentGet answers a dry run with the real transcripts: the reply
// is found (by destination, as recorded; by utterance id, as OVOS keeps it),
// parsed, and none of the dry run's traffic reaches the client's stream.
func TestFixtureIntentGet(t *testing.T) {
	cases := []struct {
		file string
		want Intent
	}{
		{"intent-get-adapt.jsonl", Intent{
			Name: "hello-intent.peers:HelloIntent", Type: "hello-intent.peers:HelloIntent",
			SkillID: "hello-intent.peers", Service: "ovos-adapt-pipeline-plugin-medium",
		}},
		{"intent-get-fallback.jsonl", Intent{
			Name: "ovos.skills.fallback.hello-fallback.peers.request", Type: "",
			SkillID: "hello-fallback.peers", Service: "ovos-fallback-pipeline-plugin-medium",
		}},
	}
	for _, tc := range cases {
		for _, withID := range []bool{false, true} {
			t.Run(tc.file, func(t *testing.T) {
				lines := loadFixture(t, tc.file)
				b, bus, pub := newBridge(t, Config{})
				send(t, b, "alice", "sess-a", "something else", false) // alice is known
				before := len(pub.all())
				bus.onRequest = func(m api.Message) {
					uid := ""
					if withID {
						uid = ctxOf(t, m).UtteranceID
					}
					bus.replies = nil
					for _, raw := range received(t, lines, "alice", "sess-a", uid) {
						f := frame(t, raw)
						bus.replies = append(bus.replies, f)
						b.Dispatch(f) // the bus reader sees them too
					}
				}
				in, err := b.Intent(context.Background(), Utterance{
					ClientID: "alice", SessionID: "sess-a", Text: "hello there", Lang: "en-US",
				})
				if err != nil {
					t.Fatalf("Intent: %v", err)
				}
				if in == nil {
					t.Fatal("Intent = nil, want a match")
				}
				if !sameIntent(*in, tc.want) {
					t.Errorf("Intent = %+v, want %+v", *in, tc.want)
				}
				if !json.Valid(in.Raw) || in.Raw[0] != '{' {
					t.Errorf("Raw %s is not the intent object", in.Raw)
				}
				sent := bus.last(t)
				c := ctxOf(t, sent)
				var d struct{ Utterance, Lang string }
				mustJSON(t, sent.Data, &d)
				if sent.Type != api.TypeIntentGet || d.Utterance != "hello there" || d.Lang != "en-US" ||
					!c.Source.Has("gateway:alice") || !c.Destination.Has("skills") ||
					c.Session.SessionID != "sess-a" || c.UtteranceID == "" {
					t.Errorf("sent %s %s %s", sent.Type, sent.Data, sent.Context)
				}
				if withID {
					if after := pub.all(); len(after) != before {
						t.Errorf("dry run traffic reached the stream: %d events", len(after)-before)
					}
				}
				if st := b.Stats(); st.DryRuns != 1 || st.DryRunFailures != 0 || st.Pending != 1 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}
