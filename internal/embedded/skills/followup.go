package skills

import (
	"sync"

	"github.com/ovosgw/gateway/api"
)

// answer is an utterance consumed as the answer to a get_response.
type answer struct {
	msg  *message
	text string
}

// waiter is one get_response waiting for the next utterance of its session.
type waiter struct {
	ch chan answer // capacity 1: at most one answer is ever delivered
}

// waiters are the get_responses in progress, by session id, oldest first.
// They are bounded by the handlers running at once.
type waiters struct {
	mu        sync.Mutex
	bySession map[string][]*waiter
}

// add registers a waiter for the session's next utterance. It must be
// called before the question is spoken, so that an answer sent after the
// client heard the question always finds it.
func (ws *waiters) add(sessionID string) *waiter {
	w := &waiter{ch: make(chan answer, 1)}
	ws.mu.Lock()
	ws.bySession[sessionID] = append(ws.bySession[sessionID], w)
	ws.mu.Unlock()
	return w
}

// remove unregisters w if it is still waiting.
func (ws *waiters) remove(sessionID string, w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	list := ws.bySession[sessionID]
	for i, x := range list {
		if x == w {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ws.bySession, sessionID)
	} else {
		ws.bySession[sessionID] = list
	}
}

// has reports whether anyone waits for the session's next utterance.
func (ws *waiters) has(sessionID string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.bySession[sessionID]) > 0
}

// deliver hands a to the session's oldest waiter, which it unregisters; it
// reports false when nobody waits.
func (ws *waiters) deliver(sessionID string, a answer) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	list := ws.bySession[sessionID]
	if len(list) == 0 {
		return false
	}
	w := list[0]
	if len(list) == 1 {
		delete(ws.bySession, sessionID)
	} else {
		ws.bySession[sessionID] = list[1:]
	}
	w.ch <- a // never blocks: the waiter is delivered to once, then unlisted
	return true
}

// deliverAnswer consumes f as the answer of a get_response waiting in f's
// session, if there is one and f is a well-formed utterance. Called on the
// bus reader goroutine: it decodes f only when someone waits.
func (s *Skills) deliverAnswer(f *api.Frame) bool {
	sid := frameSessionID(f)
	if !s.waiters.has(sid) {
		return false
	}
	m, err := decodeMessage(f.Message)
	if err != nil {
		return false
	}
	text, ok := utteranceText(m)
	if !ok {
		return false
	}
	return s.waiters.deliver(sid, answer{msg: m, text: text})
}

// frameSessionID is the frame's session id, "default" when it has none (the
// same as message.sessionID, read from the route busframe.Parse decoded).
func frameSessionID(f *api.Frame) string {
	if f.Route.SessionID == "" {
		return api.DefaultSessionID
	}
	return f.Route.SessionID
}
