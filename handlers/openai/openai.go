// Package openai speaks OpenAI's Chat Completions dialect in front of the
// assistant: POST /v1/chat/completions (plain and streamed) and GET
// /v1/models. The last user message is the utterance; it takes the one
// utterance path of POST /v1/utterances (intent gate, bridge), and the
// assistant's speech comes back as the assistant's message, or as stream
// chunks the moment each speak arrives.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Defaults and bounds.
const (
	// DefaultModel is the assistant's model id.
	DefaultModel = "ovos"
	// MaxMessages bounds a request's messages (the client's history).
	MaxMessages = 1024
	// maxUser bounds the user field, a conversation's name.
	maxUser = 256
	// NotUnderstood is the message of an intent failure on which the
	// assistant said nothing (ovos-core only plays a sound): a chat client
	// shows words, never an empty bubble.
	NotUnderstood = "Sorry, I didn't understand that."
	// ConversationKind keeps the user field's conversations apart from
	// other dialects' (utterances.ConversationSession).
	ConversationKind = "openai"
)

// Talker starts utterances on the one utterance path (utterances.Service).
type Talker interface {
	Start(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest) (*bridge.Pending, error)
}

// Config configures the handlers.
type Config struct {
	// Model is the id the assistant goes by (default DefaultModel).
	Model string
	// Created is the model's creation time shown by /v1/models (default:
	// when New ran).
	Created time.Time
	// MaxWait bounds how long an answer is awaited (default 2m); the
	// bridge's utterance timeout usually ends it first.
	MaxWait time.Duration
	// Heartbeat is the longest a stream stays silent (default 15s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a stream (default 10s).
	WriteTimeout time.Duration
	// Closing, when closed, ends open streams (server shutdown).
	Closing <-chan struct{}
}

// Handler serves the OpenAI routes.
type Handler struct {
	cfg  Config
	talk Talker
}

// New fills cfg's defaults.
func New(cfg Config, talk Talker) (*Handler, error) {
	if talk == nil {
		return nil, errors.New("openai: nil talker")
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Now()
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	return &Handler{cfg: cfg, talk: talk}, nil
}

// Errors is the middleware in front of the OpenAI routes: every refusal on
// them, whoever writes it, carries OpenAI's "error" object beside the
// problem details, which is what OpenAI's SDKs read.
func Errors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(problem.WithShape(r.Context(), shape)))
	})
}

// shaped is a problem with OpenAI's error object.
type shaped struct {
	api.Problem
	Error api.OpenAIError `json:"error"`
}

func shape(p api.Problem, err error) any {
	code := strings.TrimPrefix(p.Type, api.ProblemTypePrefix)
	e := api.OpenAIError{Message: p.Detail, Type: errorType(p.Status), Code: code}
	var pe *paramError
	if errors.As(err, &pe) {
		e.Param, e.Code = &pe.param, pe.code
	}
	if code == api.EPASSWORDREQUIRED {
		e.Message += " in the " + api.IntentPasswordHeader + " header"
	}
	if e.Message == "" {
		e.Message = p.Title
	}
	return shaped{Problem: p, Error: e}
}

// errorType is OpenAI's error type for a status.
func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// paramError is an EINVALID or ENOTFOUND refusal that names the request
// member at fault, as OpenAI's "param", with OpenAI's code.
type paramError struct {
	err   *api.Error
	param string
	code  string
}

func (e *paramError) Error() string { return e.err.Error() }
func (e *paramError) Unwrap() error { return e.err }

func unsupported(param, what string) error {
	return &paramError{err: api.Errorf(api.EINVALID, "%s: %s is not supported by this assistant", param, what), param: param, code: "unsupported_parameter"}
}

func invalid(param, format string, args ...any) error {
	return &paramError{err: api.Errorf(api.EINVALID, format, args...), param: param, code: "invalid_value"}
}

// ServeModels answers GET /v1/models: the assistant as the one model.
func (h *Handler) ServeModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.ModelList{Object: "list", Data: []api.Model{h.model()}})
}

func (h *Handler) model() api.Model {
	return api.Model{ID: h.cfg.Model, Object: "model", Created: h.cfg.Created.Unix(), OwnedBy: "ovos-gateway"}
}

// ServeChat answers POST /v1/chat/completions.
func (h *Handler) ServeChat(w http.ResponseWriter, r *http.Request) {
	if err := h.chat(w, r); err != nil {
		problem.Write(w, r, err)
	}
}

// request is what a chat request asks, once read and checked.
type request struct {
	utterance string
	user      string
	stream    bool
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) error {
	var req api.ChatRequest
	if err := jsonbody.Decode(r, &req, false); err != nil {
		return err
	}
	q, err := h.check(req)
	if err != nil {
		return err
	}
	id, _ := api.IdentityFrom(r.Context())
	id = Conversation(id, q.user)
	ur := api.UtteranceRequest{Utterance: q.utterance, Password: api.Secret(r.Header.Get(api.IntentPasswordHeader))}
	if err := api.CheckUtterance(ur); err != nil {
		var e *api.Error
		if errors.As(err, &e) {
			return &paramError{err: e, param: "messages", code: "invalid_value"}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.MaxWait)
	defer cancel()
	p, err := h.talk.Start(ctx, id, middleware.ClientAddr(r), ur)
	if err != nil {
		return err
	}
	c := completion{id: "chatcmpl-" + p.ID(), created: time.Now().Unix(), model: h.cfg.Model, uid: p.ID()}
	if q.stream {
		return h.stream(ctx, w, r, p, c)
	}
	res := p.Wait(ctx)
	text, err := answer(res.Status, res.Speech)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ChatCompletion{
		ID: c.id, Object: api.ChatObjectCompletion, Created: c.created, Model: c.model,
		Choices: []api.ChatChoice{{Message: api.ChatReply{Role: api.ChatRoleAssistant, Content: text}, FinishReason: api.ChatFinishStop}},
		Gateway: api.ChatGatewayExt{UtteranceID: c.uid, Status: endStatus(res.Status)},
	})
	return nil
}

// Conversation is the identity an utterance goes out with: the client's
// session when the request names no conversation and comes with a session
// token; otherwise the named conversation's own OVOS session (the client's
// standing one when user is empty and the client sent its key).
func Conversation(id api.Identity, user string) api.Identity {
	if user != "" || id.SessionID == "" {
		id.SessionID = utterances.ConversationSession(id.ClientID, ConversationKind, user)
	}
	return id
}

// endStatus is how handling ended as the completion says it: a wait that
// ran out is a timeout.
func endStatus(status string) string {
	if status == api.StatusAccepted || status == "" {
		return api.StatusTimeout
	}
	return status
}

// answer is the assistant's message for a finished utterance, or the error
// that stands for it: speech is an answer whatever the end; an intent
// failure without speech is NotUnderstood; a timeout or an error without
// speech is 504 or 502.
func answer(status string, speech []api.Speech) (string, error) {
	if len(speech) > 0 {
		return joinSpeech(speech), nil
	}
	switch endStatus(status) {
	case api.StatusHandled, api.StatusAwaitingResponse:
		return "", nil
	case api.StatusIntentFailure:
		return NotUnderstood, nil
	case api.StatusTimeout:
		return "", api.Errorf(api.EASSISTANTTIMEOUT, "the assistant did not answer in time")
	default:
		return "", api.Errorf(api.EASSISTANT, "the assistant failed while handling the utterance")
	}
}

func joinSpeech(speech []api.Speech) string {
	parts := make([]string, len(speech))
	for i, s := range speech {
		parts[i] = s.Utterance
	}
	return strings.Join(parts, "\n")
}

// check reads what the request asks, refusing what cannot be honoured by
// name.
func (h *Handler) check(req api.ChatRequest) (request, error) {
	switch {
	case present(req.Tools):
		return request{}, unsupported("tools", "tool calling")
	case present(req.Functions):
		return request{}, unsupported("functions", "function calling")
	case present(req.FunctionCall):
		return request{}, unsupported("function_call", "function calling")
	case present(req.ToolChoice) && string(req.ToolChoice) != `"none"`:
		return request{}, unsupported("tool_choice", "tool calling")
	case present(req.Audio):
		return request{}, unsupported("audio", "audio output")
	case present(req.Modalities) && string(req.Modalities) != `["text"]`:
		return request{}, unsupported("modalities", "output other than text")
	case req.N != nil && *req.N != 1:
		return request{}, unsupported("n", "more than one choice")
	case req.Logprobs != nil && *req.Logprobs:
		return request{}, unsupported("logprobs", "log probabilities")
	case req.TopLogprobs != nil && *req.TopLogprobs != 0:
		return request{}, unsupported("top_logprobs", "log probabilities")
	case present(req.ResponseFormat) && !textFormat(req.ResponseFormat):
		return request{}, unsupported("response_format", "a response format other than text")
	case req.Model == nil || *req.Model == "":
		return request{}, invalid("model", "model is required: %s", h.cfg.Model)
	case *req.Model != h.cfg.Model:
		return request{}, &paramError{err: api.Errorf(api.ENOTFOUND, "the model %q does not exist; GET /v1/models lists %q", clip(*req.Model), h.cfg.Model), param: "model", code: "model_not_found"}
	case len(req.Messages) == 0:
		return request{}, invalid("messages", "messages must hold at least one message")
	case len(req.Messages) > MaxMessages:
		return request{}, invalid("messages", "messages holds more than %d messages", MaxMessages)
	}
	q := request{stream: req.Stream != nil && *req.Stream}
	if req.User != nil {
		q.user = *req.User
		if len(q.user) > maxUser || strings.IndexFunc(q.user, unicode.IsControl) >= 0 {
			return request{}, invalid("user", "user must be at most %d characters, without control characters", maxUser)
		}
	}
	last := -1
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return request{}, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role must be system, developer, user, assistant or tool", i)
		}
		text, err := content(m.Content, i)
		if err != nil {
			return request{}, err
		}
		if m.Role == "user" {
			last, q.utterance = i, text
		}
	}
	if last < 0 {
		return request{}, invalid("messages", "messages must hold a user message: the last one is what is said")
	}
	return q, nil
}

// content is a message's text: a string, or its text parts joined, with
// every run of white space (line breaks too) made one space. Parts the
// assistant cannot hear (images, audio, files) are refused by name.
func content(raw json.RawMessage, i int) (string, error) {
	param := fmt.Sprintf("messages[%d].content", i)
	if !present(raw) {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalid(param, "%s must be a string or a list of content parts", param)
		}
		return strings.Join(strings.Fields(s), " "), nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "%s must be a string or a list of content parts", param)
	}
	var texts []string
	for j, pr := range parts {
		pp := fmt.Sprintf("%s[%d]", param, j)
		var part api.ChatContentPart
		if len(pr) == 0 || pr[0] != '{' || json.Unmarshal(pr, &part) != nil {
			return "", invalid(pp, "%s must be a content part object", pp)
		}
		switch part.Type {
		case "text":
			if part.Text == nil {
				return "", invalid(pp, "%s.text must be a string", pp)
			}
			texts = append(texts, *part.Text)
		case "image_url", "image":
			return "", unsupported(pp, "images")
		case "input_audio", "audio":
			return "", unsupported(pp, "audio input")
		case "file":
			return "", unsupported(pp, "files")
		default:
			return "", invalid(pp, "%s has an unknown type", pp)
		}
	}
	return strings.Join(strings.Fields(strings.Join(texts, " ")), " "), nil
}

// present is whether a raw member was sent with a value: not absent, not
// null, not an empty list.
func present(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null" && s != "[]"
}

func textFormat(raw json.RawMessage) bool {
	var f struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &f) == nil && f.Type == "text"
}

// clip shortens what a client sent before it is echoed in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// writeJSON sends v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
