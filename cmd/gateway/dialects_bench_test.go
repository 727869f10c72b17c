package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// BenchmarkSayWaitVersusChat compares, in one process with the embedded
// assistant, an utterance through POST /v1/utterances?wait= with the same
// utterance through POST /v1/chat/completions: what the OpenAI path adds
// (docs/PERFORMANCE.md). Run: go test -run XXX -bench SayWaitVersusChat
// ./cmd/gateway/
func BenchmarkSayWaitVersusChat(b *testing.B) {
	full := map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_DATA_DIR": b.TempDir(), "GATEWAY_LOG_LEVEL": "error",
		"GATEWAY_UTTERANCE_RATE": "100000", "GATEWAY_ADDR_RATE": "100000",
	}
	stdout, logs := &gatewaytest.Buffer{}, &gatewaytest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return full[k] }, strings.NewReader(""), stdout, logs)
	}()
	defer func() { cancel(); <-done }()
	var base, admin string
	gatewaytest.EventuallyWithin(b, startLimit, "the gateway to start", func() bool {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base, admin = m[1], adminLine.FindStringSubmatch(stdout.String())[1]
		}
		return base != ""
	})
	client := &http.Client{}
	do := func(path, token string, body any, out any) int {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil {
			_ = json.Unmarshal(data, out)
		}
		return resp.StatusCode
	}
	var created api.ClientKeyResponse
	gatewaytest.EventuallyWithin(b, startLimit, "the client to be created", func() bool {
		return do("/v1/admin/clients", admin, api.CreateClientRequest{ID: "bench"}, &created) == http.StatusCreated
	})
	var s api.SessionResponse
	if do("/v1/sessions", "", api.SessionRequest{ClientID: "bench", AccessKey: created.AccessKey}, &s) != http.StatusCreated {
		b.Fatal("no session")
	}
	tok := s.Token.Reveal()

	b.Run("wait", func(b *testing.B) {
		for b.Loop() {
			var r api.UtteranceResult
			if do("/v1/utterances?wait=10s", tok, api.UtteranceRequest{Utterance: "say hello"}, &r) != http.StatusOK || r.Status != api.StatusHandled {
				b.Fatalf("wait: %+v", r)
			}
		}
	})
	chat := map[string]any{"model": "ovos", "messages": []map[string]string{{"role": "user", "content": "say hello"}}}
	b.Run("chat", func(b *testing.B) {
		for b.Loop() {
			var r api.ChatCompletion
			if do("/v1/chat/completions", tok, chat, &r) != http.StatusOK || r.Gateway.Status != api.StatusHandled {
				b.Fatalf("chat: %+v", r)
			}
		}
	})
	b.Run("chat-client-key", func(b *testing.B) {
		key := "bench:" + created.AccessKey.Reveal()
		for b.Loop() {
			var r api.ChatCompletion
			if do("/v1/chat/completions", key, chat, &r) != http.StatusOK || r.Gateway.Status != api.StatusHandled {
				b.Fatalf("chat: %+v", r)
			}
		}
	})
}
