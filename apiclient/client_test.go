package apiclient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

func TestNewValidates(t *testing.T) {
	ok := apiclient.Config{BaseURL: "http://127.0.0.1:8080", ClientID: "k", AccessKey: "x"}
	tests := []struct {
		name string
		mod  func(*apiclient.Config)
		ok   bool
	}{
		{"valid", func(*apiclient.Config) {}, true},
		{"https with prefix", func(c *apiclient.Config) { c.BaseURL = "https://gw.example/voice/" }, true},
		{"no URL", func(c *apiclient.Config) { c.BaseURL = "" }, false},
		{"ws scheme", func(c *apiclient.Config) { c.BaseURL = "ws://h/core" }, false},
		{"no host", func(c *apiclient.Config) { c.BaseURL = "http:///x" }, false},
		{"credentials in URL", func(c *apiclient.Config) { c.BaseURL = "http://u:p@h" }, false},
		{"query", func(c *apiclient.Config) { c.BaseURL = "http://h/?token=x" }, false},
		{"no client", func(c *apiclient.Config) { c.ClientID = "" }, false},
		{"no key", func(c *apiclient.Config) { c.AccessKey = "" }, false},
		{"negative timeout", func(c *apiclient.Config) { c.RequestTimeout = -time.Second }, false},
		{"max below min", func(c *apiclient.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, false},
		{"negative event size", func(c *apiclient.Config) { c.MaxEventSize = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := apiclient.New(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New = %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Errorf("error shows the URL's credentials: %v", err)
			}
		})
	}
}

func TestSayAndStream(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	c := newClient(t, g, "kitchen", nil)
	ctx := context.Background()

	s, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.ClientID != "kitchen" || s.SessionID == "" || s.Token == "" {
		t.Fatalf("session %+v", s)
	}
	me, err := c.Me(ctx)
	if err != nil || me.ID != "kitchen" {
		t.Fatalf("me = %+v, %v", me, err)
	}

	st := startStream(t, c)
	ready := decode[api.ReadyEvent](t, st.next(t, "ready", named(api.EventReady)).Data)
	if ready.ClientID != "kitchen" {
		t.Fatalf("ready %+v", ready)
	}
	acc, err := c.Say(ctx, api.UtteranceRequest{Utterance: "hello", Lang: "en-us"})
	if err != nil || acc.ID == "" || acc.Status != api.StatusAccepted {
		t.Fatalf("say = %+v, %v", acc, err)
	}
	sp := decode[api.SpeakEvent](t, st.next(t, "speak", answering(api.EventSpeak, acc.ID)).Data)
	if sp.Utterance == "" {
		t.Fatalf("speak %+v", sp)
	}
	done := decode[api.DoneEvent](t, st.next(t, "done", answering(api.EventDone, acc.ID)).Data)
	if done.Status != api.StatusHandled {
		t.Fatalf("done %+v", done)
	}

	res, err := c.SayAndWait(ctx, api.UtteranceRequest{Utterance: "tell me a joke"}, 10*time.Second)
	if err != nil || res.Status != api.StatusHandled || len(res.Speech) != 1 || res.Speech[0].Utterance == "" {
		t.Fatalf("joke = %+v, %v", res, err)
	}
	res, err = c.SayAndWait(ctx, api.UtteranceRequest{Utterance: "blorp frobnicate"}, 10*time.Second)
	if err != nil || res.Status != api.StatusIntentFailure {
		t.Fatalf("gibberish = %+v, %v", res, err)
	}
	if _, err := c.SayAndWait(ctx, api.UtteranceRequest{Utterance: "hi"}, 0); err == nil {
		t.Error("SayAndWait without a wait succeeded")
	}

	tk, err := c.Ticket(ctx)
	if err != nil || tk.Ticket == "" || tk.ExpiresIn <= 0 {
		t.Fatalf("ticket = %+v, %v", tk, err)
	}
	prof, err := c.SetNames(ctx, api.NamesRequest{Name: "Kitchen", Aliases: []string{"cozinha"}})
	if err != nil || prof.Name != "Kitchen" || len(prof.Aliases) != 1 {
		t.Fatalf("names = %+v, %v", prof, err)
	}
}

func TestRefusalsAreTypedErrors(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	good := newClient(t, g, "den", nil)
	ctx := context.Background()

	t.Run("wrong key", func(t *testing.T) {
		bad, err := apiclient.New(apiclient.Config{BaseURL: g.URL, ClientID: "den", AccessKey: "gwk_wrong-key-value"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Session(ctx)
		var e *apiclient.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code() != api.EUNAUTHORIZED {
			t.Fatalf("err = %#v", err)
		}
		if strings.Contains(err.Error(), "gwk_wrong-key-value") {
			t.Errorf("error shows the key: %v", err)
		}
		if ok, _ := apiclient.Retryable(err); ok {
			t.Error("a wrong key is retryable")
		}
		// The stream refuses for good rather than hammering the login.
		if err := bad.Stream(ctx, apiclient.StreamOptions{}, func(apiclient.Event) {}); apiclient.Code(err) != api.EUNAUTHORIZED {
			t.Errorf("Stream = %v, want unauthorized", err)
		}
	})
	t.Run("bad utterance", func(t *testing.T) {
		_, err := good.Say(ctx, api.UtteranceRequest{Utterance: "   "})
		if apiclient.Code(err) != api.EINVALID {
			t.Fatalf("err = %v", err)
		}
		var e *apiclient.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Problem.Detail == "" {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("logged out token is replaced", func(t *testing.T) {
		s1, err := good.Session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := good.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := good.Me(ctx); err != nil {
			t.Fatal(err)
		}
		s2, _ := good.Session(ctx)
		if s2.SessionID == s1.SessionID {
			t.Error("no new session after logout")
		}
	})
	t.Run("revoked token is renewed once", func(t *testing.T) {
		s1, err := good.Session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Revoke behind the client's back: it only learns from the 401.
		if st := g.Do(t, http.MethodDelete, "/v1/sessions/current", s1.Token.Reveal(), nil, nil); st != http.StatusNoContent {
			t.Fatalf("logout status %d", st)
		}
		if _, err := good.Me(ctx); err != nil {
			t.Fatalf("Me after revocation = %v", err)
		}
		if s2, _ := good.Session(ctx); s2.SessionID == s1.SessionID {
			t.Error("the revoked session is still used")
		}
	})
	t.Run("gateway gone is retryable", func(t *testing.T) {
		c, err := apiclient.New(apiclient.Config{BaseURL: "http://127.0.0.1:1", ClientID: "den", AccessKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Say(ctx, api.UtteranceRequest{Utterance: "hello"})
		if ok, _ := apiclient.Retryable(err); err == nil || !ok {
			t.Fatalf("err = %v, retryable %v", err, ok)
		}
	})
}

// TestStreamRenewsTokenBeforeExpiry: with RenewBefore close to the token's
// lifetime, the client logs in again every second or so, and the stream
// moves to the new token without losing an event.
func TestStreamRenewsTokenBeforeExpiry(t *testing.T) {
	g := gatewaytest.Start(t, map[string]string{"TOKEN_TTL": "1m"})
	c := newClient(t, g, "attic", func(cfg *apiclient.Config) { cfg.RenewBefore = 58 * time.Second })
	ctx := context.Background()
	s1, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := startStream(t, c)
	st.next(t, "ready", named(api.EventReady))
	seenReady := 0
	deadline := time.Now().Add(waitFor)
	var answered int
	last := s1.SessionID
	for seenReady < 2 || answered < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d reconnects and %d answers", seenReady, answered)
		}
		acc := sayEventually(t, c, "hello")
		st.next(t, "done", func(ev apiclient.Event) bool {
			if ev.Name == api.EventReady {
				seenReady++
			}
			return answering(api.EventDone, acc.ID)(ev)
		})
		answered++
		// The next answer after the next renewal, not after some time.
		gatewaytest.Eventually(t, "the client to log in again", func() bool {
			s, err := c.Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			renewed := s.SessionID != last
			last = s.SessionID
			return renewed
		})
	}
	s2, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2.SessionID == s1.SessionID {
		t.Error("the client never logged in again")
	}
}

// TestStreamSurvivesRestart: the gateway restarts under a running Stream;
// the stream comes back on its own (with Last-Event-ID, so the new gateway
// says gap) and the next answer arrives on it.
func TestStreamSurvivesRestart(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	c := newClient(t, g, "porch", nil)
	st := startStream(t, c)
	st.next(t, "ready", named(api.EventReady))
	acc := sayEventually(t, c, "hello")
	st.next(t, "done", answering(api.EventDone, acc.ID))

	g.Restart(t)
	acc = sayEventually(t, c, "tell me a joke")
	st.next(t, "gap", named(api.EventGap))
	sp := decode[api.SpeakEvent](t, st.next(t, "speak", answering(api.EventSpeak, acc.ID)).Data)
	if sp.Utterance == "" {
		t.Fatalf("speak %+v", sp)
	}
}

func TestPasswordProtectedIntent(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	if st := g.Do(t, http.MethodGet, "/v1/admin/protected-intents", g.AdminToken, nil, nil); st == http.StatusNotFound {
		t.Skip("the gateway does not serve /v1/admin/protected-intents yet")
	}
	g.ProtectIntent(t, "joke.builtin:*", "sesame")
	c := newClient(t, g, "study", nil)
	ctx := context.Background()

	_, err := c.Say(ctx, api.UtteranceRequest{Utterance: "tell me a joke"})
	intent, invalid, ok := apiclient.PasswordIntent(err)
	if !ok || invalid || !strings.HasPrefix(intent, "joke.builtin") {
		t.Fatalf("no password: err %v, intent %q invalid %v ok %v", err, intent, invalid, ok)
	}
	_, err = c.Say(ctx, api.UtteranceRequest{Utterance: "tell me a joke", Password: "open"})
	if intent, invalid, ok = apiclient.PasswordIntent(err); !ok || !invalid {
		t.Fatalf("wrong password: err %v, intent %q invalid %v ok %v", err, intent, invalid, ok)
	}
	if strings.Contains(err.Error(), "open") {
		t.Errorf("error shows the password: %v", err)
	}
	res, err := c.SayAndWait(ctx, api.UtteranceRequest{Utterance: "tell me a joke", Password: "sesame"}, 10*time.Second)
	if err != nil || res.Status != api.StatusHandled {
		t.Fatalf("right password = %+v, %v", res, err)
	}
}
