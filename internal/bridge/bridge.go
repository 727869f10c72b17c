// Package bridge puts client utterances on the assistant's messagebus and
// routes the bus's replies back to the clients that asked (docs/protocol.md, "The
// bus bridge"; docs/bus.md, "How replies find their way back").
//
// Every utterance goes out with a context naming the client
// (source "gateway:<client id>"), the client's own OVOS session and a fresh
// utterance id. The assistant swaps source and destination in its replies, so
// each reply names the client again; the bridge turns replies into the
// client's stream events (speak, message, done) and ends each utterance once:
// on an end signal, on its timeout, or when the bus link drops.
package bridge

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/ovosgw/gateway/api"
)

// Defaults for Config.
const (
	DefaultUtteranceTimeout = 30 * time.Second
	DefaultIntentTimeout    = 2 * time.Second
	DefaultMaxPending       = 100000
	DefaultMaxSessions      = 100000
	DefaultRecentUtterances = 4096
)

const (
	// retryAfter is what a refused utterance tells the caller to wait: about
	// the first reconnect delay of a bus peer (docs/bus.md, Transport).
	retryAfter = 5 * time.Second
	// maxSpeech and maxSpeechBytes bound what one pending utterance collects
	// for ?wait: a skill that talks without end must not grow memory.
	maxSpeech      = 64
	maxSpeechBytes = 1 << 20
)

// Observation names passed to Config.Observe.
const (
	ObserveSpeak = "speak" // from Send to the first speech of the utterance
	ObserveDone  = "done"  // from Send to the end of handling
)

// Bus is the link to the messagebus the bridge needs: the bus client.
type Bus interface {
	// Send writes m on the bus; it returns once the frame was written and
	// fails when the link is down.
	Send(ctx context.Context, m api.Message) error
	// Request writes m and returns the first received frame for which
	// match is true, or an error when ctx ends first or the link is down.
	Request(ctx context.Context, m api.Message, match func(*api.Frame) bool) (*api.Frame, error)
	// Connected reports whether the link is up.
	Connected() bool
}

// Publisher delivers events to a client's stream: the stream hub. Publish
// never blocks and returns the event's id.
type Publisher interface {
	Publish(clientID string, ev api.Event) uint64
}

// poster is a Publisher whose events may go through a relay to other
// replicas (hub.Server with a Relay): Post hands an event on without waiting
// for the relay, in order; PostAndWait waits until it went. The bridge
// posts, so that neither the bus reader nor its lock waits one round trip
// per frame.
type poster interface {
	Post(clientID string, ev api.Event)
	PostAndWait(clientID string, ev api.Event)
}

// publish hands ev to the publisher: posted when it can be, and waited for
// when claimed, a frame no replica owned that this one claimed first: its
// place in the client's sequence against the other replicas' copies of the
// bus's frames is then taken before the next frame is looked at, as when
// every event waited.
func (b *Bridge) publish(clientID string, ev api.Event, claimed bool) {
	p, ok := b.pub.(poster)
	switch {
	case !ok:
		b.pub.Publish(clientID, ev)
	case claimed:
		p.PostAndWait(clientID, ev)
	default:
		p.Post(clientID, ev)
	}
}

// Config configures a Bridge. Zero values take the defaults.
type Config struct {
	// UtteranceTimeout ends a pending utterance that got no end signal with
	// status "timeout" (GATEWAY_UTTERANCE_TIMEOUT). Default 30s.
	UtteranceTimeout time.Duration
	// IntentTimeout bounds a dry run (intent.service.intent.get). Default 2s.
	IntentTimeout time.Duration
	// DefaultLang is the language of an utterance that names none. Default
	// api.DefaultLang.
	DefaultLang string
	// MaxPending bounds the utterances (and dry runs) in flight; beyond it
	// Send refuses with EUNAVAILABLE and a Retry-After. Default 100000.
	MaxPending int
	// MaxSessions bounds the sessions remembered for routing by session id;
	// the least recently used one is forgotten first. Default 100000.
	MaxSessions int
	// RecentUtterances is how many ended utterances are remembered, so that
	// their late frames are known as such: speech (a timer, a second speak)
	// goes out naming no utterance, and a second end signal is not
	// forwarded, so that done stays its utterance's last event. Default 4096.
	RecentUtterances int
	// Resolve, when set, turns a client id or alias into a client id: used
	// for data.target and for destinations naming a client that has not sent
	// anything through this bridge. It is called from Dispatch (without the
	// bridge's lock held) and must be quick: an in-memory lookup.
	Resolve func(name string) (clientID string, ok bool)
	// Observe, when set, receives latencies (ObserveSpeak, ObserveDone). It
	// is called with the bridge's lock held: it must be quick and must not
	// call the bridge.
	Observe func(ev string, d time.Duration)
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for latencies; default time.Now.
	Now func() time.Time
	// Pick, for a bridge over several buses (NewMulti), is the position of
	// the bus a session's next utterance or dry run goes to, or -1 when no
	// bus is up. Required with more than one bus.
	Pick func(sessionID string) int
	// Shared, when set, is what this bridge agrees on with the bridges of
	// other replicas linked to the same assistant (see Shared).
	Shared Shared
}

// Bridge connects clients to the bus, or to several buses. It is safe for
// concurrent use; each bus's frames are passed to Dispatch (DispatchFrom) by
// that bus's one reader.
type Bridge struct {
	cfg   Config
	buses []Bus
	pub   Publisher
	log   *slog.Logger

	// senders admits a few Send calls at a time (see Send).
	senders chan struct{}

	mu         sync.Mutex
	closed     bool
	clients    map[string]*client  // known clients by id
	utts       map[string]*Pending // pending and recently ended, by utterance id
	recent     []string            // ring of ended utterance ids
	recentNext int                 // next slot of recent
	npending   int                 // utterances (and dry runs) not ended
	sameBus    []bool              // by position: seen to carry another position's traffic
	// sessions are ours by session id; beyond MaxSessions the least
	// recently used is forgotten first.
	sessions *simplelru.LRU[string, *session]

	st    counters
	busSt []busCounters // by bus position
	occ   occurrences   // with Shared: copies of a frame told apart
}

// busCounters are one bus's share of the counters.
type busCounters struct {
	handled, intentFailure, timeout, errored atomic.Uint64
	pending                                  atomic.Int64
}

// BusStats are one bus's utterances, for metrics by bus.
type BusStats struct {
	Handled       uint64 // utterances ended "handled"
	IntentFailure uint64 // utterances ended "intent_failure"
	Timeout       uint64 // utterances ended "timeout"
	Error         uint64 // utterances ended "error"
	Pending       int64  // utterances (not dry runs) in flight now
}

type client struct {
	id       string
	sessions map[string]*session
	pending  map[string]*Pending
}

type session struct {
	id       string
	clientID string
	pending  []*Pending // not ended, oldest first
}

type counters struct {
	sent, refused                   atomic.Uint64
	handled, intentFailure, timeout atomic.Uint64
	errored                         atomic.Uint64
	routed, unrouted, ignored       atomic.Uint64
	dryRuns, dryRunFailures         atomic.Uint64
	pending                         atomic.Int64
}

// Stats are the bridge's counters since it started, for metrics.
type Stats struct {
	Sent           uint64 // utterances written to the bus
	Refused        uint64 // utterances refused (link down, write failed, too many pending)
	Handled        uint64 // utterances ended "handled"
	IntentFailure  uint64 // utterances ended "intent_failure"
	Timeout        uint64 // utterances ended "timeout"
	Error          uint64 // utterances ended "error"
	Routed         uint64 // frames delivered to a client
	Unrouted       uint64 // frames for no client of ours
	Ignored        uint64 // our own kind of traffic (echoes, other gateways' utterances, dry runs)
	DryRuns        uint64 // intent queries sent
	DryRunFailures uint64 // intent queries unanswered
	Pending        int64  // utterances and dry runs in flight now
}

// maxSenders is how many Send calls may work at once: enough to keep every
// core busy while one waits on the bus write.
func maxSenders() int { return 2 * runtime.GOMAXPROCS(0) }

// New returns a Bridge over bus publishing to pub, with cfg's defaults filled.
func New(cfg Config, bus Bus, pub Publisher) (*Bridge, error) {
	return NewMulti(cfg, []Bus{bus}, pub)
}

// NewMulti returns a Bridge over several buses, each a separate assistant:
// every utterance and dry run goes to the bus cfg.Pick chooses for its
// session, and stays tied to it (BusDown ends it). Frames are routed the
// same way whichever bus carried them (DispatchFrom).
func NewMulti(cfg Config, buses []Bus, pub Publisher) (*Bridge, error) {
	if len(buses) == 0 || slices.Contains(buses, nil) {
		return nil, errors.New("bridge: nil bus")
	}
	if len(buses) > 1 && cfg.Pick == nil {
		return nil, errors.New("bridge: several buses and no Pick")
	}
	if pub == nil {
		return nil, errors.New("bridge: nil publisher")
	}
	if cfg.UtteranceTimeout < 0 || cfg.IntentTimeout < 0 || cfg.MaxPending < 0 ||
		cfg.MaxSessions < 0 || cfg.RecentUtterances < 0 {
		return nil, errors.New("bridge: negative timeout or bound in config")
	}
	if cfg.UtteranceTimeout == 0 {
		cfg.UtteranceTimeout = DefaultUtteranceTimeout
	}
	if cfg.IntentTimeout == 0 {
		cfg.IntentTimeout = DefaultIntentTimeout
	}
	if cfg.DefaultLang == "" {
		cfg.DefaultLang = api.DefaultLang
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.RecentUtterances == 0 {
		cfg.RecentUtterances = DefaultRecentUtterances
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{
		cfg:     cfg,
		buses:   buses,
		busSt:   make([]busCounters, len(buses)),
		sameBus: make([]bool, len(buses)),
		pub:     pub,
		log:     log,
		senders: make(chan struct{}, maxSenders()),
		clients: make(map[string]*client),
		utts:    make(map[string]*Pending),
		recent:  make([]string, cfg.RecentUtterances),
	}
	// A session forgotten (removed, or the least recently used one beyond
	// MaxSessions) leaves its client's index too.
	sessions, err := simplelru.NewLRU(cfg.MaxSessions, func(_ string, s *session) {
		if c := b.clients[s.clientID]; c != nil {
			delete(c.sessions, s.id)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.sessions = sessions
	return b, nil
}

// Utterance is something a client says, as the bridge puts it on the bus.
type Utterance struct {
	ClientID   string
	ClientName string
	SessionID  string
	Text       string
	Lang       string
	// BlacklistedIntents go into context.session.blacklisted_intents and
	// BlacklistedSkills into blacklisted_skills when not empty, so that
	// OVOS skips those intents and skills (protected intents). The intent
	// gate leaves them empty for its dry run, which must see a protected
	// intent to ask for its password.
	BlacklistedIntents []string
	BlacklistedSkills  []string
}

// Blacklist is what a session may not use, as an OVOS session lists it:
// its blacklisted_intents ("skill_id:IntentName") and blacklisted_skills
// (skill ids), sorted.
type Blacklist struct {
	Intents []string
	Skills  []string
}

// Pending is an utterance on the bus whose handling has not been seen to end
// yet, or has just ended.
type Pending struct {
	b         *Bridge
	id        string
	clientID  string
	sessionID string
	lang      string
	bus       int  // the position of the bus it went to
	dry       bool // an intent query, not an utterance
	collect   bool
	start     time.Time

	// Guarded by b.mu.
	status string // "" while pending
	sent   bool   // the frame was written
	abort  string // end status to apply once the frame is written
	spoke  bool
	asked  bool // a speak with expect_response arrived
	// A follow-up question and its answer (see Bridge.link): awaiting is
	// set while a question spoken in p's context has no answer yet; answer
	// is the utterance answering p's question, question the one p answers;
	// ownEnd is p's own end signal, held back while its question goes on.
	awaiting bool
	answer   *Pending
	question *Pending
	ownEnd   string
	speech   []api.Speech
	nbytes   int
	timer    *time.Timer
	doneCh   chan struct{} // closed when handling ended
	askedCh  chan struct{} // closed when asked became true
	changed  chan struct{} // closed at the next change Progress can see; nil until asked for
}

// ID returns the utterance id: the "id" of POST /v1/utterances and the
// utterance_id of its events.
func (p *Pending) ID() string { return p.id }

// Wait returns when handling ended (its status), when the assistant asked a
// follow-up question (status "awaiting_response": the utterance stays
// pending and its done event comes later), or when ctx ends (status
// "accepted"; the done event still comes later on the stream). Speech holds
// what was said so far when the utterance was sent with collect.
func (p *Pending) Wait(ctx context.Context) api.UtteranceResult {
	select {
	case <-p.doneCh:
	case <-p.askedCh:
	case <-ctx.Done():
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	status := p.status
	switch {
	case status != "":
	case p.asked:
		status = api.StatusAwaitingResponse
	default:
		status = api.StatusAccepted
	}
	speech := make([]api.Speech, len(p.speech))
	copy(speech, p.speech)
	return api.UtteranceResult{
		ID:        p.id,
		ClientID:  p.clientID,
		SessionID: p.sessionID,
		Status:    status,
		Speech:    speech,
	}
}

// Progress returns the speech collected after the first from items, the
// status so far ("" while handling goes on, awaiting_response once the
// assistant asked a follow-up question, else how handling ended), and a
// channel closed at the next change: more speech, the question, the end. It
// never blocks, so that a stream can wait on the channel beside its
// heartbeat and its request. Speech is collected only for an utterance sent
// with collect.
func (p *Pending) Progress(from int) (speech []api.Speech, status string, changed <-chan struct{}) {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if from < 0 {
		from = 0
	}
	if from < len(p.speech) {
		speech = make([]api.Speech, len(p.speech)-from)
		copy(speech, p.speech[from:])
	}
	status = p.status
	if status == "" && p.asked {
		status = api.StatusAwaitingResponse
	}
	if p.changed == nil {
		p.changed = make(chan struct{})
		if p.status != "" {
			close(p.changed) // nothing will change any more
		}
	}
	return speech, status, p.changed
}

// notify wakes whoever waits on Progress's channel. b.mu held.
func (p *Pending) notify() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// utteranceContext is the context of what the bridge emits (docs/protocol.md, "The
// bus bridge").
type utteranceContext struct {
	Source      string         `json:"source"`
	Destination []string       `json:"destination"`
	ClientName  string         `json:"client_name"`
	Session     sessionContext `json:"session"`
	UtteranceID string         `json:"utterance_id"`
}

type sessionContext struct {
	SessionID          string   `json:"session_id"`
	Lang               string   `json:"lang"`
	BlacklistedIntents []string `json:"blacklisted_intents,omitempty"`
	BlacklistedSkills  []string `json:"blacklisted_skills,omitempty"`
}

func unavailable(detail string) *api.Error {
	return &api.Error{Code: api.EUNAVAILABLE, Detail: detail, RetryAfter: retryAfter}
}

// unavailableBy is unavailable made by cause, kept for the log.
func unavailableBy(cause error, detail string) *api.Error {
	e := unavailable(detail)
	e.Cause = cause
	return e
}

func (b *Bridge) check(u Utterance) error {
	switch {
	case u.ClientID == "":
		return api.Errorf(api.EINVALID, "utterance without client")
	case u.SessionID == "" || u.SessionID == api.DefaultSessionID:
		// "default" is the assistant's own device (docs/bus.md).
		return api.Errorf(api.EINVALID, "utterance without a session of its own")
	case strings.TrimSpace(u.Text) == "":
		return api.Errorf(api.EINVALID, "empty utterance")
	}
	return nil
}

func (b *Bridge) lang(u Utterance) string {
	if u.Lang != "" {
		return u.Lang
	}
	return b.cfg.DefaultLang
}

// message builds the frame for u with type typ and data.
func (b *Bridge) message(typ string, u Utterance, id string, data any) (api.Message, error) {
	name := u.ClientName
	if name == "" {
		name = u.ClientID
	}
	ctx, err := json.Marshal(utteranceContext{
		Source:      api.GatewaySource(u.ClientID),
		Destination: []string{api.DestinationSkills},
		ClientName:  name,
		Session: sessionContext{
			SessionID:          u.SessionID,
			Lang:               b.lang(u),
			BlacklistedIntents: u.BlacklistedIntents,
			BlacklistedSkills:  u.BlacklistedSkills,
		},
		UtteranceID: id,
	})
	if err != nil {
		return api.Message{}, fmt.Errorf("bridge: context of %s: %w", typ, err)
	}
	d, err := json.Marshal(data)
	if err != nil {
		return api.Message{}, fmt.Errorf("bridge: data of %s: %w", typ, err)
	}
	return api.Message{Type: typ, Data: d, Context: ctx}, nil
}

// newID returns a fresh random url-safe id (128 bits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Send puts u on the bus as recognizer_loop:utterance. With collect, the
// returned Pending collects speech for Wait (?wait). When the link is down,
// the write fails or too many utterances are in flight, it returns an
// EUNAVAILABLE *api.Error with a RetryAfter; then nothing is pending and no
// done event will come.
func (b *Bridge) Send(ctx context.Context, u Utterance, collect bool) (*Pending, error) {
	if err := b.check(u); err != nil {
		return nil, err
	}
	// Admission: the single bus reader (Dispatch) takes b.mu for every
	// frame, and Go's mutex, once starved, serves its waiters in order: with
	// a thousand requests queued on it the reader waited behind all of them
	// for each frame, and the whole gateway went at the pace of that queue
	// (docs/PERFORMANCE.md). The requests wait here instead, where the
	// reader does not.
	select {
	case b.senders <- struct{}{}:
		defer func() { <-b.senders }()
	case <-ctx.Done():
		return nil, unavailable("the request ended before the utterance was sent")
	}
	pos, bus := b.busFor(u.SessionID)
	if bus == nil {
		b.st.refused.Add(1)
		return nil, unavailable("the assistant's messagebus is not connected")
	}
	id := newID()
	lang := b.lang(u)
	msg, err := b.message(api.TypeUtterance, u, id, struct {
		Utterances []string `json:"utterances"`
		Lang       string   `json:"lang"`
	}{[]string{u.Text}, lang})
	if err != nil {
		return nil, err
	}
	p := &Pending{
		b: b, id: id, clientID: u.ClientID, sessionID: u.SessionID, lang: lang, bus: pos,
		collect: collect, start: b.cfg.Now(),
		doneCh: make(chan struct{}), askedCh: make(chan struct{}),
	}
	// Register before writing: the echo and the first replies may arrive
	// before the write returns.
	if err := b.register(p); err != nil {
		b.st.refused.Add(1)
		return nil, err
	}
	if err := b.own(ctx, p); err != nil {
		return nil, err
	}
	werr := bus.Send(ctx, msg)

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case werr != nil && p.status != "":
		// A reply ended it already, so the frame did go out.
		p.sent = true
		b.st.sent.Add(1)
		return p, nil
	case werr != nil:
		b.discard(p)
		b.st.refused.Add(1)
		b.log.Warn("utterance not sent", "client", u.ClientID, "err", werr)
		return nil, unavailableBy(werr, "the assistant's messagebus is unavailable")
	}
	p.sent = true
	b.st.sent.Add(1)
	if p.status == "" {
		if p.abort != "" {
			b.end(p, p.abort)
		} else {
			p.timer = time.AfterFunc(b.cfg.UtteranceTimeout, func() { b.expire(p) })
		}
	}
	return p, nil
}

// busFor is the bus a session's next message goes to, and its position; nil
// when no bus is up.
func (b *Bridge) busFor(sessionID string) (int, Bus) {
	pos := 0
	if b.cfg.Pick != nil {
		pos = b.cfg.Pick(sessionID)
	}
	if pos < 0 || pos >= len(b.buses) || !b.buses[pos].Connected() {
		return -1, nil
	}
	return pos, b.buses[pos]
}

// register makes p pending and its client and session known.
func (b *Bridge) register(p *Pending) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return unavailable("the gateway is shutting down")
	case b.npending >= b.cfg.MaxPending:
		return unavailable("too many utterances in flight")
	}
	b.utts[p.id] = p
	b.npending++
	b.st.pending.Add(1)
	if p.dry {
		return nil
	}
	b.busSt[p.bus].pending.Add(1)
	c := b.knownClient(p.clientID)
	c.pending[p.id] = p
	s := b.session(p.sessionID)
	switch {
	case s != nil && s.clientID != p.clientID:
		// A session id is the client's own (the JWT's sid); one naming
		// another client cannot happen unless ids collide. Keep routing sane.
		b.removeSession(s)
		s = nil
	case s != nil:
		b.sessions.Get(s.id) // most recently used
	}
	if s == nil {
		s = &session{id: p.sessionID, clientID: p.clientID}
		b.sessions.Add(s.id, s)
		c.sessions[s.id] = s
	}
	b.link(s, p)
	s.pending = append(s.pending, p)
	return nil
}

// link makes p the answer to the session's latest unanswered follow-up
// question, if any. The assistant goes on in the question's context (OVOS's
// get_response keeps the handler's message): what it says there now is the
// answer's speech, and the answer ends when the question does (docs/bus.md: a
// real ovos-core sends the answer no end signal of its own, or one before
// the reply is spoken; the embedded skills one after it). An answer that an
// earlier question of the session superseded (the assistant asked again) is
// over: it ends now. b.mu held.
func (b *Bridge) link(s *session, p *Pending) {
	for i := len(s.pending) - 1; i >= 0; i-- {
		q := s.pending[i]
		if !q.awaiting || q.status != "" {
			continue
		}
		q.awaiting = false
		if old := q.answer; old != nil {
			b.endAnswer(old, api.StatusHandled)
		}
		q.answer, p.question = p, q
		return
	}
}

// endAnswer ends the answer a whose part is over: with its own end signal if
// it had one, else status. An answer still being written ends once its
// write returns (Send), like an aborted one. b.mu held.
func (b *Bridge) endAnswer(a *Pending, status string) {
	switch {
	case a.status != "":
	case a.sent:
		b.end(a, cmp.Or(a.ownEnd, status))
	default:
		a.abort = cmp.Or(a.ownEnd, status)
	}
}

// knownClient returns the state of client id, making it known. b.mu held.
func (b *Bridge) knownClient(id string) *client {
	c := b.clients[id]
	if c == nil {
		c = &client{id: id, sessions: make(map[string]*session), pending: make(map[string]*Pending)}
		b.clients[id] = c
	}
	return c
}

// session is the session of id, or nil; it does not count as a use. b.mu
// held.
func (b *Bridge) session(id string) *session {
	s, _ := b.sessions.Peek(id)
	return s
}

// removeSession forgets s for routing; its pending utterances stay pending.
// b.mu held.
func (b *Bridge) removeSession(s *session) {
	b.sessions.Remove(s.id)
}

// unlink takes p out of the pending indexes. b.mu held.
func (b *Bridge) unlink(p *Pending) {
	b.npending--
	b.st.pending.Add(-1)
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.dry {
		return
	}
	b.busSt[p.bus].pending.Add(-1)
	if q := p.question; q != nil && q.answer == p {
		q.answer = nil
	}
	if c := b.clients[p.clientID]; c != nil {
		delete(c.pending, p.id)
	}
	if s := b.session(p.sessionID); s != nil {
		if i := slices.Index(s.pending, p); i >= 0 {
			s.pending = slices.Delete(s.pending, i, i+1)
		}
	}
}

// discard forgets p that never went out: no done event. b.mu held.
func (b *Bridge) discard(p *Pending) {
	if p.status != "" {
		return
	}
	p.status = api.StatusError
	if q := p.question; q != nil && q.answer == p && q.status == "" {
		q.awaiting = true // the answer never went out: the question still waits
	}
	b.unlink(p)
	delete(b.utts, p.id)
	close(p.doneCh)
	p.notify()
	b.ended(p)
}

// remember keeps the ended p's id in the bounded recent memory. b.mu held.
func (b *Bridge) remember(p *Pending) {
	if old := b.recent[b.recentNext]; old != "" {
		if q := b.utts[old]; q != nil && q.status != "" {
			delete(b.utts, old)
		}
	}
	b.recent[b.recentNext] = p.id
	b.recentNext = (b.recentNext + 1) % len(b.recent)
}

// end ends p with status: once, publishing its done event. b.mu held.
func (b *Bridge) end(p *Pending, status string) {
	if p.status != "" {
		return
	}
	p.status = status
	a := p.answer
	b.unlink(p)
	b.remember(p)
	close(p.doneCh)
	p.notify()
	b.ended(p)
	if p.dry {
		return
	}
	if a != nil {
		// The question is over, and with it its answer's part.
		defer b.endAnswer(a, status)
	}
	bs := &b.busSt[p.bus]
	switch status {
	case api.StatusHandled:
		b.st.handled.Add(1)
		bs.handled.Add(1)
	case api.StatusIntentFailure:
		b.st.intentFailure.Add(1)
		bs.intentFailure.Add(1)
	case api.StatusTimeout:
		b.st.timeout.Add(1)
		bs.timeout.Add(1)
	default:
		b.st.errored.Add(1)
		bs.errored.Add(1)
	}
	if b.cfg.Observe != nil {
		b.cfg.Observe(ObserveDone, b.cfg.Now().Sub(p.start))
	}
	data, _ := json.Marshal(api.DoneEvent{UtteranceID: p.id, SessionID: p.sessionID, Status: status})
	b.publish(p.clientID, api.Event{Name: api.EventDone, Data: data}, false)
}

// expire is p's timer.
func (b *Bridge) expire(p *Pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end(p, api.StatusTimeout)
}

// abortAll ends every pending utterance with status error: a written one at
// once, one being written once its write returns. b.mu held.
func (b *Bridge) abortAll(ps map[string]*Pending) {

	for _, p := range ps {
		switch {
		case p.status != "" || p.dry:
		case p.sent:
			b.end(p, api.StatusError)
		default:
			p.abort = api.StatusError
		}
	}
}

// LinkDown tells the bridge that the bus link dropped: every pending
// utterance ends at once with status "error", since its replies can no
// longer arrive (the bus keeps nothing, docs/bus.md).
func (b *Bridge) LinkDown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.abortAll(b.utts)
}

// BusDown tells the bridge that the link to the bus at position pos
// dropped: every utterance pending on that bus ends at once with status
// "error" and is never sent again elsewhere (it may have started an action
// already). Utterances on the other buses go on.
func (b *Bridge) BusDown(pos int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.utts {
		if p.bus == pos && p.status == "" && !p.dry {
			if p.sent {
				b.end(p, api.StatusError)
			} else {
				p.abort = api.StatusError
			}
		}
	}
}

// ForgetSession forgets a session at logout: bus messages naming its session
// id no longer reach the client. Its pending utterances still end normally
// (by their utterance id or their timeout).
func (b *Bridge) ForgetSession(sessionID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.session(sessionID); s != nil {
		b.removeSession(s)
	}
}

// ForgetClient forgets a deleted client: its sessions, and its pending
// utterances, which end with status "error".
func (b *Bridge) ForgetClient(clientID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.clients[clientID]
	if c == nil {
		return
	}
	b.abortAll(c.pending)
	for _, s := range c.sessions {
		b.removeSession(s)
	}
	delete(b.clients, clientID)
}

// Run waits for ctx to end, then closes the bridge (Close).
func (b *Bridge) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}

// Close closes the bridge: Send refuses, and every pending utterance ends
// with status "error" (its done event published, no timer left behind). A
// shutdown calls it before the streams are told to reconnect, so that their
// clients hear how their utterances ended. Calling it again does nothing
// more.
func (b *Bridge) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.abortAll(b.utts)
}

// BusStats returns the counters of the bus at position pos.
func (b *Bridge) BusStats(pos int) BusStats {
	if pos < 0 || pos >= len(b.busSt) {
		return BusStats{}
	}
	s := &b.busSt[pos]
	return BusStats{
		Handled:       s.handled.Load(),
		IntentFailure: s.intentFailure.Load(),
		Timeout:       s.timeout.Load(),
		Error:         s.errored.Load(),
		Pending:       s.pending.Load(),
	}
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	return Stats{
		Sent:           b.st.sent.Load(),
		Refused:        b.st.refused.Load(),
		Handled:        b.st.handled.Load(),
		IntentFailure:  b.st.intentFailure.Load(),
		Timeout:        b.st.timeout.Load(),
		Error:          b.st.errored.Load(),
		Routed:         b.st.routed.Load(),
		Unrouted:       b.st.unrouted.Load(),
		Ignored:        b.st.ignored.Load(),
		DryRuns:        b.st.dryRuns.Load(),
		DryRunFailures: b.st.dryRunFailures.Load(),
		Pending:        b.st.pending.Load(),
	}
}
