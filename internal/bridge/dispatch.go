package bridge

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// Dispatch routes one frame received from the bus to the client it concerns
// (docs/protocol.md, "The bus bridge"): a speak becomes a speak event, anything
// else a message event carrying the frame as the bus carried it, and an end
// signal also ends its utterance with a done event. Frames for no client of
// ours are dropped. It is called by the single bus reader for every frame,
// costs O(1) in the number of clients and sessions, and never blocks.
func (b *Bridge) Dispatch(f *api.Frame) { b.DispatchFrom(0, f) }

// DispatchFrom is Dispatch for a frame that the bus at position pos
// carried; each bus's reader calls it. Frames are routed the same way
// whichever bus carried them, but a frame naming an utterance sent on
// another bus is ignored: the same bus listed twice under two names would
// otherwise deliver its replies twice.
func (b *Bridge) DispatchFrom(pos int, f *api.Frame) {
	if f == nil {
		return
	}
	claimed := false
	if b.cfg.Shared != nil && !b.mine(f) {
		if !b.claim(f) {
			// Another replica's to deliver.
			b.st.ignored.Add(1)
			return
		}
		claimed = true
	}
	switch f.Type {
	case api.TypeConnected, api.TypeUtterance, api.TypeIntentGet:
		// The bus greeting, and our own kind of traffic: our echoes, and
		// other peers' utterances, which no client of ours should see.
		b.st.ignored.Add(1)
		if f.Type != api.TypeConnected && len(b.buses) > 1 {
			b.noteSameBus(pos, f)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &f.Route
	if r.UtteranceID != "" {
		if p := b.utts[r.UtteranceID]; p != nil && (p.dry || p.bus != pos) {
			// Traffic caused by a dry run (the reply, fallback pings): the
			// gateway's question, not the client's. Or a copy of an
			// utterance's traffic on another bus than its own.
			b.st.ignored.Add(1)
			return
		}
	}
	clientID, ok := b.route(f)
	if !ok {
		b.st.unrouted.Add(1)
		if b.log.Enabled(context.Background(), slog.LevelDebug) {
			b.log.Debug("bus message for no client", "type", f.Type)
		}
		return
	}
	if f.Type == api.TypeSpeak {
		b.st.routed.Add(1)
		b.speak(clientID, f, claimed)
		return
	}
	status := endStatus(f.Type)
	var p *Pending
	if status != "" {
		p = b.pendingFor(clientID, r)
		if p == nil && b.endedFor(clientID, r) {
			// The end signal of an utterance that has ended already (on
			// OVOS, ovos.utterance.handled after handler.complete or
			// complete_intent_failure; any end after a timeout or an
			// error): done was its last event and stays so.
			b.st.ignored.Add(1)
			return
		}
	}
	b.st.routed.Add(1)
	b.publish(clientID, api.Event{Name: api.EventMessage, Data: frameJSON(f)}, claimed)
	switch {
	case p == nil:
	case p.question != nil && p.question.status == "":
		// The answer to a follow-up question whose skill goes on: it ends
		// with the question, once the reply has been spoken.
		p.ownEnd = cmp.Or(p.ownEnd, status)
	default:
		b.end(p, status)
	}
}

// noteSameBus logs, once per bus, that the bus at pos carried an utterance
// this bridge sent on another bus: two entries of the list are one bus.
func (b *Bridge) noteSameBus(pos int, f *api.Frame) {
	id := f.Route.UtteranceID
	if id == "" || pos < 0 || pos >= len(b.sameBus) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.utts[id]; p != nil && p.bus != pos && !b.sameBus[pos] {
		b.sameBus[pos] = true
		b.log.Error("two configured buses are one messagebus: replies are taken only from the bus each utterance went to", "bus", pos+1, "other", p.bus+1)
	}
}

// endStatus is the status an end signal gives its utterance, or "".
func endStatus(typ string) string {
	switch typ {
	case api.TypeUtteranceHandled, api.TypeHandlerComplete:
		// On OVOS handler.complete comes just before ovos.utterance.handled
		// (which then finds its utterance ended and is only a message);
		// classic mycroft-core sends only handler.complete.
		return api.StatusHandled
	case api.TypeIntentFailure:
		return api.StatusIntentFailure
	}
	return ""
}

// route finds the client a frame is for, in order: a destination naming a
// known client; the session id of one of our sessions (not for a speak
// without destination, the assistant's own broadcast); data.target; for
// complete_intent_failure (sent unswapped by classic mycroft-core), a source
// naming a known client. b.mu held; it is released around Resolve calls.
func (b *Bridge) route(f *api.Frame) (string, bool) {
	r := &f.Route
	unknown := false
	for _, d := range r.Destination {
		if id, ok := strings.CutPrefix(d, api.GatewaySourcePrefix); ok {
			if _, known := b.clients[id]; known {
				return id, true
			}
			unknown = true
		}
	}
	if unknown && b.cfg.Resolve != nil {
		for _, d := range r.Destination {
			if id, ok := strings.CutPrefix(d, api.GatewaySourcePrefix); ok {
				if cid, ok := b.resolve(id); ok {
					return cid, true
				}
			}
		}
	}
	if r.SessionID != "" && (f.Type != api.TypeSpeak || len(r.Destination) > 0) {
		if s := b.session(r.SessionID); s != nil {
			return s.clientID, true
		}
	}
	if r.Target != "" {
		name := r.Target
		if id, ok := strings.CutPrefix(name, api.GatewaySourcePrefix); ok {
			name = id
		}
		if _, known := b.clients[name]; known {
			return name, true
		}
		if cid, ok := b.resolve(name); ok {
			return cid, true
		}
	}
	if f.Type == api.TypeIntentFailure {
		for _, s := range r.Source {
			if id, ok := strings.CutPrefix(s, api.GatewaySourcePrefix); ok {
				if _, known := b.clients[id]; known {
					return id, true
				}
				if cid, ok := b.resolve(id); ok {
					return cid, true
				}
			}
		}
	}
	return "", false
}

// resolve asks Config.Resolve for a client id, outside the lock, and makes
// the client known. b.mu held.
func (b *Bridge) resolve(name string) (string, bool) {
	if b.cfg.Resolve == nil || name == "" {
		return "", false
	}
	b.mu.Unlock()
	cid, ok := b.cfg.Resolve(name)
	b.mu.Lock()
	if !ok || cid == "" {
		return "", false
	}
	b.knownClient(cid)
	return cid, true
}

// pendingFor is the pending utterance of clientID a reply concerns: the one
// its context names, or, when it names none, the oldest pending one of its
// session. An utterance id naming an ended (or unknown) utterance finds
// nothing, so a second end signal never ends the next utterance. b.mu held.
func (b *Bridge) pendingFor(clientID string, r *api.Route) *Pending {
	if r.UtteranceID != "" {
		if p := b.utts[r.UtteranceID]; p != nil && p.clientID == clientID && p.status == "" && !p.dry {
			return p
		}
		return nil
	}
	if s := b.session(r.SessionID); s != nil && s.clientID == clientID && len(s.pending) > 0 {
		return s.pending[0]
	}
	return nil
}

// endedFor reports whether a reply of clientID concerns an utterance of
// its that has ended: its context names one (still remembered), or names
// none while its session, one of ours, has nothing pending. b.mu held.
func (b *Bridge) endedFor(clientID string, r *api.Route) bool {
	if r.UtteranceID != "" {
		p := b.utts[r.UtteranceID]
		return p != nil && p.clientID == clientID && p.status != "" && !p.dry
	}
	s := b.session(r.SessionID)
	return s != nil && s.clientID == clientID && len(s.pending) == 0
}

// speak turns a speak frame into clientID's speak event, and collects it for
// its pending utterance. b.mu held.
func (b *Bridge) speak(clientID string, f *api.Frame, claimed bool) {
	// The members read, as decoding data into a struct would pick them;
	// members of the wrong JSON type are read as absent.
	ev := api.SpeakEvent{
		Utterance:      jsonString(busframe.Member(f.Data, "utterance")),
		ExpectResponse: bytes.Equal(busframe.Member(f.Data, "expect_response"), []byte("true")),
		Lang:           jsonString(busframe.Member(f.Data, "lang")),
	}
	// The utterance it answers: the one its context names if it is this
	// client's and pending; a context naming none falls back to the
	// session's oldest pending utterance, as end signals do. Speech that
	// comes after its utterance ended (a timer, speech after a timeout)
	// names none: done was that utterance's last event.
	var u, p *Pending
	if uid := f.Route.UtteranceID; uid != "" {
		if q := b.utts[uid]; q != nil && q.clientID == clientID && !q.dry {
			u = q
		}
	} else {
		u = b.pendingFor(clientID, &f.Route)
	}
	if u != nil && u.status == "" {
		ev.UtteranceID = &u.id
		p = u
		if a := u.answer; a != nil && a.status == "" {
			// Spoken in a question's context after the client answered it:
			// the reply to that answer, and named so.
			ev.UtteranceID = &a.id
		}
	}
	// The session it belongs to: its utterance's, or the one its context
	// names when that is one of this client's.
	if u != nil {
		ev.SessionID = &u.sessionID
	} else if s := b.session(f.Route.SessionID); s != nil && s.clientID == clientID {
		sid := f.Route.SessionID
		ev.SessionID = &sid
	}
	if ev.Lang == "" {
		ev.Lang = contextLang(f.Context)
	}
	if ev.Lang == "" && u != nil {
		ev.Lang = u.lang
	}
	if ev.Lang == "" {
		ev.Lang = b.cfg.DefaultLang
	}
	data, _ := json.Marshal(ev)
	b.publish(clientID, api.Event{Name: api.EventSpeak, Data: data}, claimed)
	if p == nil {
		return
	}
	if !p.spoke {
		p.spoke = true
		if b.cfg.Observe != nil {
			b.cfg.Observe(ObserveSpeak, b.cfg.Now().Sub(p.start))
		}
	}
	p.hear(ev)
	if a := p.answer; a != nil && a.status == "" {
		// (The reply may come before the answer's write returns.)
		a.hear(ev)
	}
	if ev.ExpectResponse {
		// A question in p's context: the session's next utterance answers
		// it (Bridge.link).
		p.awaiting = true
	}
}

// hear collects ev's speech for p's result and notes a question. b.mu held.
func (p *Pending) hear(ev api.SpeakEvent) {
	if p.collect && len(p.speech) < maxSpeech && p.nbytes+len(ev.Utterance) <= maxSpeechBytes {
		p.speech = append(p.speech, api.Speech{Utterance: ev.Utterance, ExpectResponse: ev.ExpectResponse})
		p.nbytes += len(ev.Utterance)
	}
	if ev.ExpectResponse && !p.asked {
		p.asked = true
		close(p.askedCh)
	}
	p.notify()
}

// jsonString is raw as a string, or "" when raw is not a JSON string.
func jsonString(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
		return string(inner) // the common case: nothing to unescape
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// contextLang is the context's lang (OVOS adds it to replies), or "".
func contextLang(ctx json.RawMessage) string {
	return jsonString(busframe.Member(ctx, "lang"))
}

// frameJSON is the frame as the bus carried it, compacted to one line (an
// SSE data line); members the gateway does not know are kept.
func frameJSON(f *api.Frame) []byte {
	if len(f.Raw) > 0 {
		if c := busframe.Compact(f); c != nil {
			return c
		}
	}
	data, err := json.Marshal(f.Message)
	if err != nil {
		return []byte(`{"type":` + strconvQuote(f.Type) + `,"data":{},"context":{}}`)
	}
	return data
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
