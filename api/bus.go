package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Bus message types the gateway and its embedded assistant use (BUS.md).
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
// gateway does not know are carried through unchanged (BUS.md, "The
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
	t, err := json.Marshal(m.Type)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(t) + len(m.Data) + len(m.Context) + 32)
	b.WriteString(`{"type":`)
	b.Write(t)
	b.WriteString(`,"data":`)
	if err := writeObject(&b, m.Data); err != nil {
		return nil, fmt.Errorf("bus message %q data: %w", m.Type, err)
	}
	b.WriteString(`,"context":`)
	if err := writeObject(&b, m.Context); err != nil {
		return nil, fmt.Errorf("bus message %q context: %w", m.Type, err)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeObject(b *bytes.Buffer, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		b.WriteString(defaultEmptyObjectJSONText)
		return nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return errors.New("not a JSON object")
	}
	return json.Compact(b, raw)
}

// Names is a context's source or destination: on the wire either a string or a
// list of strings (BUS.md: replies swap them, so both forms appear). It
// decodes both and encodes a single name as a string, several as a list.
type Names []string

// UnmarshalJSON accepts a string, a list of strings, or null. Non-string list
// members are skipped rather than failing the whole frame: the bus is not
// ours to trust, but one odd member should not hide a reply.
func (n *Names) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*n = nil
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = Names{s}
		return nil
	case b[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		out := make(Names, 0, len(items))
		for _, it := range items {
			var s string
			if len(it) > 0 && it[0] == '"' && json.Unmarshal(it, &s) == nil {
				out = append(out, s)
			}
		}
		*n = out
		return nil
	default:
		// A number or an object where a name belongs: treat as absent.
		*n = nil
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
// decoded once, and the bytes as they came.
type Frame struct {
	Message
	Route Route
	Raw   []byte
}

// routeContext is the part of a context that routing reads; other members
// are ignored by encoding/json and stay in Message.Context untouched.
type routeContext struct {
	Source      Names           `json:"source"`
	Destination Names           `json:"destination"`
	Session     json.RawMessage `json:"session"`
	UtteranceID json.RawMessage `json:"utterance_id"`
}

type routeSession struct {
	SessionID json.RawMessage `json:"session_id"`
}

type routeData struct {
	Target json.RawMessage `json:"target"`
}

// ParseFrame decodes one websocket text frame. It fails, without panicking,
// on anything that is not a JSON object with a non-empty string type and
// object (or missing/null) data and context; odd member types inside the
// context (a numeric session id, say) are read as absent instead.
func ParseFrame(raw []byte) (*Frame, error) {
	var env struct {
		Type    *string         `json:"type"`
		Data    json.RawMessage `json:"data"`
		Context json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("bus frame is not a JSON envelope: %w", err)
	}
	if env.Type == nil || *env.Type == "" {
		return nil, errors.New("bus frame has no type")
	}
	f := &Frame{Message: Message{Type: *env.Type}, Raw: raw}
	var err error
	if f.Data, err = objectOrEmpty(env.Data); err != nil {
		return nil, fmt.Errorf("bus frame %q data: %w", f.Type, err)
	}
	if f.Context, err = objectOrEmpty(env.Context); err != nil {
		return nil, fmt.Errorf("bus frame %q context: %w", f.Type, err)
	}
	f.Route = decodeRoute(f.Context, f.Data)
	return f, nil
}

func objectOrEmpty(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage(defaultEmptyObjectJSONText), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	return raw, nil
}

func decodeRoute(ctx, data json.RawMessage) Route {
	var r Route
	var c routeContext
	if json.Unmarshal(ctx, &c) == nil {
		r.Source, r.Destination = c.Source, c.Destination
		r.UtteranceID = stringOrEmpty(c.UtteranceID)
		var s routeSession
		if len(c.Session) > 0 && c.Session[0] == '{' && json.Unmarshal(c.Session, &s) == nil {
			r.SessionID = stringOrEmpty(s.SessionID)
		}
	}
	var d routeData
	if bytes.Contains(data, []byte(`"target"`)) && json.Unmarshal(data, &d) == nil {
		r.Target = stringOrEmpty(d.Target)
	}
	return r
}

func stringOrEmpty(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// GatewaySource is the context source (and reply destination) that names a
// client of this gateway on the bus.
func GatewaySource(clientID string) string { return GatewaySourcePrefix + clientID }
