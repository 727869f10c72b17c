package satellite

import (
	"encoding/json"
	"time"

	"github.com/ovosgw/gateway/api"
)

// outcome is what became of a device utterance on the local bus.
type outcome int

const (
	undecided outcome = iota
	// handledLocally: the local assistant answered; the gateway is not asked.
	handledLocally
	// failedLocally: complete_intent_failure; the gateway is asked.
	failedLocally
	// timedOut: no end signal within the local timeout; the gateway is asked.
	timedOut
)

// utterance is one utterance of the device's own sources, followed on the
// local bus until the local assistant ends it.
type utterance struct {
	id        uint64
	text      string
	lang      string
	sessionID string          // normalised: "default" when absent
	session   json.RawMessage // the context's session as it came, for the answer
	source    api.Names
	arrived   time.Time
	outcome   outcome
	// started: a local intent handler runs for it.
	started bool
	// timers: the local timeout, then the time it is forgotten.
	timeout, forget *time.Timer
}

// tracker matches the local assistant's signals to the device utterances
// they end. The bus has no correlation id (docs/bus.md, "The envelope"), and a
// device's utterance is not ours to tag, so a signal is matched by the
// session id it carries (replies keep the context's session) and, within a
// session, by order: one microphone speaks one utterance after the other.
//
//   - complete_intent_failure decides the oldest undecided utterance of its
//     session (the one whose text it carries, when it carries one) as failed;
//   - mycroft.skill.handler.start marks the oldest undecided one as being
//     handled locally: its end will come, however long the handler takes;
//   - mycroft.skill.handler.complete decides the oldest undecided one as
//     handled (classic mycroft-core ends an intent there);
//   - ovos.utterance.handled ends the oldest utterance of its session,
//     decided or not, and decides it as handled if nothing did before
//     (OVOS sends it after a failure too, so a failed utterance stays listed
//     until then, lest its end be taken for the next one's).
//
// An utterance whose end never comes (classic mycroft-core, a pipeline
// without end signal) is forgotten some time after its decision. A tracker
// is used by one goroutine.
type tracker struct {
	sessions map[string][]*utterance
	byID     map[uint64]*utterance
	nextID   uint64
	max      int
}

func newTracker(max int) *tracker {
	return &tracker{sessions: make(map[string][]*utterance), byID: make(map[uint64]*utterance), max: max}
}

// add starts following u and gives it its id. When max utterances are
// already followed, the oldest is dropped and returned, so that a bus
// flooding utterances cannot grow the tracker.
func (t *tracker) add(u *utterance) (dropped *utterance) {
	if len(t.byID) >= t.max {
		for _, o := range t.byID {
			if dropped == nil || o.id < dropped.id {
				dropped = o
			}
		}
		t.remove(dropped)
	}
	t.nextID++
	u.id = t.nextID
	t.sessions[u.sessionID] = append(t.sessions[u.sessionID], u)
	t.byID[u.id] = u
	return dropped
}

// failure handles complete_intent_failure in session sid; text is the
// utterance it names ("" when it names none, as on classic mycroft-core).
func (t *tracker) failure(sid, text string) *utterance {
	var first *utterance
	for _, u := range t.sessions[sid] {
		if u.outcome != undecided {
			continue
		}
		if first == nil {
			first = u
		}
		if text != "" && u.text == text {
			first = u
			break
		}
	}
	if first != nil {
		first.outcome = failedLocally
	}
	return first
}

// handlerStart handles mycroft.skill.handler.start in session sid: the
// oldest undecided utterance there without a running handler now has one,
// which will end it.
func (t *tracker) handlerStart(sid string) *utterance {
	for _, u := range t.sessions[sid] {
		if u.outcome == undecided && !u.started {
			u.started = true
			return u
		}
	}
	return nil
}

// handlerComplete handles mycroft.skill.handler.complete in session sid.
func (t *tracker) handlerComplete(sid string) *utterance {
	for _, u := range t.sessions[sid] {
		if u.outcome == undecided {
			u.outcome = handledLocally
			return u
		}
	}
	return nil
}

// utteranceHandled handles ovos.utterance.handled in session sid: the
// oldest utterance there ends. It returns that utterance and whether this
// signal decided it.
func (t *tracker) utteranceHandled(sid string) (*utterance, bool) {
	list := t.sessions[sid]
	if len(list) == 0 {
		return nil, false
	}
	u := list[0]
	t.remove(u)
	if u.outcome == undecided {
		u.outcome = handledLocally
		return u, true
	}
	return u, false
}

// expire decides utterance id as timed out if it is still undecided.
func (t *tracker) expire(id uint64) *utterance {
	u := t.byID[id]
	if u == nil || u.outcome != undecided {
		return nil
	}
	u.outcome = timedOut
	return u
}

// forget stops following utterance id.
func (t *tracker) forget(id uint64) {
	if u := t.byID[id]; u != nil {
		t.remove(u)
	}
}

func (t *tracker) remove(u *utterance) {
	delete(t.byID, u.id)
	list := t.sessions[u.sessionID]
	for i, o := range list {
		if o == u {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.sessions, u.sessionID)
	} else {
		t.sessions[u.sessionID] = list
	}
	if u.timeout != nil {
		u.timeout.Stop()
	}
	if u.forget != nil {
		u.forget.Stop()
	}
}

// each calls fn for every followed utterance.
func (t *tracker) each(fn func(*utterance)) {
	for _, u := range t.byID {
		fn(u)
	}
}

// len is how many utterances are followed.
func (t *tracker) len() int { return len(t.byID) }
