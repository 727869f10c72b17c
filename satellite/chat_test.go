package satellite_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/satellite"
)

// lineWriter collects what is written, line by line, for a test to wait on.
type lineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 1024)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- s[:i]
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
	}
}

func (w *lineWriter) all() []string {
	var out []string
	for {
		select {
		case l := <-w.lines:
			out = append(out, l)
		default:
			return out
		}
	}
}

func (w *lineWriter) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(waitFor):
		t.Fatalf("no line within %v", waitFor)
		return ""
	}
}

func newChat(t *testing.T, gw satellite.Gateway, cfg satellite.ChatConfig) *satellite.Chat {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, nil)
	}
	c, err := satellite.NewChat(cfg, gw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runChat(t *testing.T, c *satellite.Chat, in io.Reader, out, errOut io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	return c.Run(ctx, in, out, errOut)
}

// TestChatThroughAPipe: piped utterances get their answers printed, one
// line each, in order, and Run ends after the last.
func TestChatThroughAPipe(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "desk")
	out, errOut := newLineWriter(), newLineWriter()
	in := strings.NewReader("hello\n\n  tell me a joke  \nblorp frobnicate\nwhat time is it")
	// A line that got no answer shows in the result (the exit status).
	err := runChat(t, newChat(t, gw, satellite.ChatConfig{}), in, out, errOut)
	if !errors.Is(err, satellite.ErrUnanswered) || !strings.Contains(err.Error(), "1 of 4") {
		t.Fatalf("Run = %v, want 1 of 4 unanswered", err)
	}
	got := out.all()
	if len(got) != 3 {
		t.Fatalf("printed %q, want three answers", got)
	}
	if !strings.Contains(strings.ToLower(got[0]), "hello") || got[1] == "" || !strings.Contains(got[2], ":") {
		t.Errorf("answers %q", got)
	}
	if e := strings.Join(errOut.all(), "\n"); !strings.Contains(e, "blorp frobnicate") || !strings.Contains(e, api.StatusIntentFailure) {
		t.Errorf("errors %q", e)
	}
}

// TestChatAllAnswered: Run returns nil when every line was answered, and
// writes the prompt before each line when given one (a terminal).
func TestChatAllAnswered(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "porch")
	out := newLineWriter()
	err := runChat(t, newChat(t, gw, satellite.ChatConfig{Prompt: "> "}), strings.NewReader("say one\nsay two\n"), out, io.Discard)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := out.all(); len(got) != 3 || got[0] != "> one" || got[1] != "> two" || got[2] != "> " {
		t.Errorf("printed %q, want each answer after a prompt", got)
	}
}

// TestChatFollowUp: a question of the assistant lets the next line answer
// it.
func TestChatFollowUp(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "porch")
	out, errOut := newLineWriter(), newLineWriter()
	if err := runChat(t, newChat(t, gw, satellite.ChatConfig{}), strings.NewReader("ask me something\nblue\n"), out, errOut); err != nil {
		t.Fatal(err)
	}
	got := out.all()
	if len(got) != 2 || !strings.HasSuffix(got[0], "?") {
		t.Fatalf("printed %q, want the question and the reply", got)
	}
	if e := errOut.all(); len(e) != 0 {
		t.Errorf("errors %q", e)
	}
}

// TestChatAcrossRestart: the gateway restarts between two lines; the second
// still gets its answer on the same Run.
func TestChatAcrossRestart(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "loft")
	pr, pw := io.Pipe()
	out, errOut := newLineWriter(), newLineWriter()
	done := make(chan error, 1)
	go func() { done <- runChat(t, newChat(t, gw, satellite.ChatConfig{}), pr, out, errOut) }()

	io.WriteString(pw, "hello\n")
	if l := out.next(t); !strings.Contains(strings.ToLower(l), "hello") {
		t.Fatalf("first answer %q", l)
	}
	g.Restart(t)
	io.WriteString(pw, "tell me a joke\n")
	if l := out.next(t); l == "" {
		t.Fatal("empty answer after the restart")
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestChatPassword(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	if st := g.Do(t, http.MethodGet, "/v1/admin/protected-intents", g.AdminToken, nil, nil); st == http.StatusNotFound {
		t.Skip("the gateway does not serve /v1/admin/protected-intents yet")
	}
	g.ProtectIntent(t, "joke.builtin:*", "sesame")
	gw, _ := gatewayClient(t, g, "study")

	type ask struct {
		intent  string
		invalid bool
	}
	tests := []struct {
		name      string
		passwords []string // nil: no terminal
		answered  bool
		asks      int
		errWant   string
	}{
		{name: "right at once", passwords: []string{"sesame"}, answered: true, asks: 1},
		{name: "wrong then right", passwords: []string{"open", "sesame"}, answered: true, asks: 2},
		{name: "wrong every time", passwords: []string{"a", "b", "c", "d"}, asks: 3, errWant: "wrong password"},
		{name: "no terminal", errWant: "protected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []ask
			cfg := satellite.ChatConfig{}
			if tt.passwords != nil {
				cfg.Password = func(_ context.Context, intent string, invalid bool) (api.Secret, error) {
					asked = append(asked, ask{intent, invalid})
					return api.Secret(tt.passwords[len(asked)-1]), nil
				}
			}
			out, errOut := newLineWriter(), newLineWriter()
			err := runChat(t, newChat(t, gw, cfg), strings.NewReader("tell me a joke\nhello\n"), out, errOut)
			if (err == nil) != tt.answered || (err != nil && !errors.Is(err, satellite.ErrUnanswered)) {
				t.Fatalf("Run = %v, want unanswered %v", err, !tt.answered)
			}
			got := out.all()
			want := 1 // the greeting
			if tt.answered {
				want = 2
			}
			if len(got) != want {
				t.Errorf("printed %q, want %d lines", got, want)
			}
			if len(asked) != tt.asks {
				t.Errorf("asked %d times, want %d", len(asked), tt.asks)
			}
			for i, a := range asked {
				if !strings.HasPrefix(a.intent, "joke.builtin") || a.invalid != (i > 0) {
					t.Errorf("ask %d: %+v", i, a)
				}
			}
			e := strings.Join(errOut.all(), "\n")
			if tt.errWant != "" && !strings.Contains(e, tt.errWant) {
				t.Errorf("errors %q, want %q", e, tt.errWant)
			}
			for _, p := range tt.passwords {
				if strings.Contains(e, p) && p != "sesame" && len(p) > 1 {
					t.Errorf("a password shows in %q", e)
				}
			}
		})
	}
}

// ttyReader gives one line per Read, as a terminal in canonical mode does,
// and counts the lines given.
type ttyReader struct {
	mu    sync.Mutex
	lines []string
	given int
}

func (r *ttyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.given == len(r.lines) {
		return 0, io.EOF
	}
	n := copy(p, r.lines[r.given]+"\n")
	r.given++
	return n, nil
}

func (r *ttyReader) read() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.given
}

// TestChatReadsNoLineAheadOfAPassword: at an interactive terminal the
// password prompt and the utterances share the keyboard, so while a
// password is asked for, no next line may be taken from the input.
func TestChatReadsNoLineAheadOfAPassword(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	if st := g.Do(t, http.MethodGet, "/v1/admin/protected-intents", g.AdminToken, nil, nil); st == http.StatusNotFound {
		t.Skip("the gateway does not serve /v1/admin/protected-intents yet")
	}
	g.ProtectIntent(t, "joke.builtin:*", "sesame")
	gw, _ := gatewayClient(t, g, "den")
	in := &ttyReader{lines: []string{"tell me a joke", "hello"}}
	readAtPrompt := -1
	chat := newChat(t, gw, satellite.ChatConfig{Password: func(context.Context, string, bool) (api.Secret, error) {
		readAtPrompt = in.read()
		return "sesame", nil
	}})
	out := newLineWriter()
	if err := runChat(t, chat, in, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if readAtPrompt != 1 {
		t.Errorf("%d lines read when the password was asked for, want 1", readAtPrompt)
	}
	if got := out.all(); len(got) != 2 {
		t.Errorf("printed %q", got)
	}
}

func TestChatRefusedLogin(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	g.CreateClient(t, "cellar")
	gw, err := apiclient.New(apiclient.Config{BaseURL: g.URL, ClientID: "cellar", AccessKey: "gwk_not-the-key"})
	if err != nil {
		t.Fatal(err)
	}
	err = runChat(t, newChat(t, gw, satellite.ChatConfig{}), strings.NewReader("hello\n"), io.Discard, io.Discard)
	if apiclient.Code(err) != api.EUNAUTHORIZED {
		t.Fatalf("Run = %v, want unauthorized", err)
	}
	if strings.Contains(err.Error(), "gwk_not-the-key") {
		t.Errorf("the key shows in %v", err)
	}
	var e *apiclient.Error
	if !errors.As(err, &e) {
		t.Errorf("not a typed error: %T", err)
	}
	// One wrong key is one failed login, not two (issue 12, item 25).
	if n := metricSum(t, g, "gateway_auth_failures_total"); n != 1 {
		t.Errorf("%d failed logins counted, want 1", n)
	}
}

func TestNewChatValidates(t *testing.T) {
	gw, _ := apiclient.New(apiclient.Config{BaseURL: "http://127.0.0.1:1", ClientID: "k", AccessKey: "x"})
	tests := []struct {
		name string
		cfg  satellite.ChatConfig
		gw   satellite.Gateway
		ok   bool
	}{
		{"defaults", satellite.ChatConfig{}, gw, true},
		{"no gateway", satellite.ChatConfig{}, nil, false},
		{"negative timeout", satellite.ChatConfig{AnswerTimeout: -1}, gw, false},
		{"negative tries", satellite.ChatConfig{PasswordTries: -1}, gw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := satellite.NewChat(tt.cfg, tt.gw); (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestChatPrintsOnlyItsOwnSession: another session of the same client (a
// second device, the console) shares the client's stream; what is spoken
// to it is not printed (issue 12, item 25; issue 17, item 9).
func TestChatPrintsOnlyItsOwnSession(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, key := gatewayClient(t, g, "den")
	var other api.SessionResponse
	if st := g.Do(t, http.MethodPost, "/v1/sessions", "", api.SessionRequest{ClientID: "den", AccessKey: key}, &other); st != http.StatusCreated {
		t.Fatalf("second login: %d", st)
	}
	out, errOut := newLineWriter(), newLineWriter()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runChat(t, newChat(t, gw, satellite.ChatConfig{}), pr, out, errOut) }()

	if _, err := io.WriteString(pw, "say apple\n"); err != nil {
		t.Fatal(err)
	}
	if l := out.next(t); !strings.Contains(l, "apple") {
		t.Fatalf("printed %q, want apple", l)
	}
	// The other session is answered on the stream the chat holds, before
	// the chat's next line.
	var res api.UtteranceResult
	if st := g.Do(t, http.MethodPost, "/v1/utterances?wait=10s", other.Token.Reveal(), api.UtteranceRequest{Utterance: "say banana"}, &res); st != http.StatusOK || res.Status != api.StatusHandled {
		t.Fatalf("the other session's utterance: %d %+v", st, res)
	}
	if _, err := io.WriteString(pw, "say cherry\n"); err != nil {
		t.Fatal(err)
	}
	if l := out.next(t); !strings.Contains(l, "cherry") {
		t.Errorf("printed %q after the other session's answer, want cherry", l)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rest := out.all(); len(rest) != 0 {
		t.Errorf("printed more: %q", rest)
	}
}
