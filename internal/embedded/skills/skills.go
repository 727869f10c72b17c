package skills

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Dialects of the assistant the skills impersonate.
const (
	// DialectOVOS is OpenVoiceOS: ovos-core 2.x with ovos-workshop skills.
	DialectOVOS = "ovos"
	// DialectClassic is classic Mycroft: mycroft-core with MycroftSkill.
	DialectClassic = "classic"
)

// Defaults and bounds.
const (
	// DefaultResponseTimeout is how long a get_response waits for the
	// follow-up answer (ovos-workshop waits 15 s by default).
	DefaultResponseTimeout = 15 * time.Second
	// maxConcurrent bounds the utterances handled at once, one goroutine
	// each, like ovos-core's handler threads.
	maxConcurrent = 32
	// queueSize bounds the frames received but not yet being handled; when it
	// is full, frames are dropped (and logged) rather than blocking the bus
	// reader. It holds a burst of a few thousand utterances (a thousand
	// devices speaking at once), which the handlers work off in a few
	// hundred milliseconds: a frame dropped here is an utterance that ends
	// only by its timeout.
	queueSize = 4096
	// errorSound is what ovos-core plays when nothing matched.
	errorSound = "snd/error.mp3"
)

// Bus is the bus connection skills talk through (busclient.Client satisfies
// it).
type Bus interface {
	// Send writes one message to the bus.
	Send(ctx context.Context, m api.Message) error
	// Subscribe registers fn, called on the bus reader goroutine for every
	// received frame (never our own echoes); fn must not block.
	Subscribe(fn func(*api.Frame)) (cancel func())
}

// Config configures the built-in skills. The zero value is usable.
type Config struct {
	// Dialect is DialectOVOS (the default, "") or DialectClassic: which
	// assistant's frame sequences to reproduce (see the package doc).
	Dialect string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock of the time and date skills; nil means time.Now.
	Now func() time.Time
	// Location is the time zone the time and date are told in; nil means
	// time.Local.
	Location *time.Location
	// ResponseTimeout is how long a get_response waits for the follow-up
	// answer; zero means DefaultResponseTimeout.
	ResponseTimeout time.Duration
	// Jokes are told in order, round and round; empty means a small built-in
	// list.
	Jokes []string
	// Enabled lists the skill ids to load (SkillGreeting, SkillJoke, ...);
	// empty loads them all. An assistant with fewer skills lets a test (or a
	// demo) have utterances that this assistant fails and another answers.
	Enabled []string
}

// Skills is the embedded assistant's skill service: a bus peer that answers
// utterances, intent queries and readiness queries exactly as ovos-core with
// ovos-workshop skills (or classic mycroft-core) does on the wire.
type Skills struct {
	cfg     Config
	ovos    bool
	log     *slog.Logger
	bus     Bus
	rules   []rule
	jokes   []string
	jokeN   atomic.Uint64
	queue   chan *api.Frame
	waiters waiters
	running atomic.Bool
}

// New validates cfg, fills its defaults and returns the skills, ready to Run
// on bus.
func New(cfg Config, bus Bus) (*Skills, error) {
	if bus == nil {
		return nil, errors.New("skills: nil bus")
	}
	switch cfg.Dialect {
	case "":
		cfg.Dialect = DialectOVOS
	case DialectOVOS, DialectClassic:
	default:
		return nil, fmt.Errorf("skills: unknown dialect %q (want %q or %q)", cfg.Dialect, DialectOVOS, DialectClassic)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	switch {
	case cfg.ResponseTimeout < 0:
		return nil, fmt.Errorf("skills: negative response timeout %v", cfg.ResponseTimeout)
	case cfg.ResponseTimeout == 0:
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	jokes := defaultJokes()
	if len(cfg.Jokes) > 0 {
		jokes = make([]string, 0, len(cfg.Jokes))
		for i, j := range cfg.Jokes {
			if normalizedEmpty(j) {
				return nil, fmt.Errorf("skills: joke %d is empty", i)
			}
			jokes = append(jokes, j)
		}
	}
	cfg.Jokes = jokes
	rules, err := enabledRules(builtinRules(), cfg.Enabled)
	if err != nil {
		return nil, err
	}
	return &Skills{
		cfg:     cfg,
		ovos:    cfg.Dialect == DialectOVOS,
		log:     cfg.Logger.With("component", "skills", "dialect", cfg.Dialect),
		bus:     bus,
		rules:   rules,
		jokes:   jokes,
		queue:   make(chan *api.Frame, queueSize),
		waiters: waiters{bySession: map[string][]*waiter{}},
	}, nil
}

// enabledRules keeps the rules of the enabled skill ids, all of them when
// enabled is empty; an id that names no built-in skill is an error.
func enabledRules(all []rule, enabled []string) ([]rule, error) {
	if len(enabled) == 0 {
		return all, nil
	}
	want := make(map[string]bool, len(enabled))
	for _, id := range enabled {
		want[id] = true
	}
	out := make([]rule, 0, len(all))
	for _, r := range all {
		if want[r.skillID] {
			out = append(out, r)
			delete(want, r.skillID)
		}
	}
	for id := range want {
		return nil, fmt.Errorf("skills: unknown skill id %q in Enabled", id)
	}
	return out, nil
}

// Match is the dry-run matcher: the intent the utterance would trigger, with
// no session blacklist applied. intent.service.intent.get uses it (with the
// asking session's blacklists).
func (s *Skills) Match(utterance string) (Intent, bool) {
	return match(s.rules, utterance, blacklist{})
}

// Run subscribes to the bus and handles utterances (each on its own
// goroutine, at most maxConcurrent at once), intent queries and readiness
// queries until ctx is done. It returns nil then, after every handler it
// started has returned; it may be called only once.
func (s *Skills) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("skills: Run called twice")
	}
	unsubscribe := s.bus.Subscribe(s.onFrame)
	defer unsubscribe()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	sem := make(chan struct{}, maxConcurrent)
	for {
		var f *api.Frame
		select {
		case <-ctx.Done():
			return nil
		case f = <-s.queue:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("skill handler panicked", "type", f.Type, "panic", r)
				}
			}()
			s.process(ctx, f)
		})
	}
}

// onFrame runs on the bus reader goroutine and never blocks: it answers a
// waiting get_response at once (so an answer never queues behind the
// handlers that wait for it), queues what the skills handle, and ignores
// everything else.
func (s *Skills) onFrame(f *api.Frame) {
	if f == nil {
		return
	}
	switch f.Type {
	case api.TypeUtterance:
		if s.deliverAnswer(f) {
			return
		}
	case api.TypeIntentGet, api.TypeSkillsIsReady, api.TypeIntentsIsReady:
	default:
		return
	}
	select {
	case s.queue <- f:
	default:
		s.log.Warn("skills busy: frame dropped", "type", f.Type, "session_id", f.Route.SessionID)
	}
}

// process handles one queued frame.
func (s *Skills) process(ctx context.Context, f *api.Frame) {
	m, err := decodeMessage(f.Message)
	if err != nil {
		s.log.Debug("undecodable frame ignored", "type", f.Type, "err", err)
		return
	}
	switch f.Type {
	case api.TypeUtterance:
		text, ok := utteranceText(m)
		if !ok {
			s.log.Debug("utterance without data.utterances ignored", "session_id", f.Route.SessionID)
			return
		}
		s.handleUtterance(ctx, m, text)
	case api.TypeIntentGet:
		s.handleIntentGet(ctx, m)
	case api.TypeSkillsIsReady, api.TypeIntentsIsReady:
		s.emit(ctx, m.response(map[string]any{"status": true}))
	}
}

// utteranceText is data.utterances[0], when data.utterances is a non-empty
// list of strings.
func utteranceText(m *message) (string, bool) {
	utts, ok := stringList(m.Data["utterances"])
	if !ok || len(utts) == 0 {
		return "", false
	}
	return utts[0], true
}

// emit encodes and sends msgs in order, stopping at the first failure (which
// is logged and returned).
func (s *Skills) emit(ctx context.Context, msgs ...*message) error {
	for _, m := range msgs {
		env, err := m.encode()
		if err == nil {
			err = s.bus.Send(ctx, env)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sending to the bus failed", "type", m.Type, "err", err)
			}
			return fmt.Errorf("skills: send %q: %w", m.Type, err)
		}
	}
	return nil
}
