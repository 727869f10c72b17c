package api

// Event names on a client's Server-Sent-Events stream (docs/protocol.md, "The
// event stream").
const (
	EventReady   = "ready"
	EventSpeak   = "speak"
	EventDone    = "done"
	EventMessage = "message"
	EventGap     = "gap"
)

// Utterance statuses: how handling of an utterance ended.
const (
	StatusAccepted         = "accepted"
	StatusHandled          = "handled"
	StatusIntentFailure    = "intent_failure"
	StatusTimeout          = "timeout"
	StatusError            = "error"
	StatusAwaitingResponse = "awaiting_response"
)

// ReadyEvent opens every stream.
type ReadyEvent struct {
	ClientID string `json:"client_id"`
	// SessionID is the session whose credential opened the stream (nil for
	// the admin): a client tells its own session's events by it.
	SessionID    *string `json:"session_id"`
	ConnectionID string  `json:"connection_id"`
}

// SpeakEvent is the assistant speaking to the client. UtteranceID is nil when
// the speech answers none of this client's utterances (a timer, say).
// SessionID is the client's session it belongs to (the stream is the
// client's, shared by its sessions), nil when the speech names none of them.
type SpeakEvent struct {
	UtteranceID    *string `json:"utterance_id"`
	SessionID      *string `json:"session_id"`
	Utterance      string  `json:"utterance"`
	ExpectResponse bool    `json:"expect_response"`
	Lang           string  `json:"lang"`
}

// DoneEvent says that handling of an utterance ended, and how. SessionID is
// the session that sent the utterance.
type DoneEvent struct {
	UtteranceID string `json:"utterance_id"`
	SessionID   string `json:"session_id"`
	Status      string `json:"status"`
}

// GapEvent says that events after LastEventID were lost before FirstEventID,
// the first event this connection receives.
type GapEvent struct {
	LastEventID  string `json:"last_event_id"`
	FirstEventID string `json:"first_event_id"`
}

// Event is one event for a client's stream, before it gets its id: a name
// from the Event* constants and its JSON data (one object).
type Event struct {
	Name string
	Data []byte
}
