package bridge

import (
	"context"
	"fmt"
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
// question was answered comes in the question's context (OVOS's
// get_response keeps the handler's message), yet it is the answer's reply:
// the ?wait= of the answer, the chat completion of it and the stream's speak
// event name the answer.
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
	// The stream names the answer, and the answer's done comes after it.
	var said bool
	for _, ev := range pub.of("a") {
		switch ev.Name {
		case api.EventSpeak:
			if s := speakOf(t, ev); s.Utterance == "You said blue." {
				if s.UtteranceID == nil || *s.UtteranceID != a.ID() {
					t.Fatalf("speak event names %v, want the answer %s", s.UtteranceID, a.ID())
				}
				said = true
			}
		case api.EventDone:
			if d := doneOf(t, ev); d.UtteranceID == a.ID() && !said {
				t.Fatal("the answer's done came before its reply")
			}
		}
	}
}

// TestAnswerEndsAfterItsReply: the two ways a real assistant ends the answer
// to a follow-up question, both before the reply is spoken in the
// question's context: its own end signal at once (the answer consumed), or
// none at all (ovos-core's converse get_response; classic mycroft-core).
// Either way the answer ends with the question, its reply in its result and
// named by its speak event, never "handled" with no speech.
func TestAnswerEndsAfterItsReply(t *testing.T) {
	for _, ownEnd := range []bool{true, false} {
		t.Run(fmt.Sprintf("own end signal %v", ownEnd), func(t *testing.T) {
			b, _, pub := newBridge(t, Config{})
			q := send(t, b, "a", "s", "ask me something", true)
			qctx := ctxJSON("gateway:a", "s", q.ID())
			b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+qctx+`}`))
			if res := q.Wait(context.Background()); res.Status != api.StatusAwaitingResponse {
				t.Fatalf("question: %+v", res)
			}
			a := send(t, b, "a", "s", "blue", true)
			actx := ctxJSON("gateway:a", "s", a.ID())
			b.Dispatch(frame(t, `{"type":"quiz.skill.converse.get_response","data":{"utterances":["blue"]},"context":`+actx+`}`))
			if ownEnd {
				b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+actx+`}`))
			}
			if res := a.Wait(cancelled()); res.Status != api.StatusAccepted {
				t.Fatalf("the answer ended before its reply: %+v", res)
			}
			b.Dispatch(frame(t, `{"type":"skill.converse.get_response.disable","data":{},"context":`+qctx+`}`))
			b.Dispatch(frame(t, speakFrame("You said blue.", qctx)))
			b.Dispatch(frame(t, `{"type":"mycroft.skill.handler.complete","data":{},"context":`+qctx+`}`))
			b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+qctx+`}`))
			res := a.Wait(context.Background())
			if res.Status != api.StatusHandled || len(res.Speech) != 1 || res.Speech[0].Utterance != "You said blue." {
				t.Fatalf("answer: %+v", res)
			}
			var got []string
			for _, ev := range pub.of("a") {
				switch ev.Name {
				case api.EventSpeak:
					s := speakOf(t, ev)
					if s.UtteranceID != nil && *s.UtteranceID == a.ID() {
						got = append(got, "speak:"+s.Utterance)
					}
				case api.EventDone:
					d := doneOf(t, ev)
					who := "question"
					if d.UtteranceID == a.ID() {
						who = "answer"
					}
					got = append(got, "done:"+who+":"+d.Status)
				}
			}
			if !equal(got, []string{"speak:You said blue.", "done:question:handled", "done:answer:handled"}) {
				t.Fatalf("events %q", got)
			}
		})
	}
}

// TestAnswerAskedAgain: a question asked again after the answer is that
// answer's reply (awaiting_response); the next utterance answers it, and
// the first answer is over.
func TestAnswerAskedAgain(t *testing.T) {
	b, _, _ := newBridge(t, Config{})
	q := send(t, b, "a", "s", "ask me something", true)
	qctx := ctxJSON("gateway:a", "s", q.ID())
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+qctx+`}`))
	a1 := send(t, b, "a", "s", "bleu", true)
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Pardon?","expect_response":true},"context":`+qctx+`}`))
	if res := a1.Wait(context.Background()); res.Status != api.StatusAwaitingResponse || len(res.Speech) != 1 || res.Speech[0].Utterance != "Pardon?" {
		t.Fatalf("first answer: %+v", res)
	}
	a2 := send(t, b, "a", "s", "blue", true)
	if res := a1.Wait(context.Background()); res.Status != api.StatusHandled {
		t.Fatalf("first answer not over once answered again: %+v", res)
	}
	b.Dispatch(frame(t, speakFrame("You said blue.", qctx)))
	b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+qctx+`}`))
	if res := a2.Wait(context.Background()); res.Status != api.StatusHandled || len(res.Speech) != 1 || res.Speech[0].Utterance != "You said blue." {
		t.Fatalf("second answer: %+v", res)
	}
}

// TestAnswerRepliedBeforeItsWriteReturns: the bus may relay the whole
// reply to an answer before the answer's own write returns; the reply is
// still the answer's, and the answer ends after it.
func TestAnswerRepliedBeforeItsWriteReturns(t *testing.T) {
	b, bus, _ := newBridge(t, Config{})
	q := send(t, b, "a", "s", "ask me something", true)
	qctx := ctxJSON("gateway:a", "s", q.ID())
	b.Dispatch(frame(t, `{"type":"speak","data":{"utterance":"Your colour?","expect_response":true},"context":`+qctx+`}`))
	bus.mu.Lock()
	bus.onSend = func(m api.Message) error {
		actx := ctxJSON("gateway:a", "s", ctxOf(t, m).UtteranceID)
		b.Dispatch(frame(t, speakFrame("You said green.", qctx)))
		b.Dispatch(frame(t, `{"type":"mycroft.skill.handler.complete","data":{},"context":`+qctx+`}`))
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+qctx+`}`))
		b.Dispatch(frame(t, `{"type":"ovos.utterance.handled","data":{},"context":`+actx+`}`))
		return nil
	}
	bus.mu.Unlock()
	a := send(t, b, "a", "s", "green", true)
	res := a.Wait(context.Background())
	if res.Status != api.StatusHandled || len(res.Speech) != 1 || res.Speech[0].Utterance != "You said green." {
		t.Fatalf("answer: %+v", res)
	}
}
