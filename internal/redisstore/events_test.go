package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/redistest"
)

// replica is a hub whose events go through Redis, as one gateway replica's.
type replica struct {
	hub *hub.Server
}

func newReplica(t *testing.T, srv *redistest.Server, window int) *replica {
	t.Helper()
	s := open(t, srv)
	ev := s.Events(window)
	h, err := hub.New(hub.Config{Relay: ev, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx, h, ready) }()
	t.Cleanup(func() { cancel(); <-done; h.Close() })
	select {
	case <-ready:
	case <-time.After(gatewaytest.WaitLimit):
		t.Fatal("the events channel was never subscribed")
	}
	return &replica{hub: h}
}

func speak(text string) api.Event {
	return api.Event{Name: api.EventSpeak, Data: []byte(`{"utterance":"` + text + `"}`)}
}

// next reads the next live frame of sub, failing after WaitLimit.
func next(t *testing.T, sub *hub.Subscription) string {
	t.Helper()
	select {
	case f := <-sub.Events():
		return string(f)
	case <-sub.Done():
		t.Fatalf("the subscription ended: %v", sub.Err())
	case <-time.After(gatewaytest.WaitLimit):
		t.Fatal("no event")
	}
	return ""
}

func frameID(t *testing.T, frame string) uint64 {
	t.Helper()
	line, _, _ := strings.Cut(frame, "\n")
	id, err := strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
	if !strings.HasPrefix(line, "id: ") || err != nil {
		t.Fatalf("frame %q has no id", frame)
	}
	return id
}

// An event published on one replica reaches the client's streams on every
// replica, once, with ids from one sequence whichever replica published.
func TestEventsReachEveryReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newReplica(t, srv, 16), newReplica(t, srv, 16)
	onA := a.hub.Subscribe("kitchen", "s1", "")
	onB := b.hub.Subscribe("kitchen", "s2", "")
	other := b.hub.Subscribe("porch", "s3", "")
	defer onA.Close()
	defer onB.Close()
	defer other.Close()

	var last uint64
	for i, pub := range []*replica{a, b, a, b} {
		text := "hello " + strconv.Itoa(i)
		id := pub.hub.Publish("kitchen", speak(text))
		if id <= last {
			t.Fatalf("event %d has id %d after %d", i, id, last)
		}
		last = id
		for _, sub := range []*hub.Subscription{onA, onB} {
			f := next(t, sub)
			if frameID(t, f) != id || !strings.Contains(f, text) {
				t.Fatalf("got %q, want event %d %q", f, id, text)
			}
		}
	}
	select {
	case f := <-other.Events():
		t.Fatalf("another client's stream got %q", f)
	default:
	}
	// Nothing was delivered twice.
	for _, sub := range []*hub.Subscription{onA, onB} {
		select {
		case f := <-sub.Events():
			t.Fatalf("an extra frame %q", f)
		default:
		}
	}
}

// A stream that reconnects to another replica with Last-Event-ID gets what
// it missed from the shared window; one older than the window gets a gap.
func TestEventsResumeOnAnotherReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newReplica(t, srv, 4), newReplica(t, srv, 4)
	first := a.hub.Publish("kitchen", speak("one"))
	var ids []uint64
	for _, text := range []string{"two", "three", "four"} {
		ids = append(ids, a.hub.Publish("kitchen", speak(text)))
	}
	sub := b.hub.Subscribe("kitchen", "s1", strconv.FormatUint(first, 10))
	defer sub.Close()
	if gap, _ := sub.Gap(); gap {
		t.Fatal("a resume within the window reports a gap")
	}
	replay := sub.Replay()
	if len(replay) != 3 || frameID(t, string(replay[0])) != ids[0] || !strings.Contains(string(replay[2]), "four") {
		t.Fatalf("replay %q, want two, three, four", replay)
	}
	if sub.ResumeID() != first || sub.LastID() != ids[2] {
		t.Fatalf("resume id %d last %d, want %d and %d", sub.ResumeID(), sub.LastID(), first, ids[2])
	}
	// Live events follow the replay, none twice.
	live := a.hub.Publish("kitchen", speak("five"))
	if f := next(t, sub); frameID(t, f) != live {
		t.Fatalf("live frame %q, want id %d", f, live)
	}

	// Three more: "one" and "two" have left the window of four.
	for _, text := range []string{"six", "seven", "eight"} {
		a.hub.Publish("kitchen", speak(text))
	}
	old := b.hub.Subscribe("kitchen", "s2", strconv.FormatUint(first, 10))
	defer old.Close()
	gap, g := old.Gap()
	if !gap || g.LastEventID != strconv.FormatUint(first, 10) || len(old.Replay()) != 4 {
		t.Fatalf("gap %v %+v with %d frames replayed, want a gap and the window of 4", gap, g, len(old.Replay()))
	}
	if g.FirstEventID != strconv.FormatUint(frameID(t, string(old.Replay()[0])), 10) {
		t.Fatalf("gap names %s, the replay starts at %q", g.FirstEventID, old.Replay()[0])
	}
	// An id that is none of ours is a gap too, never a crash.
	junk := b.hub.Subscribe("kitchen", "s3", "not-an-id")
	defer junk.Close()
	if gap, _ := junk.Gap(); !gap {
		t.Fatal("a junk Last-Event-ID is not a gap")
	}
}

// A logout, a key rotation noticed or a deletion on one replica ends the
// client's streams on every replica.
func TestEventsControlsReachEveryReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newReplica(t, srv, 8), newReplica(t, srv, 8)
	s1 := b.hub.SubscribeKey("kitchen", "s1", "", 1)
	s2 := b.hub.SubscribeKey("kitchen", "s2", "", 1)
	s3 := b.hub.SubscribeKey("kitchen", "s3", "", 2)
	defer s1.Close()
	defer s2.Close()
	defer s3.Close()
	ended := func(sub *hub.Subscription, want error) {
		t.Helper()
		select {
		case <-sub.Done():
			if !errors.Is(sub.Err(), want) {
				t.Fatalf("ended with %v, want %v", sub.Err(), want)
			}
		case <-time.After(gatewaytest.WaitLimit):
			t.Fatalf("not ended (want %v)", want)
		}
	}
	a.hub.Kick("kitchen", "s1", hub.ErrLoggedOut)
	ended(s1, hub.ErrLoggedOut)
	a.hub.KickStale("kitchen", 2)
	ended(s2, hub.ErrKicked)
	select {
	case <-s3.Done():
		t.Fatal("a stream of the current key was ended")
	default:
	}
	a.hub.Publish("kitchen", speak("before the deletion"))
	a.hub.Forget("kitchen")
	ended(s3, hub.ErrClientDeleted)
	// The window went with the client.
	fresh := b.hub.Subscribe("kitchen", "s4", "1")
	defer fresh.Close()
	if n := len(fresh.Replay()); n != 0 {
		t.Fatalf("a deleted client's window still replays %d events", n)
	}
}

// With Redis down, a new stream is refused (ErrUnavailable), an event still
// reaches this replica's open streams (without an id), and once Redis is
// back everything works again without a restart; an event published on
// another replica meanwhile is caught up.
func TestEventsRideOutARedisOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	a, b := newReplica(t, srv, 8), newReplica(t, srv, 8)
	open := b.hub.Subscribe("kitchen", "s1", "")
	defer open.Close()
	before := a.hub.Publish("kitchen", speak("before"))
	if frameID(t, next(t, open)) != before {
		t.Fatal("the first event did not arrive")
	}

	srv.Stop()
	refused := b.hub.Subscribe("kitchen", "s2", "")
	select {
	case <-refused.Done():
		if !errors.Is(refused.Err(), hub.ErrUnavailable) {
			t.Fatalf("refused with %v", refused.Err())
		}
	default:
		t.Fatal("a stream opened with Redis down")
	}
	if id := b.hub.Publish("kitchen", speak("local only")); id != 0 {
		t.Fatalf("an event got id %d with Redis down", id)
	}
	if f := next(t, open); strings.HasPrefix(f, "id:") || !strings.Contains(f, "local only") {
		t.Fatalf("the local event came as %q", f)
	}

	srv.Restart(t)
	var after uint64
	gatewaytest.Eventually(t, "a publish to work again", func() bool {
		after = a.hub.Publish("kitchen", speak("after"))
		return after != 0
	})
	if after <= before {
		t.Fatalf("id %d after the outage, %d before", after, before)
	}
	gatewaytest.Eventually(t, "the event published after the outage to arrive", func() bool {
		for {
			select {
			case f := <-open.Events():
				if strings.HasPrefix(f2s(f), "id: ") && frameID(t, f2s(f)) == after {
					return true
				}
			default:
				return false
			}
		}
	})
	again := b.hub.Subscribe("kitchen", "s3", strconv.FormatUint(before, 10))
	defer again.Close()
	if again.Err() != nil || len(again.Replay()) == 0 {
		t.Fatalf("a stream after the outage: %v, %d replayed", again.Err(), len(again.Replay()))
	}
}

func f2s(b []byte) string { return string(b) }

// Events posted (hub.Post, as the bridge does: without waiting for Redis;
// and PostAndWait, as it does for a frame it claimed) reach the client's streams on every replica in the order they were
// posted, once each, with growing ids: in a burst that goes to Redis as one
// batch, on a Redis that does not have the script yet, and again after
// SCRIPT FLUSH (each time the batch falls back to loading it).
func TestPostedEventsKeepTheirOrder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newReplica(t, srv, 64), newReplica(t, srv, 64)
	onA := a.hub.Subscribe("kitchen", "s1", "")
	onB := b.hub.Subscribe("kitchen", "s2", "")
	defer onA.Close()
	defer onB.Close()
	var last [2]uint64
	for round := range 3 {
		if round == 2 {
			if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
				t.Fatal(err)
			}
		}
		const n = 20
		for i := range n {
			ev := speak("r" + strconv.Itoa(round) + "-" + strconv.Itoa(i))
			if i%5 == 4 {
				a.hub.PostAndWait("kitchen", ev) // a claimed frame's, among the others
			} else {
				a.hub.Post("kitchen", ev)
			}
		}
		for j, sub := range []*hub.Subscription{onA, onB} {
			for i := range n {
				f := next(t, sub)
				id := frameID(t, f)
				if id <= last[j] || !strings.Contains(f, `"r`+strconv.Itoa(round)+"-"+strconv.Itoa(i)+`"`) {
					t.Fatalf("round %d stream %d: got %q (id after %d), want event %d", round, j, f, last[j], i)
				}
				last[j] = id
			}
		}
	}
	for _, sub := range []*hub.Subscription{onA, onB} {
		select {
		case f := <-sub.Events():
			t.Fatalf("an extra frame %q", f)
		default:
		}
	}
}
