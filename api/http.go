package api

import "time"

// SessionRequest logs a client in (POST /v1/sessions). ClientID may be an alias.
type SessionRequest struct {
	ClientID  string `json:"client_id"`
	AccessKey Secret `json:"access_key"`
}

// SessionResponse is the new session: a JWT and what it names.
type SessionResponse struct {
	Token     Secret    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresIn int64     `json:"expires_in"`
	ExpiresAt time.Time `json:"expires_at"`
	ClientID  string    `json:"client_id"`
	SessionID string    `json:"session_id"`
}

// TicketResponse is a single-use stream ticket for an EventSource on another
// origin (POST /v1/sessions/current/ticket).
type TicketResponse struct {
	Ticket    Secret `json:"ticket"`
	ExpiresIn int64  `json:"expires_in"`
}

// ClientProfile is what a client is called: GET /v1/clients/me and the
// admin list.
type ClientProfile struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

// NamesRequest sets a client's own name and aliases (PUT /v1/clients/me/names).
type NamesRequest struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

// AdminClient is a client as the admin sees it.
type AdminClient struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Aliases   []string  `json:"aliases"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateClientRequest registers a client (POST /v1/admin/clients).
type CreateClientRequest struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

// ClientKeyResponse carries a new access key, shown this once: the answer to
// creating a client and to rotating its key.
type ClientKeyResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Aliases   []string  `json:"aliases"`
	CreatedAt time.Time `json:"created_at"`
	AccessKey Secret    `json:"access_key"`
}

// UtteranceRequest is something a client says (POST /v1/utterances).
type UtteranceRequest struct {
	Utterance string `json:"utterance"`
	Lang      string `json:"lang,omitempty"`
	Password  Secret `json:"password,omitempty"`
}

// UtteranceAccepted answers an utterance sent without ?wait (202).
type UtteranceAccepted struct {
	ID        string `json:"id"`
	ClientID  string `json:"client_id"`
	SessionID string `json:"session_id"`
	Status    string `json:"status"`
}

// Speech is one thing the assistant said.
type Speech struct {
	Utterance      string `json:"utterance"`
	ExpectResponse bool   `json:"expect_response"`
}

// UtteranceResult answers an utterance sent with ?wait= (200), once handling
// ended, the wait ran out, or the assistant asked a follow-up question.
type UtteranceResult struct {
	ID        string   `json:"id"`
	ClientID  string   `json:"client_id"`
	SessionID string   `json:"session_id"`
	Status    string   `json:"status"`
	Speech    []Speech `json:"speech"`
}

// BlacklistEntry is one blocked address range.
type BlacklistEntry struct {
	CIDR      string     `json:"cidr"`
	Reason    string     `json:"reason"`
	Source    string     `json:"source"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Blacklist entry sources.
const (
	BlacklistConfig = "config"
	BlacklistAdmin  = "admin"
	BlacklistAuto   = "auto"
)

// BlacklistRequest adds an entry (POST /v1/admin/blacklist). TTL is a Go
// duration ("1h"); empty means no expiry.
type BlacklistRequest struct {
	CIDR   string `json:"cidr"`
	Reason string `json:"reason"`
	TTL    string `json:"ttl,omitempty"`
	// Confirm adds an entry that covers the requesting address itself
	// (refused with 409 without it: the admin would block their own
	// console).
	Confirm bool `json:"confirm,omitempty"`
}

// ProtectedIntent is one password-protected intent pattern.
type ProtectedIntent struct {
	Pattern   string    `json:"pattern"`
	CreatedAt time.Time `json:"created_at"`
}

// ProtectRequest sets the password of a pattern
// (PUT /v1/admin/protected-intents/{pattern}).
type ProtectRequest struct {
	Password Secret `json:"password"`
}

// Bus states (BusState.State).
const (
	BusUp   = "up"
	BusDown = "down"
)

// BusState is one assistant's messagebus as /readyz lists it: its position
// in GATEWAY_BUS_URL (from "1"; the embedded bus is "1") and whether the
// gateway's link to it is up.
type BusState struct {
	Bus   string `json:"bus"`
	State string `json:"state"`
}

// PartState is the state of a part /readyz names besides the buses: the
// shared state of replicas (Redis).
type PartState struct {
	State string `json:"state"`
}

// BusInfo is one messagebus as the admin sees it (GET /v1/admin/buses): its
// state, its URL without user information, when the state last changed,
// the reconnections of its link, the utterances in flight on it and the
// last link failure.
type BusInfo struct {
	BusState
	URL        string     `json:"url"`
	Since      *time.Time `json:"since,omitempty"`
	Reconnects uint64     `json:"reconnects"`
	InFlight   int64      `json:"in_flight"`
	LastError  string     `json:"last_error,omitempty"`
}
