package bridge

import (
	"context"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// TestProgress: each speech wakes the channel Progress handed out, before
// handling ends, and the end wakes it once more with the status.
func TestProgress(t *testing.T) {
	b, _, _ := newBridge(t, Config{})
	p := send(t, b, "a", "s", "count to three", true)
	sp, st, ch := p.Progress(0)
	if len(sp) != 0 || st != "" {
		t.Fatalf("at first: %v %q", sp, st)
	}
	select {
	case <-ch:
		t.Fatal("changed before anything happened")
	default:
	}
	b.Dispatch(frame(t, speakFrame("One.", ctxJSON("gateway:a", "s", p.ID()))))
	<-ch // closed by the speech; a missing wake-up hangs the test
	sp, st, ch = p.Progress(0)
	if len(sp) != 1 || sp[0].Utterance != "One." || st != "" {
		t.Fatalf("after one: %v %q", sp, st)
	}
	b.Dispatch(frame(t, speakFrame("Two.", ctxJSON("gateway:a", "s", p.ID()))))
	<-ch
	if sp, st, _ = p.Progress(1); len(sp) != 1 || sp[0].Utterance != "Two." || st != "" {
		t.Fatalf("after two, from 1: %v %q", sp, st)
	}
	_, _, ch = p.Progress(2)
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
	<-ch
	if sp, st, ch = p.Progress(2); len(sp) != 0 || st != api.StatusHandled {
		t.Fatalf("at the end: %v %q", sp, st)
	}
	<-ch // an ended utterance's channel is closed already
}

// TestProgressQuestion: a follow-up question shows as awaiting_response.
func TestProgressQuestion(t *testing.T) {
	b, _, _ := newBridge(t, Config{})
	p := send(t, b, "a", "s", "ask me something", true)
	_, _, ch := p.Progress(0)
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+ctxJSON("gateway:a", "s", p.ID())+`}`))
	<-ch
	if sp, st, _ := p.Progress(0); len(sp) != 1 || st != api.StatusAwaitingResponse {
		t.Fatalf("%v %q", sp, st)
	}
}

// TestAnswerCollectsTheReply: what the assistant says after a follow-up
// question was answered still names the question's utterance (OVOS's
// get_response keeps the handler's context), yet it is the answer's result
// too: the ?wait= of the answer, and the chat completion of it, carry it.
func TestAnswerCollectsTheReply(t *testing.T) {
	b, _, pub := newBridge(t, Config{})
	q := send(t, b, "a", "s", "ask me something", true)
	qctx := ctxJSON("gateway:a", "s", q.ID())
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+qctx+`}`))
	other := send(t, b, "a", "other-session", "hello", true)
	a := send(t, b, "a", "s", "blue", true)
	b.Dispatch(frame(t, speakFrame("You said blue.", qctx)))
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+qctx+`}`))
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+ctxJSON("gateway:a", "s", a.ID())+`}`))
	res := a.Wait(context.Background())
	if res.Status != api.StatusHandled || len(res.Speech) != 1 || res.Speech[0].Utterance != "You said blue." {
		t.Fatalf("answer: %+v", res)
	}
	if res := q.Wait(context.Background()); res.Status != api.StatusHandled || len(res.Speech) != 2 {
		t.Fatalf("question: %+v", res)
	}
	if sp, _, _ := other.Progress(0); len(sp) != 0 {
		t.Fatalf("another session heard %v", sp)
	}
	// The stream still says whose speech it was: the question's.
	for _, ev := range pub.of("a") {
		if ev.Name == api.EventSpeak {
			if s := speakOf(t, ev); s.Utterance == "You said blue." && (s.UtteranceID == nil || *s.UtteranceID != q.ID()) {
				t.Fatalf("speak event names %v, want the question %s", s.UtteranceID, q.ID())
			}
		}
	}
}
