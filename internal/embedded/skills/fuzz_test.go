package skills

import (
	"context"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/busframe"
)

// FuzzFrames feeds arbitrary bus frames, as the bus client parses them, to
// the skills in both dialects: nothing may panic, and everything the skills
// send must be a well-formed bus message (docs/bus.md: a malformed frame makes
// every Python peer reconnect).
func FuzzFrames(f *testing.F) {
	for _, name := range fixtureNames(f) {
		for _, l := range loadFixture(f, name) {
			f.Add([]byte(l.Frame))
		}
	}
	for _, seed := range []string{
		`{"type":"recognizer_loop:utterance","data":{"utterances":["quiz me"]},"context":{"source":"gw","destination":["skills"],"session":{"session_id":"s"}}}`,
		`{"type":"recognizer_loop:utterance","data":{"utterances":["say <b>\u0000 & \ud800"]},"context":{"source":["a",1],"destination":null}}`,
		`{"type":"recognizer_loop:utterance","data":{"utterances":["hello"],"lang":7},"context":{"session":{"session_id":5,"blacklisted_skills":{"a":1}}}}`,
		`{"type":"intent.service.intent.get","data":{"utterance":"what time is it"},"context":{"session":{"blacklisted_intents":"x"}}}`,
		`{"type":"mycroft.skills.is_ready","context":{"source":"gw","destination":"skills"}}`,
		`{"type":"recognizer_loop:utterance","data":{"utterances":[1e400]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := busframe.Parse(raw)
		if err != nil {
			return
		}
		for _, dialect := range []string{DialectOVOS, DialectClassic} {
			bus := &loopBus{}
			s, err := New(Config{Dialect: dialect, ResponseTimeout: time.Nanosecond}, bus)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s.onFrame(fr)
			for len(s.queue) > 0 {
				s.process(ctx, <-s.queue) // without Run's recover: a panic fails
			}
			// The same frame as the answer to a waiting get_response.
			w := s.waiters.add(frameSessionID(fr))
			if s.onFrame(fr); len(w.ch) == 1 {
				if a := <-w.ch; a.msg == nil {
					t.Fatal("delivered an answer without its message")
				}
			}
			for len(s.queue) > 0 {
				s.process(ctx, <-s.queue)
			}
			for _, m := range bus.take() {
				b, err := m.MarshalJSON()
				if err != nil {
					t.Fatalf("sent a malformed message %q: %v", m.Type, err)
				}
				if _, err := busframe.Parse(b); err != nil {
					t.Fatalf("sent an unparseable frame %s: %v", b, err)
				}
			}
		}
	})
}
