package skills

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// loopBus is a minimal in-memory stand-in for the bus connection, for unit
// tests of the frame sequences only (the real bus client is tested against a
// real websocket bus elsewhere): inject delivers a frame to the subscribers
// as the bus reader would; Send records what the skills emit (the real bus
// never echoes our own frames back to us, so neither does this).
type loopBus struct {
	mu      sync.Mutex
	subs    map[int]func(*api.Frame)
	nextID  int
	sent    []api.Message
	failAll error
}

func (b *loopBus) Send(ctx context.Context, m api.Message) error {
	if _, err := m.MarshalJSON(); err != nil {
		return fmt.Errorf("loopBus: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAll != nil {
		return b.failAll
	}
	b.sent = append(b.sent, m)
	return nil
}

func (b *loopBus) Subscribe(fn func(*api.Frame)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[int]func(*api.Frame){}
	}
	b.nextID++
	id := b.nextID
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}

func (b *loopBus) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *loopBus) inject(tb testing.TB, raw string) {
	tb.Helper()
	f, err := busframe.Parse([]byte(raw))
	if err != nil {
		tb.Fatalf("busframe.Parse(%s): %v", raw, err)
	}
	b.mu.Lock()
	fns := make([]func(*api.Frame), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(f)
	}
}

// take returns, and forgets, what the skills sent so far.
func (b *loopBus) take() []api.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.sent
	b.sent = nil
	return out
}

// fixedNow is 15:04 on Wednesday 25 November 2026, UTC.
var fixedNow = time.Date(2026, 11, 25, 15, 4, 0, 0, time.UTC)

// harness runs Skills on a loopBus inside a synctest bubble.
type harness struct {
	t    *testing.T
	bus  *loopBus
	s    *Skills
	stop func()
}

// start must be called inside synctest.Test.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	bus := &loopBus{}
	s, err := New(cfg, bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	synctest.Wait()
	if bus.subscribers() != 1 {
		t.Fatalf("Run did not subscribe")
	}
	h := &harness{t: t, bus: bus, s: s}
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if bus.subscribers() != 0 {
			t.Errorf("Run left its subscription")
		}
	}
	return h
}

// send injects raw frames, waits until the skills are idle (or waiting) and
// returns what they sent.
func (h *harness) send(raws ...string) []seen {
	h.t.Helper()
	for _, raw := range raws {
		h.bus.inject(h.t, raw)
	}
	synctest.Wait()
	return h.seen()
}

func (h *harness) seen() []seen {
	h.t.Helper()
	var out []seen
	for _, m := range h.bus.take() {
		data, err := decodeObject(m.Data)
		if err != nil {
			h.t.Fatalf("%s: data: %v", m.Type, err)
		}
		ctx, err := decodeObject(m.Context)
		if err != nil {
			h.t.Fatalf("%s: context: %v", m.Type, err)
		}
		out = append(out, seen{Type: m.Type, Data: data, Ctx: ctx})
	}
	return out
}

// seen is one frame the skills sent, decoded.
type seen struct {
	Type string
	Data map[string]any
	Ctx  map[string]any
}

func (s seen) session() map[string]any {
	m, _ := s.Ctx[ctxSession].(map[string]any)
	return m
}

func types(frames []seen) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.Type
	}
	return out
}

func wantTypes(t *testing.T, frames []seen, want ...string) {
	t.Helper()
	if got := types(frames); !reflect.DeepEqual(got, want) {
		t.Fatalf("frame types:\n got %q\nwant %q", got, want)
	}
}

// client is one gateway client on the bus: its source id, session and the
// context members the gateway adds.
type client struct {
	source    string
	sessionID string
	session   map[string]any // extra session members
}

var (
	kitchen = client{source: "gateway:kitchen", sessionID: "sess-kitchen"}
	garage  = client{source: "gateway:garage", sessionID: "sess-garage"}
)

func (c client) ctx(utteranceID string) map[string]any {
	sess := map[string]any{"session_id": c.sessionID, "blacklisted_intents": []any{}, "site_id": "unknown"}
	for k, v := range c.session {
		sess[k] = v
	}
	return map[string]any{
		"source":       c.source,
		"destination":  []any{"skills"},
		"session":      sess,
		"utterance_id": utteranceID,
		"client_name":  "Client " + c.source,
	}
}

func (c client) utterance(t *testing.T, text, utteranceID string) string {
	t.Helper()
	return mustJSON(t, map[string]any{
		"type":    api.TypeUtterance,
		"data":    map[string]any{"utterances": []any{text}, "lang": "en-US"},
		"context": c.ctx(utteranceID),
	})
}

func (c client) intentGet(t *testing.T, text string) string {
	t.Helper()
	ctx := c.ctx("get-1")
	ctx["destination"] = []any{"intents"}
	return mustJSON(t, map[string]any{
		"type":    api.TypeIntentGet,
		"data":    map[string]any{"utterance": text, "lang": "en-US"},
		"context": ctx,
	})
}

// wantRoute checks that a frame is a reply to c's utterance utteranceID:
// destination swapped to c's source (a string), source the list we sent as
// destination, session and unknown members carried through.
func wantRoute(t *testing.T, f seen, c client, utteranceID string) {
	t.Helper()
	if f.Ctx[ctxDestination] != c.source {
		t.Errorf("%s: destination = %#v, want %q", f.Type, f.Ctx[ctxDestination], c.source)
	}
	if !reflect.DeepEqual(f.Ctx[ctxSource], []any{"skills"}) {
		t.Errorf("%s: source = %#v, want [\"skills\"]", f.Type, f.Ctx[ctxSource])
	}
	wantCarried(t, f, c, utteranceID)
}

func wantCarried(t *testing.T, f seen, c client, utteranceID string) {
	t.Helper()
	if f.Ctx["utterance_id"] != utteranceID {
		t.Errorf("%s: utterance_id = %#v, want %q", f.Type, f.Ctx["utterance_id"], utteranceID)
	}
	if f.Ctx["client_name"] != "Client "+c.source {
		t.Errorf("%s: client_name = %#v", f.Type, f.Ctx["client_name"])
	}
	sess := f.session()
	if sess["session_id"] != c.sessionID {
		t.Errorf("%s: session_id = %#v, want %q", f.Type, sess["session_id"], c.sessionID)
	}
	for k, v := range c.ctx(utteranceID)[ctxSession].(map[string]any) {
		if !jsonEqual(t, sess[k], v) {
			t.Errorf("%s: session.%s = %v, want %v", f.Type, k, sess[k], v)
		}
	}
}

// wantOVOSContext checks what ovos-core adds: context.lang, context.skill_id
// (skillID "" means absent) and session.lang.
func wantOVOSContext(t *testing.T, f seen, skillID string) {
	t.Helper()
	if f.Ctx[ctxLang] != "en-US" {
		t.Errorf("%s: context.lang = %#v", f.Type, f.Ctx[ctxLang])
	}
	if got, ok := f.Ctx[ctxSkillID]; skillID == "" && ok || skillID != "" && got != skillID {
		t.Errorf("%s: context.skill_id = %#v, want %q", f.Type, got, skillID)
	}
	if f.session()["lang"] != "en-US" {
		t.Errorf("%s: session.lang = %#v", f.Type, f.session()["lang"])
	}
}

func wantData(t *testing.T, f seen, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !jsonEqual(t, f.Data[k], v) {
			t.Errorf("%s: data.%s = %s, want %s", f.Type, k, mustJSON(t, f.Data[k]), mustJSON(t, v))
		}
	}
}

func wantSpeak(t *testing.T, f seen, skillID, text string, expect bool) {
	t.Helper()
	if f.Type != api.TypeSpeak {
		t.Fatalf("frame %s, want speak", f.Type)
	}
	wantData(t, f, map[string]any{"utterance": text, "expect_response": expect, "lang": "en-US"})
	meta, _ := f.Data["meta"].(map[string]any)
	if meta["skill"] != skillID || meta["dialog"] == nil {
		t.Errorf("speak meta = %v", meta)
	}
}

func TestMatchedSequenceOVOS(t *testing.T) {
	tests := []struct {
		utterance string
		intent    Intent
		says      string
	}{
		{"Hello there!", Intent{SkillID: SkillGreeting, Name: "HelloIntent", Handler: "GreetingSkill.handle_hello"}, "Hello! How can I help you?"},
		{"good morning", Intent{SkillID: SkillGreeting, Name: "HelloIntent", Handler: "GreetingSkill.handle_hello"}, "Good morning! How can I help you?"},
		{"What time is it?", Intent{SkillID: SkillTime, Name: "TimeIntent", Handler: "TimeSkill.handle_time"}, "It's 3:04 PM."},
		{"what's the date", Intent{SkillID: SkillDate, Name: "DateIntent", Handler: "DateSkill.handle_date"}, "Today is Wednesday, November 25, 2026."},
		{"tell me a joke", Intent{SkillID: SkillJoke, Name: "JokeIntent", Handler: "JokeSkill.handle_joke"}, "Knock knock."},
		{"Say: Hello, <World> & friends!", Intent{SkillID: SkillSay, Name: "SayIntent", Handler: "SaySkill.handle_say"}, "Hello, <World> & friends!"},
	}
	for _, tt := range tests {
		t.Run(tt.utterance, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{Jokes: []string{"Knock knock."}})
				defer h.stop()
				got := h.send(kitchen.utterance(t, tt.utterance, "u1"))
				typ := tt.intent.SkillID + ":" + tt.intent.Name
				wantTypes(t, got, tt.intent.SkillID+".activate", typ, api.TypeHandlerStart, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled)
				for _, f := range got {
					wantRoute(t, f, kitchen, "u1")
					wantOVOSContext(t, f, tt.intent.SkillID)
				}
				wantData(t, got[1], map[string]any{
					"utterances":  []any{tt.utterance},
					"lang":        "en-US",
					"intent_type": typ,
					"utterance":   tt.utterance,
					"target":      nil,
				})
				if c, ok := got[1].Data["confidence"].(json.Number); !ok || c.String() == "0" {
					t.Errorf("confidence = %#v", got[1].Data["confidence"])
				}
				if _, ok := got[1].Data["__tags__"].([]any); !ok {
					t.Errorf("no __tags__: %v", got[1].Data)
				}
				name := map[string]any{"name": tt.intent.Handler}
				wantData(t, got[2], name)
				wantSpeak(t, got[3], tt.intent.SkillID, tt.says, false)
				wantData(t, got[4], name)
				wantData(t, got[5], name)
				if len(got[0].Data) != 0 {
					t.Errorf("activate data = %v, want {}", got[0].Data)
				}
			})
		})
	}
}

// TestMatchedSequenceLikeFixture compares our answer to the real one in
// intent-handled.jsonl member by member (the skill and its words differ).
func TestMatchedSequenceLikeFixture(t *testing.T) {
	lines := loadFixture(t, "intent-handled.jsonl")
	var real []*message
	for _, l := range lines[3:] { // skip what we sent, connected and our echo
		real = append(real, mustMessage(t, l.Frame))
	}
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		got := h.send(string(lines[0].Frame))
		if len(got) != len(real) {
			t.Fatalf("%d frames, real assistant sent %d: %q", len(got), len(real), types(got))
		}
		for i, f := range got {
			r := real[i]
			wantType := strings.Replace(r.Type, "hello-intent.peers", SkillGreeting, 1)
			if f.Type != wantType {
				t.Errorf("frame %d: %s, want %s", i, f.Type, wantType)
			}
			for _, k := range []string{ctxSource, ctxDestination, ctxLang} {
				if !jsonEqual(t, f.Ctx[k], r.Context[k]) {
					t.Errorf("%s: context.%s = %v, real %v", f.Type, k, f.Ctx[k], r.Context[k])
				}
			}
			if _, ok := f.Ctx[ctxSkillID]; !ok {
				t.Errorf("%s: no context.skill_id", f.Type)
			}
			if f.session()["session_id"] != r.sessionID() {
				t.Errorf("%s: session_id %v", f.Type, f.session()["session_id"])
			}
			for k := range r.Data {
				if k == "hello_intent_peersHello" {
					k = "greeting_builtinHello"
				}
				if _, ok := f.Data[k]; !ok && k != "meta" {
					t.Errorf("%s: data lacks %q (has %v)", f.Type, k, f.Data)
				}
			}
		}
		if !jsonEqual(t, got[1].Data["confidence"], real[1].Data["confidence"]) {
			t.Errorf("confidence %v, real Adapt %v", got[1].Data["confidence"], real[1].Data["confidence"])
		}
	})
}

func TestIntentFailureOVOS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		raw := kitchen.utterance(t, "what is the airspeed of a swallow", "u7")
		got := h.send(raw)
		wantTypes(t, got, api.TypePlaySound, api.TypeIntentFailure, api.TypeUtteranceHandled)
		for _, f := range got {
			wantRoute(t, f, kitchen, "u7")
			wantOVOSContext(t, f, "")
		}
		wantData(t, got[0], map[string]any{"uri": "snd/error.mp3"})
		sent := mustMessage(t, []byte(raw))
		if !jsonEqual(t, got[1].Data, sent.Data) {
			t.Errorf("failure data = %v, want the utterance's %v", got[1].Data, sent.Data)
		}
		if len(got[2].Data) != 0 {
			t.Errorf("handled data = %v", got[2].Data)
		}
	})
}

// TestIntentFailureLikeFixture replays intent-failure.jsonl's utterance.
func TestIntentFailureLikeFixture(t *testing.T) {
	lines := loadFixture(t, "intent-failure.jsonl")
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		got := h.send(string(lines[0].Frame))
		real := lines[3:]
		if len(got) != len(real) {
			t.Fatalf("%q: %d frames, real %d", types(got), len(got), len(real))
		}
		for i, l := range real {
			r := mustMessage(t, l.Frame)
			if got[i].Type != r.Type || !jsonEqual(t, got[i].Data, r.Data) {
				t.Errorf("frame %d = %s %v, real %s %v", i, got[i].Type, got[i].Data, r.Type, r.Data)
			}
			for _, k := range []string{ctxSource, ctxDestination, ctxLang, ctxSkillID} {
				if !jsonEqual(t, got[i].Ctx[k], r.Context[k]) {
					t.Errorf("%s: context.%s = %v, real %v", r.Type, k, got[i].Ctx[k], r.Context[k])
				}
			}
		}
	})
}

func TestClassicSequences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dialect: DialectClassic})
		defer h.stop()

		got := h.send(kitchen.utterance(t, "hello", "u1"))
		wantTypes(t, got, IntentHello, api.TypeHandlerStart, api.TypeSpeak, api.TypeHandlerComplete)
		for i, f := range got {
			wantRoute(t, f, kitchen, "u1")
			if _, ok := f.Ctx[ctxLang]; ok {
				t.Errorf("%s: classic context has lang", f.Type)
			}
			if _, ok := f.session()["lang"]; ok {
				t.Errorf("%s: classic session expanded", f.Type)
			}
			if got, ok := f.Ctx[ctxSkillID]; i == 0 && ok || i > 0 && got != SkillGreeting {
				t.Errorf("%s: context.skill_id = %v", f.Type, got)
			}
		}
		wantData(t, got[0], map[string]any{"utterances": []any{"hello"}, "intent_type": IntentHello, "utterance": "hello"})
		if _, ok := got[0].Data["lang"]; ok {
			t.Errorf("classic intent data has lang: %v", got[0].Data)
		}
		wantSpeak(t, got[2], SkillGreeting, "Hello! How can I help you?", false)

		raw := kitchen.utterance(t, "what is the airspeed of a swallow", "u2")
		got = h.send(raw)
		wantTypes(t, got, api.TypeIntentFailure)
		// forward: not swapped, the sender's own source and destination.
		if got[0].Ctx[ctxSource] != kitchen.source || !reflect.DeepEqual(got[0].Ctx[ctxDestination], []any{"skills"}) {
			t.Errorf("failure context source/destination = %v / %v", got[0].Ctx[ctxSource], got[0].Ctx[ctxDestination])
		}
		wantCarried(t, got[0], kitchen, "u2")
		if len(got[0].Data) != 0 {
			t.Errorf("classic failure data = %v, want {}", got[0].Data)
		}
		if sent := mustMessage(t, []byte(raw)); !jsonEqual(t, got[0].Ctx, sent.Context) {
			t.Errorf("forwarded context changed: %v, sent %v", got[0].Ctx, sent.Context)
		}
	})
}

func TestQuizAnswered(t *testing.T) {
	for _, dialect := range []string{DialectOVOS, DialectClassic} {
		t.Run(dialect, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{Dialect: dialect})
				defer h.stop()
				ovos := dialect == DialectOVOS

				got := h.send(kitchen.utterance(t, "Ask me something", "q1"))
				want := []string{IntentQuiz, api.TypeHandlerStart, api.TypeSpeak}
				if ovos {
					want = []string{SkillQuiz + ".activate", IntentQuiz, api.TypeHandlerStart, api.TypeGetResponseEnable, api.TypeSpeak}
				}
				wantTypes(t, got, want...)
				for _, f := range got {
					wantRoute(t, f, kitchen, "q1")
				}
				wantSpeak(t, got[len(got)-1], SkillQuiz, quizQuestion, true)
				if ovos {
					wantData(t, got[3], map[string]any{"skill_id": SkillQuiz})
					wantOVOSContext(t, got[3], SkillQuiz)
				}

				// Another session is answered normally meanwhile.
				other := h.send(garage.utterance(t, "blue", "g1"))
				if len(other) == 0 || other[len(other)-1].Type == api.TypeSpeak {
					t.Fatalf("garage's utterance: %q", types(other))
				}
				for _, f := range other {
					if f.session()["session_id"] != garage.sessionID {
						t.Errorf("garage frame %s in session %v", f.Type, f.session()["session_id"])
					}
				}

				// The kitchen's next utterance is the answer, not an intent:
				// "hello" would otherwise be a greeting.
				got = h.send(kitchen.utterance(t, "hello", "q2"))
				want = []string{api.TypeSpeak, api.TypeHandlerComplete}
				if ovos {
					want = []string{api.TypeGetResponseDisable, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled, api.TypeUtteranceHandled}
				}
				wantTypes(t, got, want...)
				for i, f := range got {
					id := "q1"
					if ovos && i == len(got)-1 {
						id = "q2"
					}
					wantRoute(t, f, kitchen, id)
					if ovos {
						wantOVOSContext(t, f, SkillQuiz)
					}
				}
				speak := got[0]
				if ovos {
					speak = got[1]
					wantData(t, got[0], map[string]any{"skill_id": SkillQuiz})
					wantData(t, got[3], map[string]any{"name": "QuizSkill.handle_quiz"})
					if len(got[4].Data) != 0 {
						t.Errorf("answer's handled data = %v", got[4].Data)
					}
				}
				wantSpeak(t, speak, SkillQuiz, "You said hello. Thank you for answering!", false)

				// Answered once: the next utterance is an intent again.
				got = h.send(kitchen.utterance(t, "hello", "q3"))
				if len(got) == 0 || (ovos && got[1].Type != IntentHello) || (!ovos && got[0].Type != IntentHello) {
					t.Errorf("after the answer: %q", types(got))
				}
			})
		})
	}
}

func TestQuizTimeout(t *testing.T) {
	for _, dialect := range []string{DialectOVOS, DialectClassic} {
		t.Run(dialect, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{Dialect: dialect, ResponseTimeout: 10 * time.Second})
				defer h.stop()
				ovos := dialect == DialectOVOS
				h.send(kitchen.utterance(t, "quiz me", "q1"))

				time.Sleep(10*time.Second - time.Nanosecond)
				synctest.Wait()
				if got := h.seen(); len(got) != 0 {
					t.Fatalf("before the timeout: %q", types(got))
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				got := h.seen()
				want := []string{api.TypeSpeak, api.TypeHandlerComplete}
				if ovos {
					want = []string{api.TypeGetResponseDisable, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled}
				}
				wantTypes(t, got, want...)
				for _, f := range got {
					wantRoute(t, f, kitchen, "q1")
				}
				wantSpeak(t, got[boolInt(ovos)], SkillQuiz, quizTimeout, false)

				// No longer waiting: the next utterance is matched.
				got = h.send(kitchen.utterance(t, "blue", "q2"))
				if len(got) == 0 || got[len(got)-1-boolInt(ovos)].Type != api.TypeIntentFailure {
					t.Errorf("after the timeout: %q", types(got))
				}
			})
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestQuizShutdown: a quiz waiting for its answer ends with Run (synctest
// fails the test if any goroutine is left).
func TestQuizShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		got := h.send(kitchen.utterance(t, "quiz me", "q1"))
		if len(got) == 0 || got[len(got)-1].Type != api.TypeSpeak {
			t.Fatalf("quiz: %q", types(got))
		}
		h.stop()
		if h.s.waiters.has(kitchen.sessionID) {
			t.Error("waiter left behind")
		}
	})
}

func TestBlacklisted(t *testing.T) {
	tests := []struct {
		name      string
		session   map[string]any
		utterance string
		blocked   bool
	}{
		{"intent", map[string]any{"blacklisted_intents": []any{IntentHello}}, "hello", true},
		{"skill", map[string]any{"blacklisted_skills": []any{SkillTime, "skill-ovos-stop.openvoiceos"}}, "what time is it", true},
		{"odd members", map[string]any{"blacklisted_intents": []any{42, IntentJoke, nil}}, "tell me a joke", true},
		{"quiz", map[string]any{"blacklisted_intents": []any{IntentQuiz}}, "quiz me", true},
		{"other intent", map[string]any{"blacklisted_intents": []any{IntentTime}}, "hello", false},
	}
	for _, tt := range tests {
		for _, dialect := range []string{DialectOVOS, DialectClassic} {
			t.Run(tt.name+"/"+dialect, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := start(t, Config{Dialect: dialect})
					defer h.stop()
					c := kitchen
					c.session = tt.session
					got := h.send(c.utterance(t, tt.utterance, "u1"))
					failed := len(got) > 0 && (got[0].Type == api.TypeIntentFailure || got[0].Type == api.TypePlaySound)
					if failed != tt.blocked {
						t.Errorf("real run: %q, blocked = %v", types(got), tt.blocked)
					}
					for _, f := range got {
						wantCarried(t, f, c, "u1")
					}
					got = h.send(c.intentGet(t, tt.utterance))
					wantTypes(t, got, api.TypeIntentReply)
					if (got[0].Data["intent"] == nil) != tt.blocked {
						t.Errorf("dry run intent = %v, blocked = %v", got[0].Data["intent"], tt.blocked)
					}
				})
			})
		}
	}
}

func TestIntentGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()

		got := h.send(kitchen.intentGet(t, "hello there"))
		wantTypes(t, got, api.TypeIntentReply)
		f := got[0]
		if f.Ctx[ctxDestination] != kitchen.source || !reflect.DeepEqual(f.Ctx[ctxSource], []any{"intents"}) {
			t.Errorf("route = %v -> %v", f.Ctx[ctxSource], f.Ctx[ctxDestination])
		}
		wantCarried(t, f, kitchen, "get-1")
		if f.Data["utterance"] != "hello there" {
			t.Errorf("utterance = %v", f.Data["utterance"])
		}
		// The real Adapt answer, for the same utterance.
		var real map[string]any
		for _, l := range loadFixture(t, "intent-get-adapt.jsonl") {
			if m := mustMessage(t, l.Frame); m.Type == api.TypeIntentReply {
				real = m.Data["intent"].(map[string]any)
			}
		}
		intent, _ := f.Data["intent"].(map[string]any)
		if len(intent) != len(real) {
			t.Errorf("intent has %d members, real %d: %v", len(intent), len(real), intent)
		}
		for k, v := range real {
			switch k {
			case "hello_intent_peersHello", "__tags__":
				continue
			case "intent_type", "intent_name":
				v = IntentHello
			case "skill_id":
				v = SkillGreeting
			}
			if !jsonEqual(t, intent[k], v) {
				t.Errorf("intent.%s = %v, real %v", k, intent[k], v)
			}
		}

		got = h.send(kitchen.intentGet(t, "what is the airspeed of a swallow"))
		wantTypes(t, got, api.TypeIntentReply)
		if v, ok := got[0].Data["intent"]; !ok || v != nil {
			t.Errorf("miss: intent = %#v", v)
		}
		if got[0].Data["utterance"] != "what is the airspeed of a swallow" {
			t.Errorf("miss: utterance = %v", got[0].Data["utterance"])
		}

		// Without a session ovos-core uses (and sends back) "default".
		got = h.send(`{"type":"intent.service.intent.get","data":{"utterance":"hello"},"context":{"source":"gw","destination":["intents"]}}`)
		wantTypes(t, got, api.TypeIntentReply)
		if got[0].session()["session_id"] != "default" || got[0].Ctx[ctxDestination] != "gw" {
			t.Errorf("no-session reply context = %v", got[0].Ctx)
		}

		// A query without a string utterance gets no answer.
		if got := h.send(`{"type":"intent.service.intent.get","data":{"utterance":5},"context":{"source":"gw","destination":["intents"]}}`); len(got) != 0 {
			t.Errorf("malformed query answered: %q", types(got))
		}
	})
}

func TestIntentGetClassic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dialect: DialectClassic})
		defer h.stop()
		got := h.send(kitchen.intentGet(t, "what time is it"))
		wantTypes(t, got, api.TypeIntentReply)
		if _, ok := got[0].Data["utterance"]; ok {
			t.Errorf("classic reply has utterance: %v", got[0].Data)
		}
		intent := got[0].Data["intent"].(map[string]any)
		for k, v := range map[string]any{"intent_name": IntentTime, "intent_type": IntentTime, "skill_id": SkillTime, "intent_service": "Adapt", "handler": "match_intent"} {
			if intent[k] != v {
				t.Errorf("intent.%s = %v, want %v", k, intent[k], v)
			}
		}
		got = h.send(kitchen.intentGet(t, "nothing here"))
		if v, ok := got[0].Data["intent"]; !ok || v != nil || len(got[0].Data) != 1 {
			t.Errorf("classic miss = %v", got[0].Data)
		}
	})
}

func TestIsReady(t *testing.T) {
	for _, dialect := range []string{DialectOVOS, DialectClassic} {
		for _, typ := range []string{api.TypeSkillsIsReady, api.TypeIntentsIsReady} {
			t.Run(dialect+"/"+typ, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := start(t, Config{Dialect: dialect})
					defer h.stop()
					got := h.send(`{"type":"` + typ + `","data":{},"context":{"source":"gw","destination":["skills"],"utterance_id":"r1"}}`)
					wantTypes(t, got, typ+".response")
					if !jsonEqual(t, got[0].Data, map[string]any{"status": true}) {
						t.Errorf("data = %v", got[0].Data)
					}
					want := map[string]any{"source": []any{"skills"}, "destination": "gw", "utterance_id": "r1"}
					if !jsonEqual(t, got[0].Ctx, want) {
						t.Errorf("context = %v, want %v", got[0].Ctx, want)
					}
				})
			})
		}
	}
}

// TestConcurrentSessions: two clients' utterances are handled at once; every
// reply goes to its own client, in its own session, whatever the
// interleaving.
func TestConcurrentSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		got := h.send(
			kitchen.utterance(t, "hello", "k1"),
			garage.utterance(t, "what time is it", "g1"),
			kitchen.utterance(t, "tell me a joke", "k2"),
			garage.utterance(t, "what is the airspeed of a swallow", "g2"),
		)
		byUtt := map[string][]seen{}
		for _, f := range got {
			id, _ := f.Ctx["utterance_id"].(string)
			byUtt[id] = append(byUtt[id], f)
		}
		check := func(c client, id string, want ...string) {
			t.Helper()
			wantTypes(t, byUtt[id], want...)
			for _, f := range byUtt[id] {
				wantRoute(t, f, c, id)
			}
		}
		check(kitchen, "k1", SkillGreeting+".activate", IntentHello, api.TypeHandlerStart, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled)
		check(kitchen, "k2", SkillJoke+".activate", IntentJoke, api.TypeHandlerStart, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled)
		check(garage, "g1", SkillTime+".activate", IntentTime, api.TypeHandlerStart, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled)
		check(garage, "g2", api.TypePlaySound, api.TypeIntentFailure, api.TypeUtteranceHandled)
		if len(byUtt) != 4 {
			t.Errorf("replies for %d utterances: %v", len(byUtt), types(got))
		}
	})
}

// TestIgnoredFrames: nothing but utterances, intent queries and readiness
// queries is answered, and malformed utterances are dropped without a panic.
func TestIgnoredFrames(t *testing.T) {
	frames := map[string]string{
		"connected":            `{"type":"connected","data":{},"context":{"session":{"session_id":"default"}}}`,
		"speak":                `{"type":"speak","data":{"utterance":"hello"},"context":{"source":"gw","destination":["skills"]}}`,
		"our handled":          `{"type":"ovos.utterance.handled","data":{},"context":{"source":["skills"],"destination":"gw"}}`,
		"intent message":       `{"type":"greeting.builtin:HelloIntent","data":{"utterances":["hello"]},"context":{}}`,
		"failure":              `{"type":"complete_intent_failure","data":{"utterances":["hello"]},"context":{}}`,
		"fallback ping":        `{"type":"ovos.skills.fallback.ping","data":{"utterances":["hello"]},"context":{}}`,
		"no utterances":        `{"type":"recognizer_loop:utterance","data":{"lang":"en-US"},"context":{"source":"gw","destination":["skills"]}}`,
		"utterances string":    `{"type":"recognizer_loop:utterance","data":{"utterances":"hello"},"context":{"source":"gw","destination":["skills"]}}`,
		"utterances numbers":   `{"type":"recognizer_loop:utterance","data":{"utterances":[1,2]},"context":{"source":"gw","destination":["skills"]}}`,
		"utterances mixed":     `{"type":"recognizer_loop:utterance","data":{"utterances":[null,"hello"]},"context":{}}`,
		"utterances empty":     `{"type":"recognizer_loop:utterance","data":{"utterances":[]},"context":{}}`,
		"utterances null":      `{"type":"recognizer_loop:utterance","data":{"utterances":null},"context":{}}`,
		"intent.get no data":   `{"type":"intent.service.intent.get"}`,
		"intent.get utterance": `{"type":"intent.service.intent.get","data":{"utterance":["hello"]}}`,
	}
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		for name, raw := range frames {
			if got := h.send(raw); len(got) != 0 {
				t.Errorf("%s answered: %q", name, types(got))
			}
		}
		h.s.onFrame(nil)
		// Still working afterwards.
		if got := h.send(kitchen.utterance(t, "hello", "u1")); len(got) != 6 {
			t.Errorf("after the malformed frames: %q", types(got))
		}
	})
}

// TestOddContextsStillAnswered: a context whose members have unexpected
// kinds is carried through as it is.
func TestOddContextsStillAnswered(t *testing.T) {
	tests := map[string]struct {
		raw     string
		wantCtx string
	}{
		"numeric source": {
			`{"type":"recognizer_loop:utterance","data":{"utterances":["hello"]},"context":{"source":7,"destination":["skills"],"session":{"session_id":"s"}}}`,
			`{"source":["skills"],"destination":7}`,
		},
		"session string": {
			`{"type":"recognizer_loop:utterance","data":{"utterances":["what is this"]},"context":{"source":"gw","destination":"skills","session":"odd"}}`,
			`{"source":"skills","destination":"gw","session":"odd"}`,
		},
		"no context": {
			`{"type":"recognizer_loop:utterance","data":{"utterances":["hello"]}}`,
			`{"session":{"session_id":"default"}}`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{})
				defer h.stop()
				got := h.send(tt.raw)
				if len(got) < 3 || got[len(got)-1].Type != api.TypeUtteranceHandled {
					t.Fatalf("frames %q", types(got))
				}
				want := jsonDecode(t, []byte(tt.wantCtx)).(map[string]any)
				for _, f := range got {
					for k, v := range want {
						if k == ctxSession {
							if s, ok := v.(map[string]any); ok {
								if f.session()["session_id"] != s["session_id"] {
									t.Errorf("%s: session = %v", f.Type, f.Ctx[ctxSession])
								}
								continue
							}
						}
						if !reflect.DeepEqual(f.Ctx[k], v) {
							t.Errorf("%s: context.%s = %#v, want %#v", f.Type, k, f.Ctx[k], v)
						}
					}
				}
			})
		})
	}
}

// TestSendFailureStopsSequence: when the bus refuses a frame, the handler
// stops there (no half-answer keeps going) and the skills keep running.
func TestSendFailureStopsSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		h.bus.mu.Lock()
		h.bus.failAll = errors.New("link down")
		h.bus.mu.Unlock()
		if got := h.send(kitchen.utterance(t, "quiz me", "u1")); len(got) != 0 {
			t.Errorf("sent %q through a failing bus", types(got))
		}
		if h.s.waiters.has(kitchen.sessionID) {
			t.Error("quiz waits although its question was never sent")
		}
		h.bus.mu.Lock()
		h.bus.failAll = nil
		h.bus.mu.Unlock()
		if got := h.send(kitchen.utterance(t, "hello", "u2")); len(got) != 6 {
			t.Errorf("after recovery: %q", types(got))
		}
	})
}

func TestJokesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Jokes: []string{"one", "two"}})
		defer h.stop()
		var told []string
		for i := range 3 {
			got := h.send(kitchen.utterance(t, "joke", fmt.Sprint(i)))
			told = append(told, got[3].Data["utterance"].(string))
		}
		if want := []string{"one", "two", "one"}; !reflect.DeepEqual(told, want) {
			t.Errorf("told %q, want %q", told, want)
		}
	})
}

func TestTimeInLocation(t *testing.T) {
	loc := time.FixedZone("UTC-6", -6*3600)
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Location: loc, Now: func() time.Time { return time.Date(2026, 11, 26, 3, 30, 0, 0, time.UTC) }})
		defer h.stop()
		if got := h.send(kitchen.utterance(t, "time", "1")); got[3].Data["utterance"] != "It's 9:30 PM." {
			t.Errorf("time = %v", got[3].Data["utterance"])
		}
		if got := h.send(kitchen.utterance(t, "what day is it", "2")); got[3].Data["utterance"] != "Today is Wednesday, November 25, 2026." {
			t.Errorf("date = %v", got[3].Data["utterance"])
		}
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		bus  Bus
		ok   bool
	}{
		{"zero", Config{}, &loopBus{}, true},
		{"classic", Config{Dialect: DialectClassic}, &loopBus{}, true},
		{"nil bus", Config{}, nil, false},
		{"unknown dialect", Config{Dialect: "hivemind"}, &loopBus{}, false},
		{"negative timeout", Config{ResponseTimeout: -time.Second}, &loopBus{}, false},
		{"empty joke", Config{Jokes: []string{"ok", " "}}, &loopBus{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, tt.bus)
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (s.cfg.ResponseTimeout != DefaultResponseTimeout || s.cfg.Now == nil || s.cfg.Location == nil || len(s.jokes) == 0) {
				t.Errorf("defaults not filled: %+v", s.cfg)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		if err := h.s.Run(context.Background()); err == nil {
			t.Error("second Run succeeded")
		}
	})
}

// TestCountSpeaksThreeTimes: the count skill is the built-in path that
// speaks more than once in one handler, each number its own speak, all
// before the handler completes.
func TestCountSpeaksThreeTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{})
		defer h.stop()
		got := h.send(kitchen.utterance(t, "count to three", "u1"))
		wantTypes(t, got, SkillCount+".activate", IntentCount, api.TypeHandlerStart,
			api.TypeSpeak, api.TypeSpeak, api.TypeSpeak, api.TypeHandlerComplete, api.TypeUtteranceHandled)
		for i, w := range []string{"One.", "Two.", "Three."} {
			wantSpeak(t, got[3+i], SkillCount, w, false)
		}
	})
}
