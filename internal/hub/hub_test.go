package hub

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/ovosgw/gateway/api"
)

// testBase is the id counter's start in tests: the first event id is 1001.
const testBase = 1000

func newTestHub(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.UnixMicro(testBase) }
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(h.Close)
	return h
}

func event(n int) api.Event {
	return api.Event{Name: api.EventMessage, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func publishN(tb testing.TB, h *Server, clientID string, n int) []uint64 {
	tb.Helper()
	ids := make([]uint64, n)
	for i := range n {
		ids[i] = h.Publish(clientID, event(i))
		if ids[i] == 0 {
			tb.Fatalf("Publish %d returned 0", i)
		}
	}
	return ids
}

// frameID reads the id of an encoded frame.
func frameID(tb testing.TB, frame []byte) uint64 {
	tb.Helper()
	s := parseSSE(tb, frame)
	if len(s.Events) != 1 || !s.Events[0].HasID {
		tb.Fatalf("frame %q: want one event with an id", frame)
	}
	id, ok := ParseEventID(s.Events[0].ID)
	if !ok {
		tb.Fatalf("frame %q: bad id", frame)
	}
	return id
}

func frameIDs(tb testing.TB, frames [][]byte) []uint64 {
	tb.Helper()
	var ids []uint64
	for _, f := range frames {
		ids = append(ids, frameID(tb, f))
	}
	return ids
}

// drain returns the frames buffered in s's live channel.
func drain(s *Subscription) [][]byte {
	var out [][]byte
	for {
		select {
		case f := <-s.Events():
			out = append(out, f)
		default:
			return out
		}
	}
}

func span(from, to uint64) []uint64 {
	var ids []uint64
	for id := from; id <= to; id++ {
		ids = append(ids, id)
	}
	return ids
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isDone(s *Subscription) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantErr    bool
		wantWindow int
		wantBuffer int
	}{
		{name: "defaults", cfg: Config{}, wantWindow: DefaultWindow, wantBuffer: DefaultBuffer},
		{name: "explicit", cfg: Config{Window: 3, Buffer: 5}, wantWindow: 3, wantBuffer: 5},
		{name: "negative window", cfg: Config{Window: -1}, wantErr: true},
		{name: "huge window", cfg: Config{Window: MaxWindow + 1}, wantErr: true},
		{name: "negative buffer", cfg: Config{Buffer: -1}, wantErr: true},
		{name: "huge buffer", cfg: Config{Buffer: MaxBuffer + 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if tt.wantErr {
				if err == nil {
					t.Fatal("New accepted a bad config")
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer h.Close()
			if h.window != tt.wantWindow || h.buffer != tt.wantBuffer {
				t.Fatalf("window %d buffer %d, want %d %d", h.window, h.buffer, tt.wantWindow, tt.wantBuffer)
			}
		})
	}
}

func TestIDsStartAtTimeBaseAndGrowAcrossRestarts(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	first := newTestHub(t, Config{Now: func() time.Time { return start }})
	ids := publishN(t, first, "kitchen", 3)
	if want := span(uint64(start.UnixMicro())+1, uint64(start.UnixMicro())+3); !equalIDs(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if other := first.Publish("bedroom", event(0)); other != uint64(start.UnixMicro())+1 {
		t.Fatalf("another client's first id %d, want its own counter from the base", other)
	}
	first.Close()

	// The process restarts one second later: the new ids are greater, and
	// the old id is seen as older than the new window.
	second := newTestHub(t, Config{Now: func() time.Time { return start.Add(time.Second) }})
	id := second.Publish("kitchen", event(0))
	if id <= ids[2] {
		t.Fatalf("id after restart %d, not above %d", id, ids[2])
	}
	s := second.Subscribe("kitchen", "s1", strconv.FormatUint(ids[2], 10))
	defer s.Close()
	if gap, ev := s.Gap(); !gap || ev.FirstEventID != strconv.FormatUint(id, 10) {
		t.Fatalf("gap %v %+v, want a gap starting at %d", gap, ev, id)
	}
}

func TestPublishDeliversOneSharedFrame(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.Subscribe("kitchen", "s1", "")
	b := h.Subscribe("kitchen", "s2", "")
	other := h.Subscribe("bedroom", "s3", "")
	id := h.Publish("kitchen", api.Event{Name: api.EventSpeak, Data: []byte(`{"utterance":"hi","lang":"en-us"}`)})
	if id != testBase+1 {
		t.Fatalf("id %d, want %d", id, testBase+1)
	}
	want := "id: 1001\nevent: speak\ndata: {\"utterance\":\"hi\",\"lang\":\"en-us\"}\n\n"
	fa, fb := drain(a), drain(b)
	if len(fa) != 1 || len(fb) != 1 || string(fa[0]) != want || string(fb[0]) != want {
		t.Fatalf("got %q and %q, want one %q each", fa, fb, want)
	}
	if unsafe.SliceData(fa[0]) != unsafe.SliceData(fb[0]) {
		t.Error("subscribers got two encodings of one event, want the same bytes")
	}
	if got := drain(other); len(got) != 0 {
		t.Fatalf("another client's stream got %q", got)
	}
	st := h.Stats()
	if st.Published != 1 || st.Delivered != 2 || st.Subscribers != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPublishInvalidNameIsDropped(t *testing.T) {
	h := newTestHub(t, Config{})
	s := h.Subscribe("kitchen", "s1", "")
	for _, name := range []string{"", "speak\nevent: ready", "a\rb", "x\x00"} {
		if id := h.Publish("kitchen", api.Event{Name: name, Data: []byte("{}")}); id != 0 {
			t.Fatalf("Publish(%q) = %d, want 0", name, id)
		}
	}
	if got := drain(s); len(got) != 0 {
		t.Fatalf("dropped events reached the stream: %q", got)
	}
	if id := h.Publish("kitchen", event(1)); id != testBase+1 {
		t.Fatalf("next id %d, want %d: a dropped event must not use an id", id, testBase+1)
	}
	if h.Stats().Published != 1 {
		t.Fatalf("stats %+v count dropped events", h.Stats())
	}
}

func TestSubscribeResume(t *testing.T) {
	// Window 4 after 6 events: ids 1001..1006 given, 1003..1006 kept.
	tests := []struct {
		name       string
		last       string
		wantReplay []uint64
		wantGap    bool
		wantFirst  uint64 // FirstEventID of the gap event
		wantResume uint64
	}{
		{name: "no Last-Event-ID", last: "", wantResume: 1006},
		{name: "up to date", last: "1006", wantResume: 1006},
		{name: "two behind", last: "1004", wantReplay: span(1005, 1006), wantResume: 1004},
		{name: "oldest kept", last: "1003", wantReplay: span(1004, 1006), wantResume: 1003},
		{name: "just before the window", last: "1002", wantReplay: span(1003, 1006), wantResume: 1002},
		{name: "rolled out of the window", last: "1001", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "far older", last: "7", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "zero", last: "0", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "another life", last: "1007", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "max uint64", last: "18446744073709551615", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "garbage", last: "abc", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "leading zero", last: "01004", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
		{name: "overflow", last: "99999999999999999999999", wantReplay: span(1003, 1006), wantGap: true, wantFirst: 1003, wantResume: 1002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, Config{Window: 4})
			publishN(t, h, "kitchen", 6)
			s := h.Subscribe("kitchen", "s1", tt.last)
			defer s.Close()
			if got := frameIDs(t, s.Replay()); !equalIDs(got, tt.wantReplay) {
				t.Errorf("replay %v, want %v", got, tt.wantReplay)
			}
			gap, ev := s.Gap()
			if gap != tt.wantGap {
				t.Errorf("gap %v, want %v", gap, tt.wantGap)
			}
			if tt.wantGap {
				want := api.GapEvent{LastEventID: tt.last, FirstEventID: strconv.FormatUint(tt.wantFirst, 10)}
				if len(want.LastEventID) > maxEchoedID {
					want.LastEventID = want.LastEventID[:maxEchoedID]
				}
				if ev != want {
					t.Errorf("gap event %+v, want %+v", ev, want)
				}
			} else if ev != (api.GapEvent{}) {
				t.Errorf("gap event %+v without a gap", ev)
			}
			if s.LastID() != 1006 || s.ResumeID() != tt.wantResume {
				t.Errorf("LastID %d ResumeID %d, want 1006 %d", s.LastID(), s.ResumeID(), tt.wantResume)
			}
			wantGaps := uint64(0)
			if tt.wantGap {
				wantGaps = 1
			}
			if h.Stats().Gaps != wantGaps {
				t.Errorf("Stats().Gaps = %d, want %d", h.Stats().Gaps, wantGaps)
			}
			// Live events follow the replay without overlap.
			h.Publish("kitchen", event(7))
			if got := frameIDs(t, drain(s)); !equalIDs(got, []uint64{1007}) {
				t.Errorf("live %v, want [1007]", got)
			}
		})
	}
}

func TestSubscribeToClientWithoutEvents(t *testing.T) {
	tests := []struct {
		name      string
		last      string
		wantGap   bool
		wantFirst string
	}{
		{name: "fresh", last: ""},
		{name: "id of this life's start", last: "1000"},
		{name: "id of an older life", last: "999", wantGap: true, wantFirst: "1001"},
		{name: "id beyond the newest", last: "1001", wantGap: true, wantFirst: "1001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, Config{Window: 4})
			s := h.Subscribe("kitchen", "s1", tt.last)
			defer s.Close()
			gap, ev := s.Gap()
			if len(s.Replay()) != 0 || gap != tt.wantGap || (gap && ev.FirstEventID != tt.wantFirst) {
				t.Fatalf("replay %d gap %v %+v; want none, %v, first %s", len(s.Replay()), gap, ev, tt.wantGap, tt.wantFirst)
			}
			if s.LastID() != testBase || s.ResumeID() != testBase {
				t.Fatalf("LastID %d ResumeID %d, want %d", s.LastID(), s.ResumeID(), testBase)
			}
		})
	}
}

func TestGapEchoIsBounded(t *testing.T) {
	h := newTestHub(t, Config{})
	long := string(make([]byte, 4096))
	s := h.Subscribe("kitchen", "s1", long)
	defer s.Close()
	if gap, ev := s.Gap(); !gap || len(ev.LastEventID) != maxEchoedID {
		t.Fatalf("gap %v, echoed %d bytes, want %d", gap, len(ev.LastEventID), maxEchoedID)
	}
}

func TestWindowWrapsInOrder(t *testing.T) {
	h := newTestHub(t, Config{Window: 3})
	for n := 1; n <= 10; n++ {
		h.Publish("kitchen", event(n))
		s := h.Subscribe("kitchen", "s1", "1000")
		last := uint64(testBase + n)
		from := max(last-2, testBase+1)
		if got := frameIDs(t, s.Replay()); !equalIDs(got, span(from, last)) {
			t.Fatalf("after %d events replay %v, want %v", n, got, span(from, last))
		}
		s.Close()
	}
}

// TestWindowBoundedInBytes: the window lets its oldest frames go to stay
// within WindowBytes, keeps the newest however large, and a resume from a
// frame it let go is a gap replaying what is left, in order.
func TestWindowBoundedInBytes(t *testing.T) {
	const limit = 1000
	h := newTestHub(t, Config{Window: 100, WindowBytes: limit})
	sizes := []int{100, 300, 50, 400, 200, 900, 10, 2000, 30, 30}
	var ids []uint64
	for i, n := range sizes {
		ids = append(ids, h.Publish("kitchen", api.Event{Name: api.EventMessage, Data: fmt.Appendf(nil, `{"pad":"%s"}`, strings.Repeat("x", n))}))
		s := h.Subscribe("kitchen", "s1", strconv.FormatUint(testBase, 10))
		replay := s.Replay()
		total := 0
		for _, f := range replay {
			total += len(f)
		}
		got := frameIDs(t, replay)
		if len(got) == 0 || got[len(got)-1] != ids[i] {
			t.Fatalf("after %d events the newest is not kept: %v", i+1, got)
		}
		if len(got) > 1 && total > limit {
			t.Fatalf("after %d events the window holds %d bytes in %d frames, limit %d", i+1, total, len(got), limit)
		}
		if !equalIDs(got, span(got[0], ids[i])) {
			t.Fatalf("after %d events replay %v is not the newest in order", i+1, got)
		}
		gap, _ := s.Gap()
		if want := got[0] > ids[0]; gap != want {
			t.Fatalf("after %d events gap %v, want %v (oldest kept %d)", i+1, gap, want, got[0])
		}
		s.Close()
	}
}

func TestReplayAndLiveNeitherMissNorRepeat(t *testing.T) {
	const events = 2000
	// The window holds every event, by count and by bytes: a subscriber
	// that falls behind on a loaded machine (its id read, then descheduled
	// while hundreds of events go out) must still resume without a gap.
	h := newTestHub(t, Config{Window: events, WindowBytes: events << 10, Buffer: events})
	var newest atomic.Uint64
	newest.Store(testBase)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for n := range events {
			newest.Store(h.Publish("kitchen", event(n)))
		}
	}()

	type result struct {
		after  uint64
		frames [][]byte
		gap    bool
	}
	results := make(chan result, 64)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 8 {
				after := newest.Load() - rand.Uint64N(20)
				after = max(after, testBase)
				s := h.Subscribe("kitchen", "s", strconv.FormatUint(after, 10))
				gap, _ := s.Gap()
				r := result{after: after, gap: gap, frames: s.Replay()}
				<-published
				r.frames = append(r.frames, drain(s)...)
				s.Close()
				results <- r
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	count := 0
	for r := range results {
		count++
		if r.gap {
			t.Fatalf("gap resuming after %d", r.after)
		}
		ids := frameIDs(t, r.frames)
		if want := span(r.after+1, testBase+events); !equalIDs(ids, want) {
			t.Fatalf("resuming after %d got %d ids %v..., want %d..%d exactly once each",
				r.after, len(ids), ids[:min(len(ids), 5)], r.after+1, testBase+events)
		}
	}
	if count != 64 {
		t.Fatalf("%d subscriptions checked, want 64", count)
	}
	if st := h.Stats(); st.DroppedSlow != 0 || st.Subscribers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlowSubscriberIsDroppedFastKeepsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{Buffer: 2})
		fast := h.Subscribe("kitchen", "s1", "")
		slow := h.Subscribe("kitchen", "s2", "")
		var got [][]byte
		stop := make(chan struct{})
		reader := make(chan struct{})
		go func() {
			defer close(reader)
			for {
				select {
				case f := <-fast.Events():
					got = append(got, f)
				case <-stop:
					return
				}
			}
		}()
		for n := 1; n <= 10; n++ {
			h.Publish("kitchen", event(n))
			synctest.Wait() // the fast reader has taken the frame
			if n < 3 && isDone(slow) {
				t.Fatalf("slow subscription ended after %d events with room for 2", n)
			}
		}
		close(stop)
		<-reader
		if ids := frameIDs(t, got); !equalIDs(ids, span(1001, 1010)) {
			t.Fatalf("fast subscriber got %v, want 1001..1010", ids)
		}
		if !isDone(slow) || !errors.Is(slow.Err(), ErrSlow) {
			t.Fatalf("slow subscription: done %v, err %v; want ErrSlow", isDone(slow), slow.Err())
		}
		if isDone(fast) || fast.Err() != nil {
			t.Fatalf("fast subscription ended: %v", fast.Err())
		}
		if st := h.Stats(); st.DroppedSlow != 1 || st.Subscribers != 1 || st.Published != 10 || st.Delivered != 12 {
			t.Fatalf("stats %+v", st)
		}

		// The slow one keeps what was buffered, then resumes from there.
		buffered := frameIDs(t, drain(slow))
		if !equalIDs(buffered, span(1001, 1002)) {
			t.Fatalf("slow buffered %v, want 1001..1002", buffered)
		}
		slow.Close()
		again := h.Subscribe("kitchen", "s2", strconv.FormatUint(buffered[len(buffered)-1], 10))
		defer again.Close()
		if gap, _ := again.Gap(); gap || !equalIDs(frameIDs(t, again.Replay()), span(1003, 1010)) {
			t.Fatalf("resume: gap %v replay %v, want 1003..1010", gap, frameIDs(t, again.Replay()))
		}
	})
}

func TestPublishNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{Buffer: 1})
		stuck := h.Subscribe("kitchen", "s1", "")
		done := make(chan struct{})
		go func() {
			defer close(done)
			for n := range 100 {
				h.Publish("kitchen", event(n))
			}
		}()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Publish blocked on a subscriber that never reads")
		}
		if !errors.Is(stuck.Err(), ErrSlow) {
			t.Fatalf("err %v, want ErrSlow", stuck.Err())
		}
	})
}

func TestKick(t *testing.T) {
	tests := []struct {
		name      string
		client    string
		session   string
		reason    error
		wantEnded map[string]error // subscription name -> reason
	}{
		{
			name: "one session", client: "kitchen", session: "a", reason: ErrLoggedOut,
			wantEnded: map[string]error{"kitchen/a1": ErrLoggedOut, "kitchen/a2": ErrLoggedOut},
		},
		{
			name: "whole client", client: "kitchen", session: "", reason: ErrClientDeleted,
			wantEnded: map[string]error{"kitchen/a1": ErrClientDeleted, "kitchen/a2": ErrClientDeleted, "kitchen/b": ErrClientDeleted},
		},
		{
			name: "nil reason", client: "kitchen", session: "b", reason: nil,
			wantEnded: map[string]error{"kitchen/b": ErrKicked},
		},
		{name: "unknown session", client: "kitchen", session: "zzz", reason: ErrLoggedOut},
		{name: "unknown client", client: "garage", session: "", reason: ErrKicked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, Config{})
			subs := map[string]*Subscription{
				"kitchen/a1": h.Subscribe("kitchen", "a", ""),
				"kitchen/a2": h.Subscribe("kitchen", "a", ""),
				"kitchen/b":  h.Subscribe("kitchen", "b", ""),
				"bedroom/a":  h.Subscribe("bedroom", "a", ""),
			}
			h.Kick(tt.client, tt.session, tt.reason)
			h.Publish("kitchen", event(1))
			h.Publish("bedroom", event(1))
			for name, s := range subs {
				want, ended := tt.wantEnded[name]
				if ended {
					if !isDone(s) || !errors.Is(s.Err(), want) || len(drain(s)) != 0 {
						t.Errorf("%s: done %v err %v; want ended by %v before the event", name, isDone(s), s.Err(), want)
					}
					continue
				}
				if isDone(s) || s.Err() != nil || len(drain(s)) != 1 {
					t.Errorf("%s: ended (%v) or missed the event", name, s.Err())
				}
			}
			if got, want := h.Stats().Subscribers, int64(len(subs)-len(tt.wantEnded)); got != want {
				t.Errorf("Subscribers %d, want %d", got, want)
			}
			for _, s := range subs {
				s.Close()
			}
			if got := h.Stats().Subscribers; got != 0 {
				t.Errorf("Subscribers %d after closing all", got)
			}
		})
	}
}

func TestKickKeepsWindow(t *testing.T) {
	h := newTestHub(t, Config{})
	s := h.Subscribe("kitchen", "a", "")
	publishN(t, h, "kitchen", 3)
	h.Kick("kitchen", "", ErrLoggedOut)
	again := h.Subscribe("kitchen", "a", "1001")
	defer again.Close()
	if got := frameIDs(t, again.Replay()); !equalIDs(got, span(1002, 1003)) {
		t.Fatalf("replay after kick %v, want 1002..1003", got)
	}
	s.Close()
}

func TestForget(t *testing.T) {
	h := newTestHub(t, Config{})
	s1 := h.Subscribe("kitchen", "a", "")
	s2 := h.Subscribe("kitchen", "b", "")
	keep := h.Subscribe("bedroom", "c", "")
	publishN(t, h, "kitchen", 3)
	h.Forget("kitchen")
	for _, s := range []*Subscription{s1, s2} {
		if !errors.Is(s.Err(), ErrClientDeleted) {
			t.Fatalf("err %v, want ErrClientDeleted", s.Err())
		}
	}
	if keep.Err() != nil {
		t.Fatalf("another client's stream ended: %v", keep.Err())
	}
	// The window is gone: a new client of the same id starts afresh and an
	// old id is from another life.
	s := h.Subscribe("kitchen", "a", "1002")
	defer s.Close()
	if gap, _ := s.Gap(); !gap || len(s.Replay()) != 0 || s.LastID() != testBase {
		t.Fatalf("after Forget: gap %v replay %d last %d", gap, len(s.Replay()), s.LastID())
	}
	if h.Stats().Subscribers != 2 {
		t.Fatalf("Subscribers %d, want 2", h.Stats().Subscribers)
	}
	h.Forget("nobody") // no topic: nothing happens
	s1.Close()
	s1.Close()
	if h.Stats().Subscribers != 2 {
		t.Fatalf("Subscribers %d after closing an ended subscription, want 2", h.Stats().Subscribers)
	}
}

func TestForgetRacesPublishAndSubscribe(t *testing.T) {
	h := newTestHub(t, Config{Buffer: 1 << 12})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 500 {
			h.Forget("kitchen")
		}
	})
	wg.Go(func() {
		for n := range 500 {
			if h.Publish("kitchen", event(n)) == 0 {
				t.Error("Publish returned 0")
				return
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			s := h.Subscribe("kitchen", "a", "")
			if s.Err() != nil && !errors.Is(s.Err(), ErrClientDeleted) {
				t.Errorf("err %v", s.Err())
			}
			s.Close()
		}
	})
	wg.Wait()
	if got := h.Stats().Subscribers; got != 0 {
		t.Fatalf("Subscribers %d, want 0", got)
	}
}

func TestClose(t *testing.T) {
	h := newTestHub(t, Config{})
	subs := []*Subscription{h.Subscribe("kitchen", "a", ""), h.Subscribe("bedroom", "b", "")}
	publishN(t, h, "kitchen", 2)
	h.Close()
	h.Close()
	for _, s := range subs {
		if !isDone(s) || !errors.Is(s.Err(), ErrShutdown) {
			t.Fatalf("after Close: done %v err %v", isDone(s), s.Err())
		}
		s.Close()
	}
	if id := h.Publish("kitchen", event(3)); id != 0 {
		t.Fatalf("Publish after Close = %d, want 0", id)
	}
	late := h.Subscribe("kitchen", "a", "1001")
	if !isDone(late) || !errors.Is(late.Err(), ErrShutdown) || len(late.Replay()) != 0 {
		t.Fatalf("Subscribe after Close: done %v err %v replay %d", isDone(late), late.Err(), len(late.Replay()))
	}
	late.Close()
	if st := h.Stats(); st.Subscribers != 0 {
		t.Fatalf("stats after Close %+v", st)
	}
}

func TestCloseRacesSubscribe(t *testing.T) {
	for range 50 {
		h := newTestHub(t, Config{})
		subs := make(chan *Subscription, 100)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				for range 25 {
					subs <- h.Subscribe(fmt.Sprint("c", i), "a", "")
				}
			})
		}
		h.Close()
		wg.Wait()
		close(subs)
		for s := range subs {
			if !errors.Is(s.Err(), ErrShutdown) {
				t.Fatalf("a subscription outlived Close: err %v", s.Err())
			}
		}
	}
}

func TestSubscriptionClose(t *testing.T) {
	h := newTestHub(t, Config{})
	s := h.Subscribe("kitchen", "a", "")
	other := h.Subscribe("kitchen", "b", "")
	defer other.Close()
	s.Close()
	s.Close()
	h.Publish("kitchen", event(1))
	if got := drain(s); len(got) != 0 {
		t.Fatalf("closed subscription got %q", got)
	}
	if isDone(s) || s.Err() != nil {
		t.Fatalf("own Close: done %v err %v; want neither", isDone(s), s.Err())
	}
	if len(drain(other)) != 1 {
		t.Fatal("the other subscription missed the event")
	}
	if got := h.Stats().Subscribers; got != 1 {
		t.Fatalf("Subscribers %d, want 1", got)
	}
	h.Kick("kitchen", "a", nil)
	if isDone(s) {
		t.Fatal("Kick reached a subscription closed before")
	}
}

func TestConnectionIDs(t *testing.T) {
	h := newTestHub(t, Config{})
	seen := make(map[string]bool)
	for range 100 {
		s := h.Subscribe("kitchen", "a", "")
		if len(s.ID()) < 20 || seen[s.ID()] {
			t.Fatalf("connection id %q short or repeated", s.ID())
		}
		seen[s.ID()] = true
		s.Close()
	}
}

// FuzzSubscribeLastEventID feeds untrusted Last-Event-ID headers to Subscribe.
func FuzzSubscribeLastEventID(f *testing.F) {
	for _, s := range []string{"", "1000", "1001", "1012", "1020", "1021", "0", "x", "01015", "18446744073709551615"} {
		f.Add(s)
	}
	h, err := New(Config{Window: 8, Now: func() time.Time { return time.UnixMicro(testBase) }})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	publishN(f, h, "kitchen", 20) // ids 1001..1020, window 1013..1020
	f.Fuzz(func(t *testing.T, last string) {
		s := h.Subscribe("kitchen", "a", last)
		defer s.Close()
		ids := frameIDs(t, s.Replay())
		gap, ev := s.Gap()
		after, ok := ParseEventID(last)
		switch {
		case last == "":
			if gap || len(ids) != 0 {
				t.Fatalf("empty id: gap %v replay %v", gap, ids)
			}
		case ok && after >= 1012 && after <= 1020:
			if gap || !equalIDs(ids, span(after+1, 1020)) {
				t.Fatalf("%q: gap %v replay %v", last, gap, ids)
			}
		default:
			if !gap || !equalIDs(ids, span(1013, 1020)) || ev.FirstEventID != "1013" || len(ev.LastEventID) > maxEchoedID {
				t.Fatalf("%q: gap %v %+v replay %v; want a gap and the whole window", last, gap, ev, ids)
			}
		}
		if s.ResumeID()+uint64(len(ids)) != 1020 {
			t.Fatalf("%q: ResumeID %d with %d replayed", last, s.ResumeID(), len(ids))
		}
	})
}

// TestKickStale: only the streams opened with another key version than the
// client's end; those of the current key and those tied to no key (the
// admin's) stay, and Watched names the clients with live streams.
func TestKickStale(t *testing.T) {
	h := newTestHub(t, Config{})
	old := h.SubscribeKey("kitchen", "a", "", 7)
	cur := h.SubscribeKey("kitchen", "b", "", 9)
	admin := h.SubscribeKey("kitchen", "", "", 0)
	other := h.SubscribeKey("bedroom", "c", "", 7)
	if got := h.Watched(); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"bedroom", "kitchen"}) {
		t.Fatalf("Watched = %v", got)
	}
	h.KickStale("kitchen", 9)
	if !isDone(old) || !errors.Is(old.Err(), ErrKicked) {
		t.Errorf("the stale stream: done %v err %v", isDone(old), old.Err())
	}
	for name, s := range map[string]*Subscription{"current": cur, "admin": admin, "another client's": other} {
		if isDone(s) {
			t.Errorf("the %s stream ended: %v", name, s.Err())
		}
	}
	if got := h.Stats().Subscribers; got != 3 {
		t.Errorf("Subscribers %d, want 3", got)
	}
	h.KickStale("nobody", 1)
	cur.Close()
	admin.Close()
	other.Close()
	if got := h.Watched(); len(got) != 0 {
		t.Errorf("Watched after every stream closed = %v", got)
	}
}
