package api

import "encoding/json"

// The wire types of the dialects the gateway also speaks: OpenAI's Chat
// Completions (POST /v1/chat/completions, GET /v1/models) and Home
// Assistant's conversation API (POST /api/conversation/process). Only the
// members the gateway reads or writes are here; a request's other members
// are ignored, as those APIs ignore what they do not know.

// ChatRequest is an OpenAI chat completion request. Members the gateway
// cannot honour are kept raw so that it can refuse them by name.
type ChatRequest struct {
	Model          *string         `json:"model"`
	Messages       []ChatMessage   `json:"messages"`
	Stream         *bool           `json:"stream"`
	User           *string         `json:"user"`
	N              *int            `json:"n"`
	Logprobs       *bool           `json:"logprobs"`
	TopLogprobs    *int            `json:"top_logprobs"`
	Tools          json.RawMessage `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	Functions      json.RawMessage `json:"functions"`
	FunctionCall   json.RawMessage `json:"function_call"`
	Audio          json.RawMessage `json:"audio"`
	Modalities     json.RawMessage `json:"modalities"`
	ResponseFormat json.RawMessage `json:"response_format"`
}

// ChatMessage is one message of a chat request: its content is a string or
// a list of content parts, read by the handler.
type ChatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// ChatContentPart is one part of a message's content list.
type ChatContentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

// Chat completion object names and finish reasons.
const (
	ChatObjectCompletion = "chat.completion"
	ChatObjectChunk      = "chat.completion.chunk"
	ChatFinishStop       = "stop"
	ChatRoleAssistant    = "assistant"
)

// ChatCompletion answers a chat request without stream.
type ChatCompletion struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []ChatChoice   `json:"choices"`
	Usage   ChatUsage      `json:"usage"`
	Gateway ChatGatewayExt `json:"gateway"`
}

// ChatChoice is the one choice of a completion.
type ChatChoice struct {
	Index        int       `json:"index"`
	Message      ChatReply `json:"message"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

// ChatReply is the assistant's message: what it said.
type ChatReply struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

// ChatUsage is OpenAI's token count. The assistant counts no tokens: zeros.
type ChatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatGatewayExt is the gateway's own member of a completion (OpenAI
// clients ignore it): the utterance and how its handling ended, so that a
// client that cares can tell "not understood" (intent_failure) from an
// answer.
type ChatGatewayExt struct {
	UtteranceID string `json:"utterance_id"`
	Status      string `json:"status"`
}

// ChatChunk is one event of a streamed completion.
type ChatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []ChatChunkChoice `json:"choices"`
	// Gateway is set on the last chunk only.
	Gateway *ChatGatewayExt `json:"gateway,omitempty"`
}

// ChatChunkChoice is the delta of one chunk.
type ChatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        ChatDelta `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// ChatDelta is what a chunk adds to the message.
type ChatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// ModelList answers GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// Model is the assistant as an OpenAI model.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// OpenAIError is the "error" member OpenAI clients read from a refusal; the
// gateway sends it beside the problem details' members.
type OpenAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// HassRequest is Home Assistant's conversation request.
type HassRequest struct {
	Text           *string `json:"text"`
	Language       *string `json:"language"`
	ConversationID *string `json:"conversation_id"`
	AgentID        *string `json:"agent_id"`
}

// Home Assistant's response types and error codes.
const (
	HassActionDone    = "action_done"
	HassQueryAnswer   = "query_answer"
	HassError         = "error"
	HassNoIntentMatch = "no_intent_match"
	HassFailed        = "failed_to_handle"
	HassUnknown       = "unknown"
)

// HassResult answers a conversation request.
type HassResult struct {
	Response             HassResponse `json:"response"`
	ConversationID       string       `json:"conversation_id"`
	ContinueConversation bool         `json:"continue_conversation"`
}

// HassResponse is Home Assistant's intent response.
type HassResponse struct {
	ResponseType string         `json:"response_type"`
	Language     string         `json:"language"`
	Data         map[string]any `json:"data"`
	Speech       HassSpeech     `json:"speech"`
	Card         struct{}       `json:"card"`
}

// HassSpeech holds the plain-text speech.
type HassSpeech struct {
	Plain HassPlain `json:"plain"`
}

// HassPlain is the text to speak.
type HassPlain struct {
	Speech    string    `json:"speech"`
	ExtraData *struct{} `json:"extra_data"`
}
