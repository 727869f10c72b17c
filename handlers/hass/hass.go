// Package hass speaks Home Assistant's conversation API in front of the
// assistant: POST /api/conversation/process takes {"text", "language",
// "conversation_id", "agent_id"} and answers Home Assistant's intent
// response. A conversation_id names its own OVOS session of the client, so
// a follow-up question continues where it was asked.
package hass

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/jsonbody"
	"github.com/ovosgw/gateway/internal/problem"
	"github.com/ovosgw/gateway/internal/utterances"
	"github.com/ovosgw/gateway/middleware"
)

// Bounds and words.
const (
	// ConversationKind keeps conversation ids apart from other dialects'
	// conversations (utterances.ConversationSession).
	ConversationKind = "hass"
	maxConversation  = 256
	// The speech of outcomes the assistant said nothing about.
	notUnderstood = "Sorry, I didn't understand that."
	tooSlow       = "Sorry, the assistant did not answer in time."
	failed        = "Sorry, something went wrong with the assistant."
)

// Talker starts utterances on the one utterance path (utterances.Service).
type Talker interface {
	Start(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest) (*bridge.Pending, error)
}

// Config configures the handler.
type Config struct {
	// MaxWait bounds how long an answer is awaited (default 2m); the
	// bridge's utterance timeout usually ends it first.
	MaxWait time.Duration
	// Lang is the language answered when the request names none (default
	// "en").
	Lang string
}

// Handler serves POST /api/conversation/process.
type Handler struct {
	cfg  Config
	talk Talker
}

// New fills cfg's defaults.
func New(cfg Config, talk Talker) (*Handler, error) {
	if talk == nil {
		return nil, errors.New("hass: nil talker")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Minute
	}
	if cfg.Lang == "" {
		cfg.Lang = "en"
	}
	return &Handler{cfg: cfg, talk: talk}, nil
}

// ServeHTTP answers a conversation request. Refusals before the utterance
// reaches the assistant (credentials, limits, a bad body, a protected
// intent, the bus down) are problem+json with their status; every outcome of
// handling is 200 in Home Assistant's shape: handled is query_answer (or
// action_done when nothing was said), an intent failure is error
// no_intent_match, a timeout error failed_to_handle, an error unknown.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.process(w, r); err != nil {
		problem.Write(w, r, err)
	}
}

func (h *Handler) process(w http.ResponseWriter, r *http.Request) error {
	var req api.HassRequest
	if err := jsonbody.Decode(r, &req, false); err != nil {
		return err
	}
	if req.Text == nil {
		return api.Errorf(api.EINVALID, "text is required")
	}
	lang := h.cfg.Lang
	if req.Language != nil && *req.Language != "" {
		lang = *req.Language
	}
	conv := ""
	if req.ConversationID != nil {
		conv = *req.ConversationID
	}
	if len(conv) > maxConversation || strings.IndexFunc(conv, unicode.IsControl) >= 0 {
		return api.Errorf(api.EINVALID, "conversation_id must be at most %d characters, without control characters", maxConversation)
	}
	ur := api.UtteranceRequest{
		Utterance: strings.Join(strings.Fields(*req.Text), " "),
		Lang:      lang,
		Password:  api.Secret(r.Header.Get(api.IntentPasswordHeader)),
	}
	if err := api.CheckUtterance(ur); err != nil {
		return err
	}
	if conv == "" {
		conv = newConversationID()
	}
	id, _ := api.IdentityFrom(r.Context())
	id.SessionID = utterances.ConversationSession(id.ClientID, ConversationKind, conv)
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.MaxWait)
	defer cancel()
	p, err := h.talk.Start(ctx, id, middleware.ClientAddr(r), ur)
	if err != nil {
		return err
	}
	res := p.Wait(ctx)
	writeJSON(w, result(res, lang, conv))
	return nil
}

// result is Home Assistant's response for how handling ended.
func result(res api.UtteranceResult, lang, conv string) api.HassResult {
	parts := make([]string, len(res.Speech))
	for i, s := range res.Speech {
		parts[i] = s.Utterance
	}
	speech := strings.Join(parts, "\n")
	out := api.HassResult{ConversationID: conv, Response: api.HassResponse{Language: lang}}
	code := ""
	switch res.Status {
	case api.StatusHandled, api.StatusAwaitingResponse:
		out.Response.ResponseType = api.HassQueryAnswer
		if speech == "" {
			out.Response.ResponseType = api.HassActionDone
		}
		out.ContinueConversation = res.Status == api.StatusAwaitingResponse
	case api.StatusIntentFailure:
		code = api.HassNoIntentMatch
		if speech == "" {
			speech = notUnderstood
		}
	case api.StatusError:
		code = api.HassUnknown
		if speech == "" {
			speech = failed
		}
	default: // timeout, or the wait ran out
		code = api.HassFailed
		if speech == "" {
			speech = tooSlow
		}
	}
	if code != "" {
		out.Response.ResponseType = api.HassError
		out.Response.Data = map[string]any{"code": code}
	} else {
		out.Response.Data = map[string]any{"targets": []any{}, "success": []any{}, "failed": []any{}}
	}
	out.Response.Speech.Plain.Speech = speech
	return out
}

// newConversationID names a new conversation: 128 random bits.
func newConversationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}
