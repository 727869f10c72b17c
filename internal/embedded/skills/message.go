package skills

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ovosgw/gateway/api"
)

// Context members the skills read or write (docs/bus.md, "How replies find their
// way back").
const (
	ctxSource      = "source"
	ctxDestination = "destination"
	ctxSession     = "session"
	ctxLang        = "lang"
	ctxSkillID     = "skill_id"
	sessSessionID  = "session_id"
	sessLang       = "lang"
)

// message is one bus message decoded for building answers: the Go
// counterpart of ovos_bus_client.Message. Data and Context are open JSON
// objects decoded with json.Number, so members the skills do not know
// (utterance_id, client_name, an expanded session with float timestamps)
// are carried through unchanged when the message is encoded again.
type message struct {
	Type    string
	Data    map[string]any
	Context map[string]any
	// ctxJSON is Context encoded, nil until needed. A handler sends several
	// messages forwarded from one context; encoding it once saves most of
	// the cost of each. Context must change only through withContext (or
	// before ctxJSON is first set, as expandSession on a fresh reply).
	ctxJSON json.RawMessage
	// sharedCtx: Context is shared with a message forwarded from or to this
	// one, and withContext must copy it before changing it.
	sharedCtx bool
}

// decodeMessage decodes an envelope's data and context. A missing or null
// member is an empty object; anything else that is not one JSON object fails.
func decodeMessage(m api.Message) (*message, error) {
	data, err := decodeObject(m.Data)
	if err != nil {
		return nil, fmt.Errorf("message %q data: %w", m.Type, err)
	}
	ctx, err := decodeObject(m.Context)
	if err != nil {
		return nil, fmt.Errorf("message %q context: %w", m.Type, err)
	}
	return &message{Type: m.Type, Data: data, Context: ctx}, nil
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]any{}, nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	if obj == nil {
		obj = map[string]any{}
	}
	return obj, nil
}

// reply is message.reply(type, data): the context is deep-copied and its
// source and destination are swapped, but only when both are present (a
// null member counts as present, as Python's `in` does). So an utterance
// with source "<client id>" and destination ["skills"] gets answers with
// source ["skills"] and destination "<client id>"; one with neither gets
// answers with neither.
func (m *message) reply(typ string, data map[string]any) *message {
	ctx := deepCopyMap(m.Context)
	src, hasSrc := ctx[ctxSource]
	dst, hasDst := ctx[ctxDestination]
	if hasSrc && hasDst {
		ctx[ctxSource], ctx[ctxDestination] = dst, src
	}
	return &message{Type: typ, Data: deepCopyMap(data), Context: ctx}
}

// forward is message.forward(type, data): the context is kept as it is. Go
// maps are shared by reference, so the two messages share it until either
// changes it (withContext copies it first): a handler forwards one context
// half a dozen times, and copying it each time was the larger part of the
// embedded assistant's garbage. A nil data is {}, as in Python.
func (m *message) forward(typ string, data map[string]any) *message {
	m.sharedCtx = true
	return &message{Type: typ, Data: deepCopyMap(data), Context: m.Context, ctxJSON: m.contextJSON(), sharedCtx: true}
}

// contextJSON returns the encoded context, encoding it once; nil when it
// does not encode (encode then reports why).
func (m *message) contextJSON() json.RawMessage {
	if m.ctxJSON == nil {
		m.ctxJSON, _ = marshalObject(m.Context)
	}
	return m.ctxJSON
}

// response is message.response(data): a reply of type "<type>.response".
func (m *message) response(data map[string]any) *message {
	return m.reply(m.Type+".response", data)
}

// withContext sets one context member and returns m, for chaining after
// reply or forward (ovos-core adds context.lang, skills add
// context.skill_id).
func (m *message) withContext(key string, v any) *message {
	if m.sharedCtx {
		m.Context, m.sharedCtx = deepCopyMap(m.Context), false
	}
	m.Context[key] = v
	m.ctxJSON = nil
	return m
}

// encode marshals m back into an envelope. HTML characters are not escaped
// (Python's json.dumps does not either), numbers keep their digits.
func (m *message) encode() (api.Message, error) {
	data, err := marshalObject(m.Data)
	if err != nil {
		return api.Message{}, fmt.Errorf("message %q data: %w", m.Type, err)
	}
	ctx := m.ctxJSON
	if ctx == nil {
		if ctx, err = marshalObject(m.Context); err != nil {
			return api.Message{}, fmt.Errorf("message %q context: %w", m.Type, err)
		}
	}
	return api.Message{Type: m.Type, Data: data, Context: ctx}, nil
}

// marshalObject encodes a decoded object as Python's json.dumps would carry
// it: HTML characters not escaped, numbers (json.Number) with their digits.
func marshalObject(obj map[string]any) (json.RawMessage, error) {
	if obj == nil {
		return json.RawMessage("{}"), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// deepCopyMap copies a decoded JSON object; nil becomes an empty object.
func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

// deepCopy copies the mutable parts of a decoded JSON value (objects and
// arrays); strings, numbers, booleans and null are immutable and shared.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopyMap(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// session returns the context's session object, or nil when there is none
// or it is not an object.
func (m *message) session() map[string]any {
	s, _ := m.Context[ctxSession].(map[string]any)
	return s
}

// sessionID is context.session.session_id, or "default" when absent, as
// ovos-core's SessionManager reads it.
func (m *message) sessionID() string {
	if s, ok := m.session()[sessSessionID].(string); ok && s != "" {
		return s
	}
	return api.DefaultSessionID
}

// lang is the language of a message, as ovos-bus-client's get_message_lang
// finds it: data.lang, else context.lang, else context.session.lang, else
// en-us. It is echoed as given (no case folding), as the fixtures show.
func (m *message) lang() string {
	if l, ok := m.Data[ctxLang].(string); ok && l != "" {
		return l
	}
	if l, ok := m.Context[ctxLang].(string); ok && l != "" {
		return l
	}
	if l, ok := m.session()[sessLang].(string); ok && l != "" {
		return l
	}
	return api.DefaultLang
}

// expandSession does, in a small way, what ovos-core does to every context it
// answers: the session becomes an object with a session_id ("default" when the
// sender gave none) and a lang. Every member the sender put there is kept;
// a session that is present but not an object is left alone.
func expandSession(ctx map[string]any, lang string) {
	raw, present := ctx[ctxSession]
	if present && raw != nil {
		if _, ok := raw.(map[string]any); !ok {
			return
		}
	}
	s, _ := raw.(map[string]any)
	if s == nil {
		s = map[string]any{}
		ctx[ctxSession] = s
	}
	if id, ok := s[sessSessionID].(string); !ok || id == "" {
		s[sessSessionID] = api.DefaultSessionID
	}
	if l, ok := s[sessLang].(string); !ok || l == "" {
		s[sessLang] = lang
	}
}

// stringList reads a JSON array of strings; ok is false when v is not an
// array or holds anything but strings.
func stringList(v any) (list []string, ok bool) {
	arr, isArr := v.([]any)
	if !isArr {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
