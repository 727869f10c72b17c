package satellite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
)

// Defaults for ChatConfig fields left zero.
const (
	DefaultAnswerTimeout  = time.Minute
	DefaultConnectTimeout = 30 * time.Second
	DefaultPasswordTries  = 3
)

// Bounds of the chat.
const (
	// maxLine bounds one line of input (the gateway takes 1000 characters).
	maxLine = 64 << 10
	// maxFinished bounds the utterance ids remembered as ended before
	// anyone waited for them.
	maxFinished = 256
)

// ErrNoPassword is returned (wrapped) for an utterance whose intent is
// protected when no password can be asked for.
var ErrNoPassword = errors.New("the intent is protected by a password and there is no terminal to ask for it")

// ErrUnanswered is returned (wrapped) by Run when some utterances got no
// answer (refused, not understood, timed out): a script sees it in the exit
// status.
var ErrUnanswered = errors.New("some utterances got no answer")

// ChatConfig configures a Chat. Zero fields take the defaults.
type ChatConfig struct {
	// Prompt is written to the output before each line is read (a
	// terminal's "> "); empty writes none (a pipe).
	Prompt string
	// Lang is the language of the utterances; empty lets the gateway choose.
	Lang string
	// AnswerTimeout is how long one utterance waits for its end (the done
	// event, or a follow-up question) before the next line is read; it also
	// bounds the retries while the gateway cannot take the utterance.
	AnswerTimeout time.Duration
	// ConnectTimeout bounds the wait for the stream before the first
	// utterance is sent (an answer sent before the stream is up would be
	// lost).
	ConnectTimeout time.Duration
	// Password asks for the password of a protected intent (invalid: the
	// last one given was wrong); nil means protected intents are refused.
	// It must read from the terminal without echo, never from the
	// utterances' input.
	Password func(ctx context.Context, intent string, invalid bool) (api.Secret, error)
	// PasswordTries is how many passwords are asked for one utterance.
	PasswordTries int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Chat is a terminal client of the gateway: it reads utterances line by
// line, says each, and prints every spoken answer to its own session on a
// line of its own. The stream is the client's, shared by all its sessions
// (another chat, a device, the console): what is spoken to another session
// of the same client is not printed.
type Chat struct {
	cfg ChatConfig
	log *slog.Logger
	gw  Gateway
}

// NewChat validates cfg and fills its defaults.
func NewChat(cfg ChatConfig, gw Gateway) (*Chat, error) {
	if gw == nil {
		return nil, errors.New("satellite: chat needs a gateway")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"AnswerTimeout", &cfg.AnswerTimeout, DefaultAnswerTimeout},
		{"ConnectTimeout", &cfg.ConnectTimeout, DefaultConnectTimeout},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("satellite: %s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case cfg.PasswordTries < 0:
		return nil, errors.New("satellite: PasswordTries is negative")
	case cfg.PasswordTries == 0:
		cfg.PasswordTries = DefaultPasswordTries
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Chat{cfg: cfg, log: log, gw: gw}, nil
}

// Run reads utterances from in until it ends, prints the answers to out and
// what went wrong with an utterance to errOut, and returns once the last
// utterance's handling ended (or ctx is done): nil when every utterance was
// answered, ErrUnanswered (wrapped, with how many) when some were not. It
// returns another error when the stream cannot be held (the login refused,
// say).
//
// The line reader stays blocked on in after an early return until in
// yields; give Run an input that ends, or end the process.
func (c *Chat) Run(ctx context.Context, in io.Reader, out, errOut io.Writer) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	st := newChatState(out, c.log)
	streamErr := make(chan error, 1)
	wg.Go(func() {
		err := c.gw.Stream(ctx, apiclient.StreamOptions{}, st.onEvent)
		if err == nil {
			err = ctx.Err()
		}
		streamErr <- err
	})
	connect := time.NewTimer(c.cfg.ConnectTimeout)
	defer connect.Stop()
	select {
	case <-st.ready:
	case err := <-streamErr:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("satellite: the gateway's stream: %w", err)
	case <-connect.C:
		return fmt.Errorf("satellite: the gateway's stream did not open within %v", c.cfg.ConnectTimeout)
	case <-ctx.Done():
		return nil
	}

	// The reader reads a line only when asked: while a line is handled
	// nothing reads the input, so a password typed at the same terminal
	// goes to the password prompt, never into the next utterance.
	lines := make(chan string)
	more := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { // not waited for: it may sit in a read of in
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 4096), maxLine)
		for {
			select {
			case <-more:
			case <-ctx.Done():
				return
			}
			if !sc.Scan() {
				readErr <- sc.Err()
				return
			}
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	said, failed := 0, 0
	for {
		if c.cfg.Prompt != "" {
			fmt.Fprint(out, c.cfg.Prompt)
		}
		select {
		case more <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		select {
		case line, ok := <-lines:
			if !ok {
				select {
				case err := <-readErr:
					if err != nil {
						return fmt.Errorf("satellite: reading utterances: %w", err)
					}
				default:
				}
				if c.cfg.Prompt != "" {
					fmt.Fprintln(out) // end the prompt's line
				}
				if failed > 0 {
					return fmt.Errorf("satellite: %d of %d: %w", failed, said, ErrUnanswered)
				}
				return nil
			}
			text := strings.TrimSpace(line)
			if text == "" {
				continue
			}
			said++
			answered, err := c.handle(ctx, st, text, errOut, streamErr)
			if err != nil {
				return err
			}
			if !answered {
				failed++
			}
		case err := <-streamErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("satellite: the gateway's stream: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// handle says one line and waits for its end, and reports whether it was
// answered. Only a lost stream is returned; an utterance that went wrong is
// reported on errOut.
func (c *Chat) handle(ctx context.Context, st *chatState, text string, errOut io.Writer, streamErr <-chan error) (bool, error) {
	acc, err := c.say(ctx, text)
	if err != nil {
		if ctx.Err() != nil {
			return true, nil
		}
		fmt.Fprintf(errOut, "satellite: %q: %v\n", clean(text), err)
		return false, nil
	}
	c.log.Debug("utterance accepted", "utterance", text, "utterance_id", acc.ID)
	st.own(acc.SessionID)
	t := time.NewTimer(c.cfg.AnswerTimeout)
	defer t.Stop()
	select {
	case status := <-st.wait(acc.ID):
		switch status {
		case api.StatusHandled, api.StatusAwaitingResponse:
		default:
			fmt.Fprintf(errOut, "satellite: %q: no answer (%s)\n", clean(text), clean(status))
			return false, nil
		}
	case <-t.C:
		st.unwait(acc.ID)
		fmt.Fprintf(errOut, "satellite: %q: no answer within %v\n", clean(text), c.cfg.AnswerTimeout)
		return false, nil
	case err := <-streamErr:
		if ctx.Err() != nil {
			return true, nil
		}
		return false, fmt.Errorf("satellite: the gateway's stream: %w", err)
	case <-ctx.Done():
	}
	return true, nil
}

// say says text, asking for the password of a protected intent, and retries
// while the gateway cannot take it (restarting, say), within AnswerTimeout.
func (c *Chat) say(ctx context.Context, text string) (api.UtteranceAccepted, error) {
	req := api.UtteranceRequest{Utterance: text, Lang: c.cfg.Lang}
	tries := 0
	for {
		acc, err := c.sayRetrying(ctx, req)
		intent, invalid, protected := apiclient.PasswordIntent(err)
		if !protected {
			return acc, err
		}
		if c.cfg.Password == nil {
			return acc, fmt.Errorf("intent %s: %w", clean(intent), ErrNoPassword)
		}
		if tries == c.cfg.PasswordTries {
			return acc, fmt.Errorf("intent %s: wrong password %d times", clean(intent), tries)
		}
		tries++
		pw, perr := c.cfg.Password(ctx, intent, invalid)
		if perr != nil {
			return acc, fmt.Errorf("intent %s: asking for the password: %w", clean(intent), perr)
		}
		req.Password = pw
	}
}

func (c *Chat) sayRetrying(ctx context.Context, req api.UtteranceRequest) (api.UtteranceAccepted, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AnswerTimeout)
	defer cancel()
	delay := askRetryMin
	for {
		acc, err := c.gw.Say(ctx, req)
		retry, after := apiclient.Retryable(err)
		if err == nil || !retry || ctx.Err() != nil {
			return acc, err
		}
		wait := max(after, delay)
		c.log.Warn("the gateway cannot take the utterance yet; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return acc, err
		}
		delay = min(delay*2, askRetryMax)
	}
}

// chatState is what the stream's events tell the chat: the stream is up,
// an utterance ended. Its printing and bookkeeping run on the stream's
// goroutine; wait and unwait on the chat's.
type chatState struct {
	out       io.Writer
	log       *slog.Logger
	ready     chan struct{}
	readyOnce sync.Once

	mu sync.Mutex
	// sessions are this chat's sessions (a renewed login is a new one),
	// from the stream's ready events and the accepted utterances.
	sessions      map[string]bool
	waiting       map[string]chan string
	finished      map[string]string
	finishedOrder []string
}

func newChatState(out io.Writer, log *slog.Logger) *chatState {
	return &chatState{
		out:      out,
		log:      log,
		ready:    make(chan struct{}),
		sessions: make(map[string]bool),
		waiting:  make(map[string]chan string),
		finished: make(map[string]string),
	}
}

// onEvent prints what is spoken and records what ended.
func (s *chatState) onEvent(ev apiclient.Event) {
	switch ev.Name {
	case api.EventReady:
		var r api.ReadyEvent
		if json.Unmarshal(ev.Data, &r) == nil && r.SessionID != nil {
			s.own(*r.SessionID)
		}
		s.readyOnce.Do(func() { close(s.ready) })
	case api.EventSpeak:
		var sp api.SpeakEvent
		if err := json.Unmarshal(ev.Data, &sp); err != nil {
			s.log.Warn("a speak event that does not decode", "err", err)
			return
		}
		if sp.SessionID != nil && !s.isOwn(*sp.SessionID) {
			s.log.Debug("speech to another session of this client: not printed", "session_id", *sp.SessionID)
			return
		}
		fmt.Fprintln(s.out, oneLine(sp.Utterance))
		if sp.ExpectResponse && sp.UtteranceID != nil {
			// The assistant waits for an answer: the next line is it.
			s.finish(*sp.UtteranceID, api.StatusAwaitingResponse)
		}
	case api.EventDone:
		var d api.DoneEvent
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			s.log.Warn("a done event that does not decode", "err", err)
			return
		}
		s.finish(d.UtteranceID, d.Status)
	case api.EventGap:
		s.log.Warn("some answers were lost while the stream was down")
	}
}

// maxSessions bounds the sessions a chat remembers as its own (one per
// login).
const maxSessions = 64

// own records id as one of this chat's sessions.
func (s *chatState) own(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= maxSessions && !s.sessions[id] {
		clear(s.sessions)
	}
	s.sessions[id] = true
}

// isOwn reports whether id is one of this chat's sessions.
func (s *chatState) isOwn(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// finish records that utterance id ended with status.
func (s *chatState) finish(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiting[id]; ok {
		delete(s.waiting, id)
		ch <- status
		return
	}
	if _, ok := s.finished[id]; ok {
		return
	}
	if len(s.finishedOrder) >= maxFinished {
		delete(s.finished, s.finishedOrder[0])
		s.finishedOrder = s.finishedOrder[1:]
	}
	s.finished[id] = status
	s.finishedOrder = append(s.finishedOrder, id)
}

// wait returns a channel that gets utterance id's status once it ended
// (at once if it already did).
func (s *chatState) wait(id string) <-chan string {
	ch := make(chan string, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if status, ok := s.finished[id]; ok {
		delete(s.finished, id)
		ch <- status
		return ch
	}
	s.waiting[id] = ch
	return ch
}

// unwait stops waiting for id.
func (s *chatState) unwait(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiting, id)
}

// oneLine makes spoken text one printable line: line breaks become spaces,
// other control characters go.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// clean makes untrusted text safe for a terminal line: no control
// characters (escape sequences included).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
