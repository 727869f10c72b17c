package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// Intent is the assistant's answer to "which intent would handle this?"
// (intent.service.intent.reply, docs/bus.md "Asking which intent would match").
type Intent struct {
	// Name is intent_name (classic Padatious: name; else intent_type).
	Name string
	// Type is intent_type, "skill_id:IntentName", when the match has one.
	Type string
	// SkillID is skill_id; when the reply has none, it is read from Type's
	// prefix or from a fallback request's name
	// ("ovos.skills.fallback.<skill>.request").
	SkillID string
	// Service is intent_service, the pipeline stage that matched.
	Service string
	// Raw is data.intent as the bus carried it.
	Raw json.RawMessage
	// Answer reports that the session's latest follow-up question was
	// still unanswered when the assistant answered: the skill that asked
	// would take the utterance as its answer, whatever intent it matches
	// (set by the bridge, not read from the bus).
	Answer bool
}

const (
	fallbackPrefix = "ovos.skills.fallback."
	fallbackSuffix = ".request"
)

// Intent asks the bus which intent would handle u, without running it: it
// sends intent.service.intent.get with data {"utterance", "lang"} and the same
// kind of context as an utterance (source, destination, session, a fresh
// utterance id), and waits for the intent.service.intent.reply routed back to
// it. It returns nil when nothing matches, and EUNAVAILABLE when the link is
// down or no answer came within IntentTimeout. The dry run's own traffic is
// never shown to the client.
func (b *Bridge) Intent(ctx context.Context, u Utterance) (*Intent, error) {
	if err := b.check(u); err != nil {
		return nil, err
	}
	pos, bus := b.busFor(u.SessionID)
	if bus == nil {
		return nil, unavailable("the assistant's messagebus is not connected")
	}
	id := newID()
	msg, err := b.message(api.TypeIntentGet, u, id, struct {
		Utterance string `json:"utterance"`
		Lang      string `json:"lang"`
	}{u.Text, b.lang(u)})
	if err != nil {
		return nil, err
	}
	p := &Pending{
		b: b, id: id, clientID: u.ClientID, sessionID: u.SessionID, dry: true, bus: pos,
		doneCh: make(chan struct{}), askedCh: make(chan struct{}),
	}
	if err := b.register(p); err != nil {
		return nil, err
	}
	if err := b.own(ctx, p); err != nil {
		return nil, err
	}
	defer func() {
		// Remembered a while after, so that late traffic it caused (pongs)
		// is still recognised as the dry run's.
		b.mu.Lock()
		defer b.mu.Unlock()
		b.end(p, api.StatusHandled)
	}()
	b.st.dryRuns.Add(1)

	source := api.GatewaySource(u.ClientID)
	match := func(f *api.Frame) bool {
		if f.Type != api.TypeIntentReply {
			return false
		}
		if f.Route.UtteranceID != "" {
			return f.Route.UtteranceID == id
		}
		return f.Route.Destination.Has(source)
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.IntentTimeout)
	defer cancel()
	reply, err := bus.Request(rctx, msg, match)
	if err != nil {
		b.st.dryRunFailures.Add(1)
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("bridge: intent query: %w", cerr)
		}
		b.log.Warn("intent query unanswered", "client", u.ClientID, "timeout", b.cfg.IntentTimeout, "err", err)
		return nil, unavailableBy(err, "the assistant did not say which intent would match")
	}
	in, err := parseIntent(reply.Data)
	if err != nil {
		b.st.dryRunFailures.Add(1)
		b.log.Warn("intent reply unreadable", "client", u.ClientID, "err", err)
		return nil, unavailableBy(err, "the assistant's intent answer was unreadable")
	}
	if in != nil {
		in.Answer = b.awaitingAnswer(u.ClientID, u.SessionID)
	}
	return in, nil
}

// awaitingAnswer reports whether a follow-up question of the client's
// session waits for its answer (see Bridge.link).
func (b *Bridge) awaitingAnswer(clientID, sessionID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.session(sessionID)
	if s == nil || s.clientID != clientID {
		return false
	}
	for _, q := range s.pending {
		if q.awaiting && q.status == "" && q.sent {
			return true
		}
	}
	return false
}

// parseIntent reads intent.service.intent.reply's data: nil when data.intent
// is null or missing, an error when it is not an object. Members are read by
// their exact names, as the assistant wrote them (busframe.Member): an "INTENT"
// is no intent.
func parseIntent(data json.RawMessage) (*Intent, error) {
	if d := bytes.TrimSpace(data); len(d) == 0 || d[0] != '{' {
		return nil, fmt.Errorf("intent reply data is not an object")
	}
	raw := bytes.TrimSpace(busframe.Member(data, "intent"))
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("intent reply: intent is not an object")
	}
	var m struct{ IntentName, IntentType, Name, SkillID, IntentService json.RawMessage }
	m.IntentName, m.IntentType, m.Name = busframe.Member(raw, "intent_name"), busframe.Member(raw, "intent_type"), busframe.Member(raw, "name")
	m.SkillID, m.IntentService = busframe.Member(raw, "skill_id"), busframe.Member(raw, "intent_service")
	in := &Intent{
		Name:    jsonString(m.IntentName),
		Type:    jsonString(m.IntentType),
		SkillID: jsonString(m.SkillID),
		Service: jsonString(m.IntentService),
		Raw:     append(json.RawMessage(nil), raw...),
	}
	name := jsonString(m.Name)
	if in.Name == "" {
		in.Name = name
	}
	if in.Name == "" {
		in.Name = in.Type
	}
	if in.Type == "" && strings.Contains(name, ":") {
		in.Type = name
	}
	if in.SkillID == "" {
		if skill, _, ok := strings.Cut(in.Type, ":"); ok {
			in.SkillID = skill
		} else if s, ok := strings.CutPrefix(in.Name, fallbackPrefix); ok {
			if s, ok = strings.CutSuffix(s, fallbackSuffix); ok {
				in.SkillID = s
			}
		}
	}
	return in, nil
}
