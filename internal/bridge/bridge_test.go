package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
)

func TestNew(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		bus  Bus
		pub  Publisher
		ok   bool
	}{
		{"defaults", Config{}, &fakeBus{}, &recPub{}, true},
		{"nil bus", Config{}, nil, &recPub{}, false},
		{"nil publisher", Config{}, &fakeBus{}, nil, false},
		{"negative timeout", Config{UtteranceTimeout: -time.Second}, &fakeBus{}, &recPub{}, false},
		{"negative bound", Config{MaxPending: -1}, &fakeBus{}, &recPub{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg, tc.bus, tc.pub)
			if (err == nil) != tc.ok {
				t.Fatalf("New error %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (b.cfg.UtteranceTimeout != DefaultUtteranceTimeout || b.cfg.IntentTimeout != DefaultIntentTimeout ||
				b.cfg.DefaultLang != api.DefaultLang || b.cfg.MaxPending != DefaultMaxPending) {
				t.Errorf("defaults not filled: %+v", b.cfg)
			}
		})
	}
}

// TestSendContext: what goes on the bus (docs/protocol.md, "The bus bridge").
func TestSendContext(t *testing.T) {
	b, bus, _ := newBridge(t, Config{})
	p, err := b.Send(context.Background(), Utterance{
		ClientID: "kitchen", ClientName: "Kitchen speaker", SessionID: "s-1", Text: "turn on the light",
		BlacklistedIntents: []string{"lights.skill:OffIntent"},
		BlacklistedSkills:  []string{"alarm.skill"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	m := bus.last(t)
	if m.Type != api.TypeUtterance || string(m.Data) != `{"utterances":["turn on the light"],"lang":"en-us"}` {
		t.Errorf("sent %s %s", m.Type, m.Data)
	}
	c := ctxOf(t, m)
	if len(c.Source) != 1 || c.Source[0] != "gateway:kitchen" || len(c.Destination) != 1 || c.Destination[0] != "skills" ||
		c.ClientName != "Kitchen speaker" || c.Session.SessionID != "s-1" || c.Session.Lang != "en-us" ||
		len(c.Session.BlacklistedIntents) != 1 || len(c.Session.BlacklistedSkills) != 1 || c.UtteranceID != p.ID() {
		t.Errorf("context %s", m.Context)
	}
	// Without blacklisted intents the member is absent.
	send(t, b, "kitchen", "s-1", "again", false)
	if ctx := string(bus.last(t).Context); strings.Contains(ctx, "blacklisted_intents") || strings.Contains(ctx, "blacklisted_skills") {
		t.Errorf("context %s has an empty blacklist", ctx)
	}
	// Ids are fresh and url-safe.
	if p2 := send(t, b, "kitchen", "s-1", "again", false); p2.ID() == p.ID() || strings.ContainsAny(p.ID(), "+/=") || len(p.ID()) < 20 {
		t.Errorf("ids %q %q", p.ID(), p2.ID())
	}
}

func TestSendInvalid(t *testing.T) {
	cases := []struct {
		name string
		u    Utterance
	}{
		{"no client", Utterance{SessionID: "s", Text: "x"}},
		{"no session", Utterance{ClientID: "a", Text: "x"}},
		{"default session", Utterance{ClientID: "a", SessionID: "default", Text: "x"}},
		{"empty text", Utterance{ClientID: "a", SessionID: "s", Text: " \n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, bus, _ := newBridge(t, Config{})
			if _, err := b.Send(context.Background(), tc.u, false); api.ErrorCode(err) != api.EINVALID {
				t.Errorf("Send error %v, want invalid", err)
			}
			if _, err := b.Intent(context.Background(), tc.u); api.ErrorCode(err) != api.EINVALID {
				t.Errorf("Intent error %v, want invalid", err)
			}
			if len(bus.sent) != 0 {
				t.Errorf("sent %d frames", len(bus.sent))
			}
		})
	}
}

// wantUnavailable checks a refusal: 503 with a Retry-After.
func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.EUNAVAILABLE || e.RetryAfter <= 0 {
		t.Fatalf("error %v, want EUNAVAILABLE with RetryAfter", err)
	}
}

// TestSendRefused: an utterance that cannot go out is refused, and then
// nothing is pending and no done event ever comes (docs/protocol.md: never
// silently dropped).
func TestSendRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*fakeBus, *Bridge)
	}{
		{"link down", func(bus *fakeBus, _ *Bridge) { bus.down.Store(true) }},
		{"write fails", func(bus *fakeBus, _ *Bridge) { bus.sendErr = errors.New("broken pipe") }},
		{"link drops during the write", func(bus *fakeBus, b *Bridge) {
			bus.onSend = func(api.Message) error { b.LinkDown(); return errors.New("closed") }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, bus, pub := newBridge(t, Config{})
			tc.setup(bus, b)
			p, err := b.Send(context.Background(), Utterance{ClientID: "a", SessionID: "s", Text: "x"}, true)
			wantUnavailable(t, err)
			if p != nil {
				t.Error("a refused utterance returned a Pending")
			}
			b.LinkDown()
			if st := b.Stats(); st.Pending != 0 || st.Refused != 1 || st.Sent != 0 {
				t.Errorf("stats %+v", st)
			}
			if evs := pub.all(); len(evs) != 0 {
				t.Errorf("published %d events for a refused utterance", len(evs))
			}
		})
	}
}

// TestSendRaces: the link drops, or the answer arrives, while the frame is
// being written (after it went out).
func TestSendRaces(t *testing.T) {
	t.Run("link drops after the write", func(t *testing.T) {
		b, bus, pub := newBridge(t, Config{})
		bus.onSend = func(api.Message) error { b.LinkDown(); return nil }
		p := send(t, b, "a", "s", "x", false)
		if res := p.Wait(context.Background()); res.Status != api.StatusError {
			t.Errorf("status %q, want error", res.Status)
		}
		if got := summaries(t, pub.of("a")); !equal(got, []string{"done:error"}) {
			t.Errorf("events %q", got)
		}
	})
	t.Run("answer before the write returns", func(t *testing.T) {
		b, bus, pub := newBridge(t, Config{})
		bus.onSend = func(m api.Message) error {
			b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", ctxOf(t, m).UtteranceID)+`}`))
			return errors.New("reported late")
		}
		p := send(t, b, "a", "s", "x", false)
		if res := p.Wait(context.Background()); res.Status != api.StatusHandled {
			t.Errorf("status %q, want handled", res.Status)
		}
		if got := summaries(t, pub.of("a")); !equal(got, []string{"message:ovos.utterance.handled", "done:handled"}) {
			t.Errorf("events %q", got)
		}
	})
}

func TestMaxPending(t *testing.T) {
	b, _, _ := newBridge(t, Config{MaxPending: 2})
	p := send(t, b, "a", "s", "1", false)
	send(t, b, "b", "t", "2", false)
	_, err := b.Send(context.Background(), Utterance{ClientID: "c", SessionID: "u", Text: "3"}, false)
	wantUnavailable(t, err)
	_, err = b.Intent(context.Background(), Utterance{ClientID: "c", SessionID: "u", Text: "3"})
	wantUnavailable(t, err)
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
	send(t, b, "c", "u", "3", false)
}

// TestTimeout: an utterance with no end signal ends "timeout" after
// UtteranceTimeout, once; one that ended in time gets no second done.
func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, pub := newBridge(t, Config{UtteranceTimeout: 10 * time.Second})
		slow := send(t, b, "a", "s", "slow", true)
		quick := send(t, b, "a", "s", "quick", true)
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", quick.ID())+`}`))

		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if res := slow.Wait(cancelled()); res.Status != api.StatusAccepted {
			t.Fatalf("ended early: %q", res.Status)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if res := slow.Wait(context.Background()); res.Status != api.StatusTimeout {
			t.Errorf("status %q, want timeout", res.Status)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		var dones []api.DoneEvent
		for _, ev := range pub.of("a") {
			if ev.Name == api.EventDone {
				dones = append(dones, doneOf(t, ev))
			}
		}
		want := []api.DoneEvent{{UtteranceID: quick.ID(), SessionID: "s", Status: api.StatusHandled}, {UtteranceID: slow.ID(), SessionID: "s", Status: api.StatusTimeout}}
		if len(dones) != 2 || dones[0] != want[0] || dones[1] != want[1] {
			t.Errorf("done events %+v, want %+v", dones, want)
		}
		if st := b.Stats(); st.Timeout != 1 || st.Handled != 1 || st.Pending != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestLinkDown: every pending utterance ends at once with "error"; later
// replies for them are only messages.
func TestLinkDown(t *testing.T) {
	b, _, pub := newBridge(t, Config{})
	pa := send(t, b, "a", "s", "1", true)
	pb := send(t, b, "b", "t", "2", true)
	b.LinkDown()
	for _, p := range []*Pending{pa, pb} {
		if res := p.Wait(context.Background()); res.Status != api.StatusError {
			t.Errorf("%s: status %q, want error", p.clientID, res.Status)
		}
	}
	// The end signal that comes after all is not forwarded: done stays the
	// utterance's last event.
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", pa.ID())+`}`))
	b.LinkDown()
	if got := summaries(t, pub.of("a")); !equal(got, []string{"done:error"}) {
		t.Errorf("a: events %q", got)
	}
	if got := summaries(t, pub.of("b")); !equal(got, []string{"done:error"}) {
		t.Errorf("b: events %q", got)
	}
	if st := b.Stats(); st.Error != 2 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWaitAwaitingResponse: a follow-up question returns the wait with
// "awaiting_response"; the utterance stays pending until its end signal.
func TestWaitAwaitingResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, pub := newBridge(t, Config{})
		p := send(t, b, "a", "s", "set a timer", true)
		got := make(chan string, 1)
		go func() { got <- p.Wait(context.Background()).Status }()
		b.Dispatch(frame(t, speakFrame("Sure.", ctxJSON("gateway:a", "s", p.ID()))))
		synctest.Wait()
		select {
		case s := <-got:
			t.Fatalf("Wait returned %q on a plain speak", s)
		default:
		}
		b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"For how long?","expect_response":true},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
		synctest.Wait()
		if s := <-got; s != api.StatusAwaitingResponse {
			t.Errorf("status %q, want awaiting_response", s)
		}
		res := p.Wait(context.Background())
		if res.Status != api.StatusAwaitingResponse || len(res.Speech) != 2 || res.Speech[1] != (api.Speech{Utterance: "For how long?", ExpectResponse: true}) {
			t.Errorf("Wait = %+v", res)
		}
		if st := b.Stats(); st.Pending != 1 {
			t.Errorf("pending %d, want 1", st.Pending)
		}
		b.Dispatch(frame(t, `{"type":"mycroft.skill.handler.complete","data":{},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
		if res := p.Wait(context.Background()); res.Status != api.StatusHandled {
			t.Errorf("after the answer: %q, want handled", res.Status)
		}
		evs := pub.of("a")
		if s := speakOf(t, evs[1]); !s.ExpectResponse {
			t.Error("speak event lost expect_response")
		}
		if d := doneOf(t, evs[len(evs)-1]); d.Status != api.StatusHandled {
			t.Errorf("last event %+v", d)
		}
	})
}

// TestWaitContextEnds: the wait gives up with "accepted" and the speech so
// far; the done event still comes later on the stream.
func TestWaitContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, pub := newBridge(t, Config{})
		p := send(t, b, "a", "s", "tell me a story", true)
		b.Dispatch(frame(t, speakFrame("Once upon a time", ctxJSON("gateway:a", "s", p.ID()))))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		res := p.Wait(ctx)
		if res.Status != api.StatusAccepted || len(res.Speech) != 1 || res.Speech[0].Utterance != "Once upon a time" {
			t.Errorf("Wait = %+v", res)
		}
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
		if got := summaries(t, pub.of("a")); !equal(got, []string{"speak:Once upon a time", "message:ovos.utterance.handled", "done:handled"}) {
			t.Errorf("events %q", got)
		}
	})
}

// TestCollectOff: without collect, no speech is kept.
func TestCollectOff(t *testing.T) {
	b, _, _ := newBridge(t, Config{})
	p := send(t, b, "a", "s", "x", false)
	b.Dispatch(frame(t, speakFrame("hi", ctxJSON("gateway:a", "s", p.ID()))))
	if res := p.Wait(cancelled()); res.Speech == nil || len(res.Speech) != 0 {
		t.Errorf("speech %#v, want empty (not null)", res.Speech)
	}
}

// TestObserve: latencies are reported once per utterance.
func TestObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		b, _, _ := newBridge(t, Config{Observe: func(ev string, d time.Duration) {
			got = append(got, ev+" "+d.String())
		}})
		p := send(t, b, "a", "s", "x", false)
		time.Sleep(40 * time.Millisecond)
		b.Dispatch(frame(t, speakFrame("one", ctxJSON("gateway:a", "s", p.ID()))))
		b.Dispatch(frame(t, speakFrame("two", ctxJSON("gateway:a", "s", p.ID()))))
		time.Sleep(10 * time.Millisecond)
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
		if !equal(got, []string{"speak 40ms", "done 50ms"}) {
			t.Errorf("observed %q", got)
		}
	})
}

// TestRunCloses: when Run's context ends, pending utterances end with error,
// and Send refuses.
func TestRunCloses(t *testing.T) {
	bus, pub := &fakeBus{}, &recPub{}
	b, err := New(Config{}, bus, pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	p := send(t, b, "a", "s", "x", false)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if res := p.Wait(context.Background()); res.Status != api.StatusError {
		t.Errorf("status %q, want error", res.Status)
	}
	_, err = b.Send(context.Background(), Utterance{ClientID: "a", SessionID: "s", Text: "x"}, false)
	wantUnavailable(t, err)
}

// TestMaxSessions: the least recently used session is forgotten first.
func TestMaxSessions(t *testing.T) {
	b, _, pub := newBridge(t, Config{MaxSessions: 2})
	send(t, b, "a", "s1", "x", false)
	send(t, b, "a", "s2", "x", false)
	send(t, b, "a", "s1", "x", false) // s1 used last
	send(t, b, "b", "s3", "x", false) // evicts s2
	for _, sid := range []string{"s1", "s2", "s3"} {
		b.Dispatch(frame(t, `{"type":"x.`+sid+`","data":{},"context":{"session":{"session_id":"`+sid+`"}}}`))
	}
	got := summaries(t, pub.of("a"))
	got = append(got, summaries(t, pub.of("b"))...)
	if !equal(got, []string{"message:x.s1", "message:x.s3"}) {
		t.Errorf("events %q", got)
	}
}

// TestSendRefusalKeepsItsCause: the write's error is the refusal's cause,
// for the access log (api.Error.Cause), while the caller's detail stays
// the same.
func TestSendRefusalKeepsItsCause(t *testing.T) {
	b, bus, _ := newBridge(t, Config{})
	pipe := errors.New("broken pipe")
	bus.sendErr = pipe
	_, err := b.Send(context.Background(), Utterance{ClientID: "a", SessionID: "s", Text: "x"}, true)
	wantUnavailable(t, err)
	if !errors.Is(err, pipe) {
		t.Errorf("error %v does not keep the write's error as its cause", err)
	}
	if got := api.ErrorDetail(err); got != "the assistant's messagebus is unavailable" {
		t.Errorf("detail %q", got)
	}
}
