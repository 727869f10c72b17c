package utterances

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/store"
)

var testAddr = netip.MustParseAddr("192.0.2.7")

// recBus stands in for the bus client under the real bridge (the bus, its
// client and the assistant are tested end to end in cmd/gateway): it records
// what the bridge writes.
type recBus struct {
	mu   sync.Mutex
	sent []api.Message
}

func (b *recBus) Send(ctx context.Context, m api.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, m)
	return nil
}

func (b *recBus) Request(ctx context.Context, m api.Message, match func(*api.Frame) bool) (*api.Frame, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (b *recBus) Connected() bool { return true }

func (b *recBus) messages() []api.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sent)
}

// gate is a Gate that records what it was asked and answers as told.
type gate struct {
	mu       sync.Mutex
	seen     []bridge.Utterance
	password string
	answer   bridge.Blacklist
	err      error
}

func (g *gate) Check(ctx context.Context, u bridge.Utterance, password api.Secret, addr netip.Addr) (bridge.Blacklist, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, u)
	g.password = password.Reveal()
	return g.answer, g.err
}

// sent is the part of an utterance frame these tests read.
type sent struct {
	Type string `json:"type"`
	Data struct {
		Utterances []string `json:"utterances"`
		Lang       string   `json:"lang"`
	} `json:"data"`
	Context struct {
		ClientName  string `json:"client_name"`
		UtteranceID string `json:"utterance_id"`
		Session     struct {
			SessionID          string   `json:"session_id"`
			Lang               string   `json:"lang"`
			BlacklistedIntents []string `json:"blacklisted_intents"`
			BlacklistedSkills  []string `json:"blacklisted_skills"`
		} `json:"session"`
	} `json:"context"`
}

func decode(t *testing.T, m api.Message) sent {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var s sent
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("the bridge wrote %s: %v", raw, err)
	}
	return s
}

// fixture is the service over the real client registry (a SQLite store)
// and the real bus bridge publishing to a real stream hub.
type fixture struct {
	reg *clients.Registry
	bus *recBus
	hub *hub.Server
	b   *bridge.Bridge
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := clients.New(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, api.CreateClientRequest{ID: "kitchen", Name: "Kitchen"}); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	bus := &recBus{}
	b, err := bridge.New(bridge.Config{}, bus, h)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{reg: reg, bus: bus, hub: h, b: b}
}

func (f *fixture) service(t *testing.T, g Gate, lang string) *Service {
	t.Helper()
	s, err := New(f.reg, g, f.b, lang)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// identity is a client session as the auth middleware hands it over.
func identity(client, sess string) api.Identity {
	return api.Identity{ClientID: client, SessionID: sess}
}

func TestNewRequires(t *testing.T) {
	f := newFixture(t)
	if s, err := New(nil, nil, f.b, ""); err == nil || s != nil {
		t.Fatalf("New without names = %v, %v", s, err)
	}
	if s, err := New(f.reg, nil, nil, ""); err == nil || s != nil {
		t.Fatalf("New without a bridge = %v, %v", s, err)
	}
}

func TestSay(t *testing.T) {
	tests := []struct {
		name        string
		serviceLang string
		reqLang     string
		wantLang    string
	}{
		{name: "the client's language", serviceLang: "de-de", reqLang: "fr-fr", wantLang: "fr-fr"},
		{name: "the configured default", serviceLang: "de-de", wantLang: "de-de"},
		{name: "no default configured", wantLang: "en-us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.service(t, nil, tt.serviceLang)
			ident := identity("kitchen", "sess-1")
			res, err := s.Say(context.Background(), ident, testAddr, api.UtteranceRequest{Utterance: "what time is it", Lang: tt.reqLang}, 0)
			if err != nil {
				t.Fatalf("Say: %v", err)
			}
			if res.ID == "" || res.ClientID != "kitchen" || res.SessionID != "sess-1" || res.Status != api.StatusAccepted {
				t.Fatalf("result %+v", res)
			}
			msgs := f.bus.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages on the bus, want 1", len(msgs))
			}
			m := decode(t, msgs[0])
			if !slices.Equal(m.Data.Utterances, []string{"what time is it"}) || m.Data.Lang != tt.wantLang {
				t.Fatalf("utterance frame data %+v, want lang %s", m.Data, tt.wantLang)
			}
			if m.Context.ClientName != "Kitchen" || m.Context.Session.SessionID != "sess-1" || m.Context.UtteranceID != res.ID {
				t.Fatalf("utterance frame context %+v (result id %s)", m.Context, res.ID)
			}
			if len(m.Context.Session.BlacklistedIntents)+len(m.Context.Session.BlacklistedSkills) != 0 {
				t.Fatalf("no gate, yet blacklisted %+v", m.Context.Session)
			}
		})
	}
}

func TestSayThroughGate(t *testing.T) {
	f := newFixture(t)
	g := &gate{answer: bridge.Blacklist{Intents: []string{"lock.skill:Unlock"}, Skills: []string{"alarm.skill"}}}
	s := f.service(t, g, "")
	res, err := s.Say(context.Background(), identity("kitchen", "sess-1"), testAddr,
		api.UtteranceRequest{Utterance: "unlock the door", Password: api.Secret("hunter2")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.seen) != 1 || g.seen[0].Text != "unlock the door" || g.seen[0].ClientName != "Kitchen" || g.seen[0].Lang != "en-us" || g.password != "hunter2" {
		t.Fatalf("the gate was asked %+v with password ok %v", g.seen, g.password == "hunter2")
	}
	m := decode(t, f.bus.messages()[0])
	if !slices.Equal(m.Context.Session.BlacklistedIntents, g.answer.Intents) || !slices.Equal(m.Context.Session.BlacklistedSkills, g.answer.Skills) {
		t.Fatalf("sent blacklist %+v, want the gate's %+v", m.Context.Session, g.answer)
	}
	if m.Context.UtteranceID != res.ID {
		t.Fatalf("sent utterance %s, result %s", m.Context.UtteranceID, res.ID)
	}
	raw, _ := json.Marshal(f.bus.messages()[0])
	if strings.Contains(string(raw), "hunter2") {
		t.Fatal("the intent password went on the bus")
	}
}

func TestSayRefused(t *testing.T) {
	refusal := api.Errorf(api.EPASSWORDREQUIRED, "this needs a password")
	tests := []struct {
		name     string
		client   string
		session  string
		gateErr  error
		wantCode string
		wantGate bool
	}{
		{name: "no session", client: "kitchen", wantCode: api.EFORBIDDEN},
		{name: "no client (the admin)", session: "sess-1", wantCode: api.EFORBIDDEN},
		{name: "client gone", client: "garage", session: "sess-1", wantCode: api.ENOTFOUND},
		{name: "the gate refuses", client: "kitchen", session: "sess-1", gateErr: refusal, wantCode: api.EPASSWORDREQUIRED, wantGate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			g := &gate{err: tt.gateErr}
			s := f.service(t, g, "")
			_, err := s.Say(context.Background(), identity(tt.client, tt.session), testAddr, api.UtteranceRequest{Utterance: "hello"}, 0)
			if api.ErrorCode(err) != tt.wantCode {
				t.Fatalf("Say = %v, want %s", err, tt.wantCode)
			}
			if n := len(f.bus.messages()); n != 0 {
				t.Fatalf("a refused utterance put %d messages on the bus", n)
			}
			if asked := len(g.seen) > 0; asked != tt.wantGate {
				t.Fatalf("gate asked %v, want %v", asked, tt.wantGate)
			}
			if _, err := s.Start(context.Background(), identity(tt.client, tt.session), testAddr, api.UtteranceRequest{Utterance: "hello"}); api.ErrorCode(err) != tt.wantCode {
				t.Fatalf("Start = %v, want %s as Say", err, tt.wantCode)
			}
		})
	}
}

func TestStart(t *testing.T) {
	f := newFixture(t)
	s := f.service(t, nil, "")
	p, err := s.Start(context.Background(), identity("kitchen", "sess-1"), testAddr, api.UtteranceRequest{Utterance: "tell me a joke"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.bus.messages()
	if p.ID() == "" || len(msgs) != 1 || decode(t, msgs[0]).Context.UtteranceID != p.ID() {
		t.Fatalf("pending %q, %d messages sent", p.ID(), len(msgs))
	}
}

func TestConversationSession(t *testing.T) {
	base := ConversationSession("kitchen", "openai", "dinner")
	if !strings.HasPrefix(base, "conv-") || strings.Contains(base, "dinner") || strings.Contains(base, "kitchen") {
		t.Fatalf("ConversationSession = %q", base)
	}
	if again := ConversationSession("kitchen", "openai", "dinner"); again != base {
		t.Fatalf("not stable: %q then %q", base, again)
	}
	others := map[string]string{
		"another client": ConversationSession("hall", "openai", "dinner"),
		"another kind":   ConversationSession("kitchen", "hass", "dinner"),
		"another name":   ConversationSession("kitchen", "openai", "lunch"),
		// Lengths are framed: moving a boundary gives another session.
		"shifted boundary": ConversationSession("kitchenopenai", "", "dinner"),
		"shifted name":     ConversationSession("kitchen", "openaidinner", ""),
	}
	seen := map[string]string{base: "base"}
	for name, s := range others {
		if prev, ok := seen[s]; ok {
			t.Errorf("%s gives the same session as %s: %q", name, prev, s)
		}
		seen[s] = name
	}
}
