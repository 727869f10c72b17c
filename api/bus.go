package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Bus message types the gateway and its embedded assistant use (docs/bus.md).
const (
	TypeConnected              = "connected"
	TypeUtterance              = "recognizer_loop:utterance"
	TypeSpeak                  = "speak"
	TypeUtteranceHandled       = "ovos.utterance.handled"
	TypeHandlerStart           = "mycroft.skill.handler.start"
	TypeHandlerComplete        = "mycroft.skill.handler.complete"
	TypeIntentFailure          = "complete_intent_failure"
	TypeIntentGet              = "intent.service.intent.get"
	TypeIntentReply            = "intent.service.intent.reply"
	TypePlaySound              = "mycroft.audio.play_sound"
	TypeGetResponseEnable      = "skill.converse.get_response.enable"
	TypeGetResponseDisable     = "skill.converse.get_response.disable"
	TypeSkillsIsReady          = "mycroft.skills.is_ready"
	TypeIntentsIsReady         = "mycroft.intents.is_ready"
	TypeFallbackPing           = "ovos.skills.fallback.ping"
	TypeFallbackPong           = "ovos.skills.fallback.pong"
	DestinationSkills          = "skills"
	DefaultSessionID           = "default"
	ContextUtteranceID         = "utterance_id"
	ContextClientName          = "client_name"
	GatewaySourcePrefix        = "gateway:"
	DefaultMaxBusMessageSize   = 25 << 20
	defaultEmptyObjectJSONText = "{}"
)

// Message is the messagebus envelope: {"type", "data", "context"} and nothing
// else. Data and Context are kept as raw JSON objects so that members the
// gateway does not know are carried through unchanged (docs/bus.md, "The
// envelope"). A missing or null data/context marshals as {}.
type Message struct {
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	Context json.RawMessage `json:"context"`
}

// MarshalJSON writes the envelope with {} for an empty data or context, so
// that what goes on the bus is always three members of the right kinds.
func (m Message) MarshalJSON() ([]byte, error) {
	if m.Type == "" {
		return nil, errors.New("bus message without type")
	}
	b := make([]byte, 0, len(m.Type)+len(m.Data)+len(m.Context)+36)
	b = append(b, `{"type":`...)
	if plainString(m.Type) {
		b = append(b, '"')
		b = append(b, m.Type...)
		b = append(b, '"')
	} else {
		t, err := json.Marshal(m.Type)
		if err != nil {
			return nil, err
		}
		b = append(b, t...)
	}
	b = append(b, `,"data":`...)
	b, err := appendObject(b, m.Data)
	if err != nil {
		return nil, fmt.Errorf("bus message %q data: %w", m.Type, err)
	}
	b = append(b, `,"context":`...)
	if b, err = appendObject(b, m.Context); err != nil {
		return nil, fmt.Errorf("bus message %q context: %w", m.Type, err)
	}
	return append(b, '}'), nil
}

// plainString reports whether s encodes as itself between quotes:
// printable ASCII that encoding/json neither escapes nor replaces.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendObject appends raw, compacted, when it is one JSON object; an empty
// or null raw is {}.
func appendObject(b []byte, raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return append(b, defaultEmptyObjectJSONText...), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	s := scanner{b: raw}
	if err := s.document(); err != nil {
		return nil, errors.New("not a JSON object")
	}
	if !s.ws {
		return append(b, raw...), nil
	}
	return appendCompact(b, raw), nil
}

// Names is a context's source or destination: on the wire either a string or a
// list of strings (docs/bus.md: replies swap them, so both forms appear). It
// decodes both and encodes a single name as a string, several as a list.
type Names []string

// UnmarshalJSON accepts a string, a list of strings, or null. Non-string list
// members are skipped rather than failing the whole frame: the bus is not
// ours to trust, but one odd member should not hide a reply.
func (n *Names) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == '"' || b[0] == '[') {
		if !json.Valid(b) {
			return errors.New("names: invalid JSON")
		}
	}
	*n = decodeNames(b)
	return nil
}

// decodeNames reads valid JSON as Names: a string, the strings of a list,
// or nothing (null, or a number or an object where a name belongs).
func decodeNames(v []byte) Names {
	if len(v) == 0 {
		return nil
	}
	switch v[0] {
	case '"':
		s, _ := jsonString(v)
		return Names{s}
	case '[':
		out := make(Names, 0, 1)
		eachElement(v, func(it []byte) {
			if s, ok := jsonString(it); ok {
				out = append(out, s)
			}
		})
		return out
	default:
		return nil
	}
}

// Has reports whether name is one of n.
func (n Names) Has(name string) bool {
	for _, s := range n {
		if s == name {
			return true
		}
	}
	return false
}

// Route is what the gateway reads from a frame to decide whom it concerns:
// the context's source and destination, the OVOS session id, the gateway's own
// utterance id carried in the context, and the 2017 scheme's data.target.
type Route struct {
	Source      Names
	Destination Names
	SessionID   string
	UtteranceID string
	Target      string
}

// Frame is one message received from the bus: the envelope, the routing facts
// decoded once, and the bytes as they came. Data and Context share Raw's
// bytes: nobody may modify a frame (subscribers share it).
type Frame struct {
	Message
	Route Route
	Raw   []byte
	// compact is set by ParseFrame when Raw holds no insignificant
	// whitespace.
	compact bool
}

// CompactRaw returns the frame as the bus carried it, without insignificant
// whitespace (so on one line, an SSE data line): Raw itself when it has none
// (do not modify it), nil when Raw is not valid JSON.
func (f *Frame) CompactRaw() []byte {
	if f.compact {
		return f.Raw
	}
	s := scanner{b: f.Raw}
	if len(f.Raw) == 0 || s.document() != nil {
		return nil
	}
	if !s.ws {
		return f.Raw
	}
	return appendCompact(make([]byte, 0, len(f.Raw)), f.Raw)
}

// envelope collects the top-level members of a frame as the scanner meets
// them, by their exact names; the last of duplicated members wins.
type envelope struct {
	typ, data, ctx []byte
	typeBad        bool // a "type" member was neither a string nor null
}

func (e *envelope) member(m member) {
	switch {
	case m.keyIs("type"):
		e.typ = m.val
		if m.val[0] != '"' && m.val[0] != 'n' {
			e.typeBad = true
		}
	case m.keyIs("data"):
		e.data = m.val
	case m.keyIs("context"):
		e.ctx = m.val
	}
}

// ParseFrame decodes one websocket text frame. It fails, without panicking,
// on anything that is not a JSON object with a non-empty string type and
// object (or missing/null) data and context; odd member types inside the
// context (a numeric session id, say) are read as absent instead. It reads
// the frame in one pass (scan.go) and decides as a Python peer does: member
// names are exact ({"TYPE":"speak"} has no type), the last duplicate wins.
func ParseFrame(raw []byte) (*Frame, error) {
	var env envelope
	s := scanner{b: raw, env: &env}
	if err := s.document(); err != nil {
		return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
	}
	if first := skipSpace(raw, 0); raw[first] != '{' {
		return nil, errors.New("bus frame is not a JSON envelope: not an object")
	}
	if env.typeBad {
		return nil, errors.New("bus frame is not a JSON envelope: type is not a string")
	}
	typ, _ := jsonString(env.typ)
	if typ == "" {
		return nil, errors.New("bus frame has no type")
	}
	f := &Frame{Message: Message{Type: typ}, Raw: raw, compact: !s.ws}
	var err error
	if f.Data, err = objectOrEmpty(env.data); err != nil {
		return nil, fmt.Errorf("bus frame %q data: %w", f.Type, err)
	}
	if f.Context, err = objectOrEmpty(env.ctx); err != nil {
		return nil, fmt.Errorf("bus frame %q context: %w", f.Type, err)
	}
	f.Route = decodeRoute(f.Context, f.Data)
	return f, nil
}

func objectOrEmpty(raw []byte) (json.RawMessage, error) {
	if len(raw) == 0 || raw[0] == 'n' {
		return json.RawMessage(defaultEmptyObjectJSONText), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	return raw, nil
}

// decodeRoute reads the routing facts of a valid context and data object.
func decodeRoute(ctx, data json.RawMessage) Route {
	var r Route
	var src, dst, sess, uid []byte
	eachMember(ctx, func(m member) {
		switch {
		case m.keyIs("source"):
			src = m.val
		case m.keyIs("destination"):
			dst = m.val
		case m.keyIs("session"):
			sess = m.val
		case m.keyIs("utterance_id"):
			uid = m.val
		}
	})
	r.Source, r.Destination = decodeNames(src), decodeNames(dst)
	r.UtteranceID, _ = jsonString(uid)
	if len(sess) > 0 && sess[0] == '{' {
		var id []byte
		eachMember(sess, func(m member) {
			if m.keyIs("session_id") {
				id = m.val
			}
		})
		r.SessionID, _ = jsonString(id)
	}
	// data can be large: it is searched only when it holds the key as
	// written, then its members are matched exactly.
	if bytes.Contains(data, []byte(`"target"`)) {
		var t []byte
		eachMember(data, func(m member) {
			if m.keyIs("target") {
				t = m.val
			}
		})
		r.Target, _ = jsonString(t)
	}
	return r
}

// GatewaySource is the context source (and reply destination) that names a
// client of this gateway on the bus.
func GatewaySource(clientID string) string { return GatewaySourcePrefix + clientID }
