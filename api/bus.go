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
	buf := bytes.NewBuffer(b)
	if json.Compact(buf, raw) != nil {
		return nil, errors.New("not a JSON object")
	}
	return buf.Bytes(), nil
}

// Names is a context's source or destination: on the wire either a string or a
// list of strings (docs/bus.md: replies swap them, so both forms appear). It
// decodes both and encodes a single name as a string, several as a list.
type Names []string

// UnmarshalJSON accepts a string, a list of strings, or null. Non-string list
// members are skipped rather than failing the whole frame: the bus is not
// ours to trust, but one odd member should not hide a reply. A number or an
// object where a name belongs is read as no name.
func (n *Names) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return errors.New("names: invalid JSON")
	}
	switch b[0] {
	case '"':
		var s string
		_ = json.Unmarshal(b, &s)
		*n = Names{s}
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(b, &items)
		out := make(Names, 0, len(items))
		for _, it := range items {
			var s string
			if it[0] == '"' && json.Unmarshal(it, &s) == nil {
				out = append(out, s)
			}
		}
		*n = out
	default:
		*n = nil
	}
	return nil
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
// decoded once, and the bytes as they came. The bus's decoder
// (internal/busframe) makes it; Data and Context share Raw's bytes: nobody
// may modify a frame (subscribers share it).
type Frame struct {
	Message
	Route Route
	Raw   []byte
}

// GatewaySource is the context source (and reply destination) that names a
// client of this gateway on the bus.
func GatewaySource(clientID string) string { return GatewaySourcePrefix + clientID }
