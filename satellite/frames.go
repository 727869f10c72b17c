package satellite

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// Loop protection and addressing of what the bridge puts on the local bus.
const (
	// Source is the context source of everything the bridge re-emits.
	Source = "satellite"
	// ReemittedKey is the context member, set to true, that marks a frame the
	// bridge re-emitted: no satellite ever forwards such a frame.
	ReemittedKey = "satellite_reemitted"
	// SpeakerDestination addresses a speak to the device's own speaker:
	// the assistant speaks aloud when the destination is one of its own
	// sources (docs/bus.md, "How replies find their way back").
	SpeakerDestination = "audio"
)

// localUtterance is what the bridge reads from a device's
// recognizer_loop:utterance.
type localUtterance struct {
	text      string
	lang      string
	sessionID string
	session   json.RawMessage
	source    api.Names
}

// notForwarded says why an utterance frame is not the device's own, or ""
// when it is: what the bridge re-emitted itself (its mark or its source),
// and what the gateway put on this bus for its clients.
func notForwarded(f *api.Frame) string {
	for _, s := range f.Route.Source {
		switch {
		case s == Source:
			return "re-emitted by a satellite"
		case strings.HasPrefix(s, api.GatewaySourcePrefix):
			return "sent by the gateway for a client"
		}
	}
	if string(busframe.Member(f.Context, ReemittedKey)) == "true" {
		return "re-emitted by a satellite"
	}
	return ""
}

// parseUtterance reads a recognizer_loop:utterance of the device: its first
// transcription, its language (data, then context, then session) and its
// session as it came. Members are read by their exact names, as the
// device's assistant reads them (busframe.Member).
func parseUtterance(f *api.Frame) (localUtterance, error) {
	var utterances []json.RawMessage
	if raw := busframe.Member(f.Data, "utterances"); len(raw) > 0 && raw[0] != 'n' {
		if err := json.Unmarshal(raw, &utterances); err != nil {
			return localUtterance{}, errors.New("data is not an utterance")
		}
	}
	var text string
	if len(utterances) == 0 || json.Unmarshal(utterances[0], &text) != nil || strings.TrimSpace(text) == "" {
		return localUtterance{}, errors.New("no utterances in data")
	}
	u := localUtterance{text: strings.TrimSpace(text), source: f.Route.Source, sessionID: sessionKey(f.Route.SessionID)}
	if sess := busframe.Member(f.Context, "session"); len(sess) > 0 && sess[0] == '{' {
		u.session = sess
	}
	var sessionLang json.RawMessage
	if u.session != nil {
		sessionLang = busframe.Member(u.session, "lang")
	}
	for _, raw := range []json.RawMessage{busframe.Member(f.Data, "lang"), busframe.Member(f.Context, "lang"), sessionLang} {
		var l string
		if json.Unmarshal(raw, &l) == nil && l != "" {
			u.lang = gatewayLang(l)
			break
		}
	}
	return u, nil
}

// sessionKey is a frame's session id for matching: OVOS answers an
// utterance without session in the default session.
func sessionKey(id string) string {
	if id == "" {
		return api.DefaultSessionID
	}
	return id
}

// gatewayLang turns a POSIX-style locale (en_US) into the language tag the
// gateway accepts (en-US); anything else longer than a tag is dropped.
func gatewayLang(l string) string {
	l = strings.ReplaceAll(strings.TrimSpace(l), "_", "-")
	if len(l) > 35 || strings.ContainsAny(l, " .@") {
		return ""
	}
	return l
}

// failureText is the utterance a complete_intent_failure names (OVOS
// repeats the utterance's data), "" when it names none.
func failureText(f *api.Frame) string {
	var utterances []string
	if json.Unmarshal(busframe.Member(f.Data, "utterances"), &utterances) != nil || len(utterances) == 0 {
		return ""
	}
	return strings.TrimSpace(utterances[0])
}

// speakMessage is the gateway's answer as the device's speaker takes it: a
// speak addressed to "audio" in the session of the utterance it answers,
// marked as re-emitted.
func speakMessage(ev api.SpeakEvent, session json.RawMessage) (api.Message, error) {
	if len(session) == 0 {
		session = json.RawMessage(`{"session_id":"` + api.DefaultSessionID + `"}`)
	}
	data, err := json.Marshal(map[string]any{
		"utterance":       ev.Utterance,
		"expect_response": ev.ExpectResponse,
		"lang":            ev.Lang,
	})
	if err != nil {
		return api.Message{}, err
	}
	ctx, err := json.Marshal(map[string]any{
		"source":      Source,
		"destination": []string{SpeakerDestination},
		"session":     session,
		ReemittedKey:  true,
	})
	if err != nil {
		return api.Message{}, err
	}
	return api.Message{Type: api.TypeSpeak, Data: data, Context: ctx}, nil
}

// forwardedMessage is a bus message of the gateway's stream (a `message`
// event) as it came, its context marked as re-emitted.
func forwardedMessage(raw []byte) (api.Message, error) {
	f, err := busframe.Parse(raw)
	if err != nil {
		return api.Message{}, err
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(f.Context, &ctx); err != nil || ctx == nil {
		ctx = map[string]json.RawMessage{}
	}
	ctx[ReemittedKey] = json.RawMessage("true")
	b, err := json.Marshal(ctx)
	if err != nil {
		return api.Message{}, err
	}
	return api.Message{Type: f.Type, Data: f.Data, Context: b}, nil
}

// reemittedPrefixes are the bus message types, besides speak, that the
// bridge re-emits on the device's bus: the audio service's (play, stop,
// pause, resume, next, prev, queue, track info), so that what a server
// skill plays is played by the device. Its sounds (mycroft.audio.play_sound:
// the error and listening sounds of the server's own handling) are not.
var reemittedPrefixes = []string{"mycroft.audio.service."}

// Reemitted reports whether a bus message of type typ coming on the
// gateway's stream is re-emitted on the device's bus (speak, and the audio
// service's messages); the others concern the server's assistant only.
func Reemitted(typ string) bool {
	if typ == api.TypeSpeak {
		return true
	}
	for _, p := range reemittedPrefixes {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// contextUtteranceID is the gateway's utterance id a bus message carries in
// its context, "" when none.
func contextUtteranceID(raw []byte) string {
	var s string
	if !json.Valid(raw) || json.Unmarshal(busframe.Member(busframe.Member(raw, "context"), "utterance_id"), &s) != nil {
		return ""
	}
	return s
}
