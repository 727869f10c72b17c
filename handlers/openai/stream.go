package openai

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
)

// completion names the completion every chunk belongs to.
type completion struct {
	id      string
	created int64
	model   string
	uid     string
}

// stream answers with OpenAI's streaming shape on Server-Sent Events: a
// first chunk with the assistant's role, one chunk per speak as soon as it
// arrives (each after the first begins with a line break, so the chunks
// joined are the plain answer), a last chunk with the finish reason, then
// "data: [DONE]". A timeout or an error with nothing said ends with an
// "error" event instead, as OpenAI's streams do. Silence longer than the
// heartbeat gets an SSE comment, which clients ignore.
func (h *Handler) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, p *bridge.Pending, c completion) error {
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	chunk := func(delta api.ChatDelta, finish *string, ext *api.ChatGatewayExt) bool {
		b, _ := json.Marshal(api.ChatChunk{
			ID: c.id, Object: api.ChatObjectChunk, Created: c.created, Model: c.model,
			Choices: []api.ChatChunkChoice{{Delta: delta, FinishReason: finish}},
			Gateway: ext,
		})
		return write(event(b))
	}
	empty := ""
	if !chunk(api.ChatDelta{Role: api.ChatRoleAssistant, Content: &empty}, nil, nil) {
		return nil
	}
	heartbeat := time.NewTimer(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	said := 0
	for {
		speech, status, changed := p.Progress(said)
		for _, s := range speech {
			text := s.Utterance
			if said > 0 {
				text = "\n" + text
			}
			said++
			if !chunk(api.ChatDelta{Content: &text}, nil, nil) {
				return nil
			}
			heartbeat.Reset(h.cfg.Heartbeat)
		}
		if status != "" {
			h.finish(write, chunk, c, status, said)
			return nil
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if !write([]byte(": keepalive\n\n")) {
				return nil
			}
			heartbeat.Reset(h.cfg.Heartbeat)
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return nil // the client went away
			}
			h.finish(write, chunk, c, api.StatusTimeout, said)
			return nil
		case <-h.cfg.Closing:
			h.finish(write, chunk, c, api.StatusError, said)
			return nil
		}
	}
}

// finish ends a stream whose utterance ended with status after said
// speeches: the not-understood line when nothing was said, the stop chunk
// and [DONE]; or, for a timeout or an error with nothing said, the error
// event and [DONE].
func (h *Handler) finish(write func([]byte) bool, chunk func(api.ChatDelta, *string, *api.ChatGatewayExt) bool, c completion, status string, said int) {
	ext := &api.ChatGatewayExt{UtteranceID: c.uid, Status: endStatus(status)}
	var speech []api.Speech
	if said > 0 {
		speech = make([]api.Speech, said) // only the count matters to answer
	}
	text, err := answer(status, speech)
	if err != nil {
		code := api.ErrorCode(err)
		b, _ := json.Marshal(struct {
			Error   api.OpenAIError    `json:"error"`
			Gateway api.ChatGatewayExt `json:"gateway"`
		}{api.OpenAIError{Message: api.ErrorDetail(err), Type: "server_error", Code: code}, *ext})
		if write(event(b)) {
			write(event([]byte("[DONE]")))
		}
		return
	}
	if said == 0 && text != "" {
		if !chunk(api.ChatDelta{Content: &text}, nil, nil) {
			return
		}
	}
	stop := api.ChatFinishStop
	if chunk(api.ChatDelta{}, &stop, ext) {
		write(event([]byte("[DONE]")))
	}
}

// event is one SSE event of data (JSON, one line).
func event(data []byte) []byte {
	b := make([]byte, 0, len(data)+8)
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}
