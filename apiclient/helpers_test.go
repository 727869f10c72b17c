package apiclient_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// waitFor bounds every wait of these tests: generous, since a failure shows
// as a timeout, never as a slow pass.
const waitFor = 20 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// newClient registers id on g and returns a client of it with quick
// reconnects.
func newClient(t *testing.T, g *gatewaytest.Gateway, id string, mod func(*apiclient.Config)) *apiclient.Client {
	t.Helper()
	key := g.CreateClient(t, id)
	cfg := apiclient.Config{
		BaseURL:    g.URL,
		ClientID:   id,
		AccessKey:  api.Secret(key),
		Logger:     testLogger(t),
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := apiclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stream runs c.Stream until the test ends and hands its events over.
type stream struct {
	events chan apiclient.Event
	done   chan error
}

func startStream(t *testing.T, c *apiclient.Client) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{events: make(chan apiclient.Event, 4096), done: make(chan error, 1)}
	go func() {
		s.done <- c.Stream(ctx, apiclient.StreamOptions{}, func(ev apiclient.Event) {
			select {
			case s.events <- ev:
			default:
				t.Errorf("test stream buffer full, event %s dropped", ev.Name)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Stream = %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Stream did not return after cancel")
		}
	})
	return s
}

// next returns the next event for which match is true, skipping others.
func (s *stream) next(t *testing.T, what string, match func(apiclient.Event) bool) apiclient.Event {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev := <-s.events:
			if match(ev) {
				return ev
			}
		case err := <-s.done:
			t.Fatalf("stream ended (%v) while waiting for %s", err, what)
		case <-timeout:
			t.Fatalf("no %s within %v", what, waitFor)
		}
	}
}

func named(name string) func(apiclient.Event) bool {
	return func(ev apiclient.Event) bool { return ev.Name == name }
}

// answering matches the speak or done event of utterance id.
func answering(name, id string) func(apiclient.Event) bool {
	return func(ev apiclient.Event) bool {
		if ev.Name != name {
			return false
		}
		var v struct {
			UtteranceID *string `json:"utterance_id"`
		}
		return json.Unmarshal(ev.Data, &v) == nil && v.UtteranceID != nil && *v.UtteranceID == id
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// sayEventually retries Say while the gateway is coming back.
func sayEventually(t *testing.T, c *apiclient.Client, text string) api.UtteranceAccepted {
	t.Helper()
	var acc api.UtteranceAccepted
	gatewaytest.EventuallyWithin(t, waitFor, fmt.Sprintf("the gateway to accept %q", text), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		acc, err = c.Say(ctx, api.UtteranceRequest{Utterance: text})
		if err != nil {
			if ok, _ := apiclient.Retryable(err); !ok {
				t.Fatalf("say %q: %v", text, err)
			}
		}
		return err == nil
	})
	return acc
}

type tlsConfig = tls.Config

func decodeBody[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}
