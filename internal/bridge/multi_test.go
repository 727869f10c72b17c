package bridge

import (
	"context"
	"fmt"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// newMulti returns a bridge over n fake buses whose Pick is the map's
// choice for a session (bus 0 for a session it does not name).
func newMulti(t *testing.T, n int, pick map[string]int) (*Bridge, []*fakeBus, *recPub) {
	t.Helper()
	fakes := make([]*fakeBus, n)
	bs := make([]Bus, n)
	for i := range fakes {
		fakes[i] = &fakeBus{}
		bs[i] = fakes[i]
	}
	pub := &recPub{}
	b, err := NewMulti(Config{Pick: func(sid string) int { return pick[sid] }}, bs, pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, fakes, pub
}

func sentCount(f *fakeBus) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// Several buses: an utterance goes to the bus Pick names for its session;
// its replies count from that bus only (the same bus listed twice must not
// deliver twice); a bus going down ends only its own utterances, with error;
// a session with no bus up is refused.
func TestSeveralBuses(t *testing.T) {
	if _, err := NewMulti(Config{}, []Bus{&fakeBus{}, &fakeBus{}}, &recPub{}); err == nil {
		t.Fatal("several buses without Pick accepted")
	}
	pick := map[string]int{"s-a": 0, "s-b": 1, "s-none": -1}
	b, fakes, pub := newMulti(t, 2, pick)
	pa := send(t, b, "kitchen", "s-a", "hello", false)
	pb := send(t, b, "porch", "s-b", "hello", false)
	if sentCount(fakes[0]) != 1 || sentCount(fakes[1]) != 1 || ctxOf(t, fakes[1].last(t)).Session.SessionID != "s-b" {
		t.Fatalf("sent %d on bus 0 and %d on bus 1", sentCount(fakes[0]), sentCount(fakes[1]))
	}
	speak := func(p *Pending, client, sid string) *api.Frame {
		return frame(t, fmt.Sprintf(`{"type":"speak","data":{"utterance":"Hi"},"context":{"destination":["gateway:%s"],"session":{"session_id":%q},"utterance_id":%q}}`, client, sid, p.ID()))
	}
	// A copy on the other bus is not delivered; the one on its own bus is.
	b.DispatchFrom(0, speak(pb, "porch", "s-b"))
	if n := len(pub.of("porch")); n != 0 {
		t.Fatalf("a reply from another bus than the utterance's was delivered (%d events)", n)
	}
	b.DispatchFrom(1, speak(pb, "porch", "s-b"))
	if n := len(pub.of("porch")); n != 1 {
		t.Fatalf("%d events for the reply from the utterance's own bus", n)
	}
	// A frame for no utterance is routed the same way from either bus.
	b.DispatchFrom(1, frame(t, `{"type":"notice","data":{},"context":{"destination":["gateway:kitchen"]}}`))
	if n := len(pub.of("kitchen")); n != 1 {
		t.Fatalf("a message for kitchen carried by bus 1: %d events", n)
	}

	if s := b.BusStats(1); s.Pending != 1 {
		t.Fatalf("bus 1 stats %+v", s)
	}
	b.BusDown(1)
	if r := pb.Wait(context.Background()); r.Status != api.StatusError {
		t.Fatalf("utterance on the bus that went down: %s", r.Status)
	}
	select {
	case <-pa.doneCh:
		t.Fatal("the utterance on the other bus ended")
	default:
	}
	if s := b.BusStats(1); s.Pending != 0 || s.Error != 1 {
		t.Fatalf("bus 1 stats after it went down %+v", s)
	}
	if s := b.BusStats(0); s.Pending != 1 || s.Error != 0 {
		t.Fatalf("bus 0 stats %+v", s)
	}
	if _, err := b.Send(context.Background(), Utterance{ClientID: "x", SessionID: "s-none", Text: "hi"}, false); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("no bus up: %v", err)
	}
}

// The dry run asks the session's own bus.
func TestDryRunAsksTheSessionsBus(t *testing.T) {
	b, fakes, _ := newMulti(t, 3, map[string]int{"s-c": 2})
	fakes[2].replies = []*api.Frame{frame(t, `{"type":"intent.service.intent.reply","data":{"intent":null},"context":{"destination":["gateway:kitchen"]}}`)}
	if _, err := b.Intent(context.Background(), Utterance{ClientID: "kitchen", SessionID: "s-c", Text: "unlock"}); err != nil {
		t.Fatal(err)
	}
	if sentCount(fakes[0]) != 0 || sentCount(fakes[1]) != 0 || sentCount(fakes[2]) != 1 {
		t.Fatalf("the dry run went to buses %d %d %d", sentCount(fakes[0]), sentCount(fakes[1]), sentCount(fakes[2]))
	}
}
