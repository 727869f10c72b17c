package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// fixtureDir holds the real OVOS wire transcripts (docs/bus.md).
const fixtureDir = "../../testdata/ovos-wire"

// The names the transcripts were recorded with.
const (
	recordedSource = "go-gateway"
	recordedSess1  = "gw-sess-1"
	recordedSess2  = "gw-sess-2"
)

// fakeBus stands in for the bus client: the real bus, client and skills are
// tested end to end elsewhere. Send records; Request answers with the first
// matching frame of replies, else waits for ctx.
type fakeBus struct {
	down      atomic.Bool
	mu        sync.Mutex
	sent      []api.Message
	sendErr   error
	onSend    func(api.Message) error // runs during Send, before it returns
	replies   []*api.Frame
	onRequest func(api.Message)
}

func (f *fakeBus) Send(ctx context.Context, m api.Message) error {
	f.mu.Lock()
	f.sent = append(f.sent, m)
	hook, err := f.onSend, f.sendErr
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(m); herr != nil {
			return herr
		}
	}
	return err
}

func (f *fakeBus) Request(ctx context.Context, m api.Message, match func(*api.Frame) bool) (*api.Frame, error) {
	f.mu.Lock()
	f.sent = append(f.sent, m)
	hook := f.onRequest
	f.mu.Unlock()
	if f.down.Load() {
		return nil, errors.New("link down")
	}
	if hook != nil {
		hook(m) // may set replies
	}
	f.mu.Lock()
	replies := f.replies
	f.mu.Unlock()
	for _, r := range replies {
		if match(r) {
			return r, nil
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeBus) Connected() bool { return !f.down.Load() }

func (f *fakeBus) last(t testing.TB) api.Message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		t.Fatal("nothing was sent on the bus")
	}
	return f.sent[len(f.sent)-1]
}

// pubEvent is one published event.
type pubEvent struct {
	client string
	ev     api.Event
}

// recPub records what the bridge publishes.
type recPub struct {
	mu  sync.Mutex
	evs []pubEvent
}

func (p *recPub) Publish(clientID string, ev api.Event) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, pubEvent{clientID, ev})
	return uint64(len(p.evs))
}

func (p *recPub) all() []pubEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pubEvent(nil), p.evs...)
}

// of returns clientID's events.
func (p *recPub) of(clientID string) []api.Event {
	var out []api.Event
	for _, e := range p.all() {
		if e.client == clientID {
			out = append(out, e.ev)
		}
	}
	return out
}

// newBridge returns a bridge over a fake bus and a recording publisher; its
// Run ends with the test.
func newBridge(t testing.TB, cfg Config) (*Bridge, *fakeBus, *recPub) {
	t.Helper()
	bus, pub := &fakeBus{}, &recPub{}
	b, err := New(cfg, bus, pub)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, bus, pub
}

// send sends text for client in session and fails the test on error.
func send(t testing.TB, b *Bridge, clientID, sessionID, text string, collect bool) *Pending {
	t.Helper()
	p, err := b.Send(context.Background(), Utterance{
		ClientID: clientID, ClientName: strings.ToUpper(clientID), SessionID: sessionID,
		Text: text, Lang: "en-US",
	}, collect)
	if err != nil {
		t.Fatalf("Send(%s): %v", clientID, err)
	}
	return p
}

// frame parses raw as the bus client would.
func frame(t testing.TB, raw string) *api.Frame {
	t.Helper()
	f, err := busframe.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("busframe.Parse(%.80s): %v", raw, err)
	}
	return f
}

// fixtureLine is one line of a wire transcript.
type fixtureLine struct {
	Dir   string          `json:"dir"`
	MS    int             `json:"ms"`
	Frame json.RawMessage `json:"frame"`
}

// loadFixture reads a transcript.
func loadFixture(t testing.TB, name string) []fixtureLine {
	t.Helper()
	fh, err := os.Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer fh.Close()
	var out []fixtureLine
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l fixtureLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return out
}

// rewrite puts our client, session and (when uid is set) utterance id into a
// recorded frame: what a real assistant would have sent back to us. The
// utterance id goes into the context, as OVOS copies the whole context into
// its replies.
func rewrite(raw []byte, clientID, sessionID, uid string) string {
	s := string(raw)
	s = strings.ReplaceAll(s, `"`+recordedSource+`"`, `"`+api.GatewaySource(clientID)+`"`)
	s = strings.ReplaceAll(s, `"`+recordedSess1+`"`, `"`+sessionID+`"`)
	s = strings.ReplaceAll(s, `"`+recordedSess2+`"`, `"`+sessionID+`"`)
	if uid != "" {
		if strings.Contains(s, `"context":{}`) {
			s = strings.Replace(s, `"context":{}`, `"context":{"utterance_id":"`+uid+`"}`, 1)
		} else {
			s = strings.Replace(s, `"context":{`, `"context":{"utterance_id":"`+uid+`",`, 1)
		}
	}
	return s
}

// received returns the transcript's received frames, rewritten.
func received(t testing.TB, lines []fixtureLine, clientID, sessionID, uid string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		if l.Dir == "recv" {
			out = append(out, rewrite(l.Frame, clientID, sessionID, uid))
		}
	}
	return out
}

// summary names an event for comparison: "speak:<text>", "done:<status>",
// "message:<bus type>".
func summary(t testing.TB, ev api.Event) string {
	t.Helper()
	switch ev.Name {
	case api.EventSpeak:
		var s api.SpeakEvent
		mustJSON(t, ev.Data, &s)
		return "speak:" + s.Utterance
	case api.EventDone:
		var d api.DoneEvent
		mustJSON(t, ev.Data, &d)
		return "done:" + d.Status
	case api.EventMessage:
		var m api.Message
		mustJSON(t, ev.Data, &m)
		return "message:" + m.Type
	}
	return ev.Name
}

func summaries(t testing.TB, evs []api.Event) []string {
	t.Helper()
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, summary(t, ev))
	}
	return out
}

func mustJSON(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("event data %s: %v", data, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ctxOf decodes a sent message's context.
type sentContext struct {
	Source      api.Names `json:"source"`
	Destination api.Names `json:"destination"`
	ClientName  string    `json:"client_name"`
	UtteranceID string    `json:"utterance_id"`
	Session     struct {
		SessionID          string   `json:"session_id"`
		Lang               string   `json:"lang"`
		BlacklistedIntents []string `json:"blacklisted_intents"`
		BlacklistedSkills  []string `json:"blacklisted_skills"`
	} `json:"session"`
}

func ctxOf(t testing.TB, m api.Message) sentContext {
	t.Helper()
	var c sentContext
	mustJSON(t, m.Context, &c)
	return c
}

func speakOf(t testing.TB, ev api.Event) api.SpeakEvent {
	t.Helper()
	if ev.Name != api.EventSpeak {
		t.Fatalf("event %q, want speak", ev.Name)
	}
	var s api.SpeakEvent
	mustJSON(t, ev.Data, &s)
	return s
}

func doneOf(t testing.TB, ev api.Event) api.DoneEvent {
	t.Helper()
	if ev.Name != api.EventDone {
		t.Fatalf("event %q, want done", ev.Name)
	}
	var d api.DoneEvent
	mustJSON(t, ev.Data, &d)
	return d
}
