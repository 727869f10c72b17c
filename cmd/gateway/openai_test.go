package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/busclient"
)

// sdk is the official OpenAI Go SDK pointed at the gateway, through the
// transport that checks every response against openapi.yaml.
func (g *gateway) sdk(t *testing.T, apiKey string, opts ...option.RequestOption) *openai.Client {
	t.Helper()
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.URL + "/v1/"),
		option.WithAPIKey(apiKey),
		option.WithHTTPClient(g.client),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30 * time.Second),
	}, opts...)...)
	return &c
}

func chatParams(user, text string) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{
		Model:    "ovos",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are helpful."), openai.UserMessage(text)},
	}
	if user != "" {
		p.User = openai.String(user)
	}
	return p
}

// gatewayStatus is the completion's own "gateway" member's status.
func gatewayStatus(t *testing.T, raw string) string {
	t.Helper()
	var ext struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(raw), &ext); err != nil {
		t.Fatalf("gateway member %q: %v", raw, err)
	}
	return ext.Status
}

func TestOpenAIPlainCompletion(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "kitchen")
	c := g.sdk(t, "kitchen:"+key)
	ctx := context.Background()

	res, err := c.Chat.Completions.New(ctx, chatParams("", "say the cat is on the mat"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || !strings.Contains(strings.ToLower(res.Choices[0].Message.Content), "the cat is on the mat") ||
		res.Choices[0].FinishReason != "stop" || res.Model != "ovos" || !strings.HasPrefix(res.ID, "chatcmpl-") {
		t.Fatalf("completion %+v", res)
	}
	if s := gatewayStatus(t, res.JSON.ExtraFields["gateway"].Raw()); s != api.StatusHandled {
		t.Fatalf("status %q", s)
	}

	// Not understood: words a chat shows, and a status that says so.
	res, err = c.Chat.Completions.New(ctx, chatParams("", "blorp frobnicate quux"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != "Sorry, I didn't understand that." || gatewayStatus(t, res.JSON.ExtraFields["gateway"].Raw()) != api.StatusIntentFailure {
		t.Fatalf("not understood: %q %s", res.Choices[0].Message.Content, res.JSON.ExtraFields["gateway"].Raw())
	}

	// A session token works too, and speaks in its own session.
	s := g.login(t, "kitchen", key)
	tc := g.sdk(t, s.Token.Reveal())
	res, err = tc.Chat.Completions.New(ctx, chatParams("", "hello"))
	if err != nil || !strings.Contains(res.Choices[0].Message.Content, "Hello") {
		t.Fatalf("with a token: %v %+v", err, res)
	}
}

func TestOpenAIModels(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "den")
	dc := g.sdk(t, "den:"+key)
	page, err := dc.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "ovos" || page.Data[0].OwnedBy == "" {
		t.Fatalf("models %+v", page.Data)
	}
	// The model is checked.
	p := chatParams("", "hello")
	p.Model = "gpt-4o"
	_, err = dc.Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "model_not_found" || apiErr.Param != "model" {
		t.Fatalf("unknown model: %v", err)
	}
}

// A wrong key is the SDK's own error type; it counts towards a ban of the
// address, as a failed login does.
func TestOpenAIWrongKey(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "3"})
	key := g.createClient(t, "hall")
	from := g.from(t, "127.0.0.2")
	for i := range 3 {
		_, err := from.sdk(t, "hall:gwk_wrong"+fmt.Sprint(i)).Chat.Completions.New(context.Background(), chatParams("", "hello"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Type != "authentication_error" || apiErr.Message == "" {
			t.Fatalf("wrong key %d: %v", i, err)
		}
		if strings.Contains(apiErr.RawJSON(), "gwk_wrong") {
			t.Fatalf("the key is echoed: %s", apiErr.RawJSON())
		}
	}
	// Banned now: even the right key is refused from that address.
	_, err := from.sdk(t, "hall:"+key).Chat.Completions.New(context.Background(), chatParams("", "hello"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("after the ban: %v", err)
	}
	// The right key from another address works, and is remembered...
	for range 2 {
		if _, err := g.sdk(t, "hall:"+key).Chat.Completions.New(context.Background(), chatParams("", "hello")); err != nil {
			t.Fatal(err)
		}
	}
	// ...until it is rotated: the remembered credential is refused at once.
	var rotated api.ClientKeyResponse
	wantStatus(t, g.call(t, http.MethodPost, "/v1/admin/clients/hall/key", g.AdminToken, nil, &rotated), http.StatusOK)
	_, err = g.sdk(t, "hall:"+key).Chat.Completions.New(context.Background(), chatParams("", "hello"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old key after rotation: %v", err)
	}
	if _, err := g.sdk(t, "hall:"+rotated.AccessKey.Reveal()).Chat.Completions.New(context.Background(), chatParams("", "hello")); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	// A deleted client's remembered credential ends too.
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/clients/hall", g.AdminToken, nil, nil), http.StatusNoContent)
	_, err = g.sdk(t, "hall:"+rotated.AccessKey.Reveal()).Chat.Completions.New(context.Background(), chatParams("", "hello"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a deleted client's key: %v", err)
	}
}

func TestOpenAIProtectedIntent(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "attic")
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:*"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)

	_, err := g.sdk(t, "attic:"+key).Chat.Completions.New(context.Background(), chatParams("", "tell me a joke"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != api.EPASSWORDREQUIRED ||
		!strings.Contains(apiErr.Message, "joke.builtin:JokeIntent") || !strings.Contains(apiErr.Message, "X-Intent-Password") {
		t.Fatalf("without the password: %v %s", err, apiErr.RawJSON())
	}
	_, err = g.sdk(t, "attic:"+key, option.WithHeader("X-Intent-Password", "nope")).Chat.Completions.New(context.Background(), chatParams("", "tell me a joke"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != api.EPASSWORDINVALID {
		t.Fatalf("a wrong password: %v", err)
	}
	res, err := g.sdk(t, "attic:"+key, option.WithHeader("X-Intent-Password", "pw")).Chat.Completions.New(context.Background(), chatParams("", "tell me a joke"))
	if err != nil || res.Choices[0].Message.Content == "" || gatewayStatus(t, res.JSON.ExtraFields["gateway"].Raw()) != api.StatusHandled {
		t.Fatalf("with the password: %v %+v", err, res)
	}
}

// The user field names separate conversations: alice's follow-up question
// waits for alice's answer while bob talks.
func TestOpenAIUserKeepsConversationsApart(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "lounge")
	c := g.sdk(t, "lounge:"+key)
	ctx := context.Background()
	q, err := c.Chat.Completions.New(ctx, chatParams("alice", "ask me something"))
	if err != nil || !strings.Contains(q.Choices[0].Message.Content, "?") || gatewayStatus(t, q.JSON.ExtraFields["gateway"].Raw()) != api.StatusAwaitingResponse {
		t.Fatalf("question: %v %+v", err, q)
	}
	b, err := c.Chat.Completions.New(ctx, chatParams("bob", "hello"))
	if err != nil || !strings.Contains(b.Choices[0].Message.Content, "Hello") {
		t.Fatalf("bob was taken for alice's answer: %v %+v", err, b)
	}
	a, err := c.Chat.Completions.New(ctx, chatParams("alice", "blue"))
	if err != nil || !strings.Contains(a.Choices[0].Message.Content, "You said blue") {
		t.Fatalf("alice's answer: %v %+v", err, a)
	}
}

// The streamed answer with the embedded assistant: the role, one chunk per
// speak (count to three speaks three times), the finish, all through the
// SDK.
func TestOpenAIStream(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "porch")
	st := g.sdk(t, "porch:"+key).Chat.Completions.NewStreaming(context.Background(), chatParams("", "count to three"))
	defer st.Close()
	var contents []string
	finish := ""
	var acc openai.ChatCompletionAccumulator
	for st.Next() {
		ch := st.Current()
		acc.AddChunk(ch)
		if len(ch.Choices) != 1 || ch.Object != "chat.completion.chunk" || ch.Model != "ovos" {
			t.Fatalf("chunk %+v", ch)
		}
		if ch.Choices[0].FinishReason != "" {
			finish = ch.Choices[0].FinishReason
			continue
		}
		contents = append(contents, ch.Choices[0].Delta.Content)
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "One.", "\nTwo.", "\nThree."}
	if fmt.Sprint(contents) != fmt.Sprint(want) || finish != "stop" {
		t.Fatalf("chunks %q finish %q, want %q stop", contents, finish, want)
	}
	if got := acc.Choices[0].Message.Content; got != "One.\nTwo.\nThree." {
		t.Fatalf("accumulated %q", got)
	}
}

// Each speak is sent the moment it arrives: the assistant here is the test
// itself on a real bus, which says its second sentence only once the SDK
// has received the first; a gateway that held chunks back until the end
// would never get there.
func TestOpenAIStreamChunksBeforeTheEnd(t *testing.T) {
	addr, _ := serveBus(t, "127.0.0.1:0")
	busURL := "ws://" + addr + "/core"
	g := startGateway(t, map[string]string{"BUS_URL": busURL})
	key := g.createClient(t, "study")

	peer, err := busclient.New(busclient.Config{URL: busURL, Name: "assistant"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peer.Run(ctx)
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	utterances := make(chan *api.Frame, 1)
	defer peer.Subscribe(func(f *api.Frame) {
		if f.Type == api.TypeUtterance {
			utterances <- f
		}
	})()
	reply := func(f *api.Frame, typ, data string) {
		t.Helper()
		rctx := fmt.Sprintf(`{"source":["skills"],"destination":["gateway:study"],"session":{"session_id":%q},"utterance_id":%q}`, f.Route.SessionID, f.Route.UtteranceID)
		if err := peer.Send(ctx, api.Message{Type: typ, Data: json.RawMessage(data), Context: json.RawMessage(rctx)}); err != nil {
			t.Fatal(err)
		}
	}

	st := g.sdk(t, "study:"+key).Chat.Completions.NewStreaming(context.Background(), chatParams("", "read me the news"))
	defer st.Close()
	var u *api.Frame
	select {
	case u = <-utterances:
	case <-time.After(20 * time.Second):
		t.Fatal("the utterance never reached the bus")
	}
	reply(u, api.TypeSpeak, `{"utterance":"First, the weather.","expect_response":false}`)
	next := func() string {
		t.Helper()
		if !st.Next() {
			t.Fatalf("the stream ended early: %v", st.Err())
		}
		ch := st.Current()
		return ch.Choices[0].Delta.Content + "|" + ch.Choices[0].FinishReason
	}
	if got := next(); got != "|" {
		t.Fatalf("first chunk %q, want the role", got)
	}
	if got := next(); got != "First, the weather.|" {
		t.Fatalf("second chunk %q", got)
	}
	// Only now does the assistant go on.
	reply(u, api.TypeSpeak, `{"utterance":"Then, the sport.","expect_response":false}`)
	reply(u, api.TypeUtteranceHandled, `{}`)
	if got := next(); got != "\nThen, the sport.|" {
		t.Fatalf("third chunk %q", got)
	}
	if got := next(); got != "|stop" {
		t.Fatalf("last chunk %q", got)
	}
	if st.Next() {
		t.Fatalf("more after the end: %+v", st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
}

// The exact bytes of a stream, against OpenAI's documented format: events
// "data: <chunk>\n\n" whose chunks share id, created and model, the role in
// the first delta, the content, a last chunk with finish_reason "stop", then
// "data: [DONE]\n\n" and the end of the body.
func TestOpenAIStreamBytes(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "cellar")
	body := `{"model":"ovos","stream":true,"messages":[{"role":"user","content":"say good evening"}],"temperature":0.2,"some_future_member":{"x":1}}`
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer cellar:"+key)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Each event parses as SSE, of data fields only.
	dec := apiclient.NewDecoder(bytes.NewReader(raw), 0, "")
	dec.Observe(func(field, value string) {
		if field != "data" {
			t.Errorf("field %q (%q)", field, value)
		}
	})
	var events []apiclient.Event
	for {
		ev, err := dec.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		events = append(events, ev)
	}
	if len(events) != 4 || string(events[3].Data) != "[DONE]" {
		t.Fatalf("events %q, want 3 chunks and [DONE]", events)
	}
	var first struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(events[0].Data, &first); err != nil {
		t.Fatalf("first event %q: %v", events[0].Data, err)
	}
	uid := strings.TrimPrefix(first.ID, "chatcmpl-")
	head := fmt.Sprintf(`{"id":%q,"object":"chat.completion.chunk","created":%d,"model":"ovos","choices":[{"index":0,"delta":`, first.ID, first.Created)
	want := "data: " + head + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		"data: " + head + `{"content":"good evening"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		"data: " + head + `{},"logprobs":null,"finish_reason":"stop"}],"gateway":{"utterance_id":"` + uid + `","status":"handled"}}` + "\n\n" +
		"data: [DONE]\n\n"
	if string(raw) != want {
		t.Fatalf("stream bytes:\n%s\nwant:\n%s", raw, want)
	}
}

// "Broken" is not "not understood": an assistant that never answers is a
// 504 (plain) or an error event (streamed); a bus link that drops while the
// assistant handles is a 502.
func TestOpenAIBrokenIsNotNotUnderstood(t *testing.T) {
	addr, _ := serveBus(t, "127.0.0.1:0")
	g := startGateway(t, map[string]string{"BUS_URL": "ws://" + addr + "/core", "UTTERANCE_TIMEOUT": "1s"})
	key := g.createClient(t, "shed")
	c := g.sdk(t, "shed:"+key)

	// Nobody on the bus answers: the utterance times out.
	_, err := c.Chat.Completions.New(context.Background(), chatParams("", "hello"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusGatewayTimeout || apiErr.Code != api.EASSISTANTTIMEOUT || apiErr.Type != "server_error" {
		t.Fatalf("timeout: %v", err)
	}
	st := c.Chat.Completions.NewStreaming(context.Background(), chatParams("", "hello"))
	for st.Next() {
		if ch := st.Current(); ch.Choices[0].FinishReason != "" {
			t.Fatalf("a timed-out stream finished as if answered: %+v", ch)
		}
	}
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("streamed timeout: %v", err)
	}
	st.Close()

}

// The bus link drops while the assistant handles the utterance: 502.
func TestOpenAIAssistantFailure(t *testing.T) {
	addr, stop := serveBus(t, "127.0.0.1:0")
	busURL := "ws://" + addr + "/core"
	g := startGateway(t, map[string]string{"BUS_URL": busURL})
	key := g.createClient(t, "barn")
	peer, err := busclient.New(busclient.Config{URL: busURL, Name: "assistant"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peer.Run(ctx)
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	heard := make(chan struct{}, 1)
	defer peer.Subscribe(func(f *api.Frame) {
		if f.Type == api.TypeUtterance {
			select {
			case heard <- struct{}{}:
			default:
			}
		}
	})()
	done := make(chan error, 1)
	go func() {
		_, err := g.sdk(t, "barn:"+key).Chat.Completions.New(context.Background(), chatParams("", "hello"))
		done <- err
	}()
	select {
	case <-heard: // the utterance is on the bus, being handled
	case <-time.After(20 * time.Second):
		t.Fatal("the utterance never reached the bus")
	}
	stop()
	err = <-done
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != api.EASSISTANT {
		t.Fatalf("link down: %v", err)
	}
}
