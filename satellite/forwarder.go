package satellite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
)

// Defaults for ForwarderConfig fields left zero.
const (
	DefaultLocalTimeout = 10 * time.Second
	DefaultAskTimeout   = 2 * time.Minute
	DefaultReemitMaxAge = 2 * time.Minute
)

// Bounds of the bridge.
const (
	// maxFollowed bounds the device utterances followed at once.
	maxFollowed = 64
	// localQueue bounds the local frames received but not yet looked at;
	// the bus reader never waits on the bridge, so a flood is dropped.
	localQueue = 1024
	// eventQueue bounds the stream events not yet handled; the stream
	// waits (and resumes with Last-Event-ID if the gateway cuts it).
	eventQueue = 256
	// outboxSize bounds the answers waiting for the local bus; the oldest
	// is dropped beyond.
	outboxSize = 256
	// maxHeld bounds the stream events held until the ask they answer is
	// known.
	maxHeld = 256
	// maxAsked bounds the gateway utterance ids remembered with the
	// session they answer.
	maxAsked = 256
	// sendTimeout bounds one write to the local bus.
	sendTimeout = 5 * time.Second
	// outboxRetry is how often held answers are tried again while the local
	// bus is down.
	outboxRetry = 200 * time.Millisecond
	// startedForget is how long an utterance whose local handler started is
	// followed at most: a handler waiting for a follow-up answer ends
	// within a minute (ovos-workshop's get_response waits 15 s).
	startedForget = 5 * time.Minute
	// askRetryMin and askRetryMax bound the delay between two attempts to
	// ask an unreachable gateway.
	askRetryMin = 250 * time.Millisecond
	askRetryMax = 5 * time.Second
)

// Gateway is what the satellite needs of the gateway; *apiclient.Client is
// one.
type Gateway interface {
	// Say puts an utterance on the gateway's bus.
	Say(ctx context.Context, req api.UtteranceRequest) (api.UtteranceAccepted, error)
	// Stream holds the client's event stream until ctx is done.
	Stream(ctx context.Context, opts apiclient.StreamOptions, fn func(apiclient.Event)) error
}

// LocalBus is the device's messagebus; *busclient.Client is one.
type LocalBus interface {
	// Send writes one message to the bus.
	Send(ctx context.Context, m api.Message) error
	// Subscribe registers fn for every frame received, on the bus reader:
	// fn must not block.
	Subscribe(fn func(*api.Frame)) (cancel func())
}

// ForwarderConfig configures a Forwarder. Zero fields take the defaults.
type ForwarderConfig struct {
	// LocalTimeout is how long the local assistant has to handle an
	// utterance (or to fail it) before the gateway is asked.
	LocalTimeout time.Duration
	// AskTimeout is how long an utterance keeps being offered to a gateway
	// that cannot take it (down, restarting, bus unavailable).
	AskTimeout time.Duration
	// ReemitMaxAge is how long an answer waits for a local bus that is down
	// before it is dropped: a very late answer is worse than none.
	ReemitMaxAge time.Duration
	// Logger receives the decisions ("Waiting for intent handling before
	// asking server", ...); nil discards them.
	Logger *slog.Logger
}

// Forwarder runs beside a device's own assistant: it follows each utterance of
// the device on the local bus, asks the gateway only when the local
// assistant failed it (or did not handle it in time), and re-emits on the
// local bus what of the gateway's stream the device must act on: speak for
// the device's speaker, and the audio service's messages (Reemitted), no
// other. The rest (the server's intent messages, handler start and
// complete, complete_intent_failure, its error sound) concern the server's
// assistant: on the device's bus they could start the device's own skill a
// second time. What it re-emits is marked and never forwarded again.
type Forwarder struct {
	cfg   ForwarderConfig
	log   *slog.Logger
	gw    Gateway
	local LocalBus
}

// NewForwarder validates cfg and fills its defaults.
func NewForwarder(cfg ForwarderConfig, gw Gateway, local LocalBus) (*Forwarder, error) {
	if gw == nil || local == nil {
		return nil, errors.New("satellite: bridge needs a gateway and a local bus")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"LocalTimeout", &cfg.LocalTimeout, DefaultLocalTimeout},
		{"AskTimeout", &cfg.AskTimeout, DefaultAskTimeout},
		{"ReemitMaxAge", &cfg.ReemitMaxAge, DefaultReemitMaxAge},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("satellite: %s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{cfg: cfg, log: log, gw: gw, local: local}, nil
}

// askResult is the end of one attempt to hand an utterance to the gateway.
type askResult struct {
	u   *utterance
	acc api.UtteranceAccepted
	err error
}

// outMsg is one message for the local bus, with when it was made.
type outMsg struct {
	msg api.Message
	at  time.Time
}

// forwardRun is the state of one Run, owned by its loop goroutine.
type forwardRun struct {
	*Forwarder
	ctx      context.Context
	tracker  *tracker
	timeouts chan uint64
	forgets  chan uint64
	asks     chan askResult
	out      chan outMsg
	wg       *sync.WaitGroup
	inflight int
	// asked maps a gateway utterance id to the session of the device
	// utterance it carries, for the answer's context; askedOrder evicts.
	asked      map[string]json.RawMessage
	askedOrder []string
	// held are stream events that answer an id not known yet (an ask still
	// in flight); they go out once no ask is.
	held []apiclient.Event
}

// Run bridges until ctx is done (then it returns nil) or the gateway
// refuses the client for good (then it returns that error).
func (b *Forwarder) Run(ctx context.Context) error {
	// Deferred calls run last first: cancel, then wait for every goroutine.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	local := make(chan *api.Frame, localQueue)
	unsubscribe := b.local.Subscribe(func(f *api.Frame) {
		switch f.Type {
		case api.TypeUtterance, api.TypeIntentFailure, api.TypeUtteranceHandled, api.TypeHandlerStart, api.TypeHandlerComplete:
		default:
			return
		}
		select {
		case local <- f:
		default:
			b.log.Warn("local bus frames arrive faster than the bridge takes them: frame dropped", "type", f.Type)
		}
	})
	defer unsubscribe()

	events := make(chan apiclient.Event, eventQueue)
	streamErr := make(chan error, 1)
	wg.Go(func() {
		streamErr <- b.gw.Stream(ctx, apiclient.StreamOptions{}, func(ev apiclient.Event) {
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		})
	})

	r := &forwardRun{
		Forwarder: b,
		ctx:       ctx,
		tracker:   newTracker(maxFollowed),
		timeouts:  make(chan uint64, maxFollowed),
		forgets:   make(chan uint64, maxFollowed),
		asks:      make(chan askResult, maxFollowed),
		out:       make(chan outMsg, outboxSize),
		wg:        &wg,
		asked:     make(map[string]json.RawMessage),
	}
	wg.Go(func() { b.emitter(ctx, r.out) })
	defer r.tracker.each(func(u *utterance) { r.tracker.remove(u) })

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-streamErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("satellite: the gateway's stream: %w", err)
		case f := <-local:
			r.onLocal(f)
		case id := <-r.timeouts:
			if u := r.tracker.expire(id); u != nil {
				b.log.Info("No intent handling in time, ending wait", "utterance", u.text, "timeout", b.cfg.LocalTimeout)
				r.ask(u)
			}
		case id := <-r.forgets:
			r.tracker.forget(id)
		case res := <-r.asks:
			r.onAsked(res)
		case ev := <-events:
			r.onEvent(ev)
		}
	}
}

// onLocal handles one frame of the local bus.
func (r *forwardRun) onLocal(f *api.Frame) {
	switch f.Type {
	case api.TypeUtterance:
		if why := notForwarded(f); why != "" {
			r.log.Debug("utterance not followed", "reason", why, "source", f.Route.Source)
			return
		}
		lu, err := parseUtterance(f)
		if err != nil {
			r.log.Debug("utterance not followed", "reason", err.Error(), "source", f.Route.Source)
			return
		}
		u := &utterance{text: lu.text, lang: lu.lang, sessionID: lu.sessionID, session: lu.session, source: lu.source, arrived: time.Now()}
		if old := r.tracker.add(u); old != nil {
			r.log.Warn("too many utterances followed: the oldest is let go", "utterance", old.text)
		}
		r.log.Info("Processing utterance", "utterance", u.text, "source", sourceName(u.source), "session_id", u.sessionID)
		r.log.Info("Waiting for intent handling before asking server", "utterance", u.text, "timeout", r.cfg.LocalTimeout)
		id := u.id
		u.timeout = time.AfterFunc(r.cfg.LocalTimeout, func() { r.post(r.timeouts, id) })
		// Forget it if its end never comes (classic mycroft-core has none).
		u.forget = time.AfterFunc(2*r.cfg.LocalTimeout, func() { r.post(r.forgets, id) })
	case api.TypeIntentFailure:
		if notForwarded(f) != "" {
			return
		}
		if u := r.tracker.failure(sessionKey(f.Route.SessionID), failureText(f)); u != nil {
			r.log.Info("Intent failure detected, ending wait", "utterance", u.text)
			r.ask(u)
		}
	case api.TypeHandlerStart:
		if notForwarded(f) != "" {
			return
		}
		// A local handler runs: it may take long (a follow-up question waits
		// for the answer), so the end signal is waited for without the
		// local timeout.
		if u := r.tracker.handlerStart(sessionKey(f.Route.SessionID)); u != nil {
			u.timeout.Stop()
			u.forget.Reset(startedForget)
			r.log.Debug("a local intent handler started", "utterance", u.text)
		}
	case api.TypeHandlerComplete:
		if notForwarded(f) != "" {
			return
		}
		if u := r.tracker.handlerComplete(sessionKey(f.Route.SessionID)); u != nil {
			r.handledLocally(u)
		}
	case api.TypeUtteranceHandled:
		if notForwarded(f) != "" {
			return
		}
		if u, decided := r.tracker.utteranceHandled(sessionKey(f.Route.SessionID)); decided {
			r.handledLocally(u)
		}
	}
}

func (r *forwardRun) handledLocally(u *utterance) {
	r.log.Info("intent handled internally", "utterance", u.text)
	r.log.Info("Not asking server", "utterance", u.text)
}

// post hands id to the loop from a timer goroutine.
func (r *forwardRun) post(ch chan<- uint64, id uint64) {
	select {
	case ch <- id:
	case <-r.ctx.Done():
	}
}

// ask hands u to the gateway on a goroutine of its own, retrying while the
// gateway cannot take it, for at most AskTimeout.
func (r *forwardRun) ask(u *utterance) {
	r.log.Info("Asking server for answer", "utterance", u.text)
	r.inflight++
	req := api.UtteranceRequest{Utterance: u.text, Lang: u.lang}
	r.wg.Go(func() {
		acc, err := r.say(r.ctx, req)
		select {
		case r.asks <- askResult{u: u, acc: acc, err: err}:
		case <-r.ctx.Done():
		}
	})
}

func (r *forwardRun) say(ctx context.Context, req api.UtteranceRequest) (api.UtteranceAccepted, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AskTimeout)
	defer cancel()
	delay := askRetryMin
	for {
		acc, err := r.gw.Say(ctx, req)
		if err == nil {
			return acc, nil
		}
		if apiclient.Code(err) == api.EINVALID && req.Lang != "" {
			req.Lang = "" // the device's language tag is not one the gateway takes
			continue
		}
		retry, after := apiclient.Retryable(err)
		if !retry || ctx.Err() != nil {
			return api.UtteranceAccepted{}, err
		}
		wait := max(after, delay)
		r.log.Warn("the gateway cannot take the utterance yet; retrying", "utterance", req.Utterance, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return api.UtteranceAccepted{}, err
		}
		delay = min(delay*2, askRetryMax)
	}
}

// onAsked records what the gateway answered to an ask.
func (r *forwardRun) onAsked(res askResult) {
	r.inflight--
	switch intent, _, protected := apiclient.PasswordIntent(res.err); {
	case protected:
		r.log.Warn("the gateway protects this intent with a password; the bridge has none to give", "utterance", res.u.text, "intent", intent)
	case res.err != nil:
		r.log.Error("the gateway did not take the utterance", "utterance", res.u.text, "err", res.err)
	default:
		r.log.Debug("the gateway took the utterance", "utterance", res.u.text, "utterance_id", res.acc.ID)
		r.remember(res.acc.ID, res.u.session)
	}
	if r.inflight == 0 {
		held := r.held
		r.held = nil
		for _, ev := range held {
			r.reemit(ev)
		}
	}
}

// remember keeps which session a gateway utterance id answers, within
// maxAsked ids.
func (r *forwardRun) remember(id string, session json.RawMessage) {
	if _, ok := r.asked[id]; ok {
		return
	}
	if len(r.askedOrder) >= maxAsked {
		delete(r.asked, r.askedOrder[0])
		r.askedOrder = r.askedOrder[1:]
	}
	r.asked[id] = session
	r.askedOrder = append(r.askedOrder, id)
}

// onEvent handles one event of the gateway's stream.
func (r *forwardRun) onEvent(ev apiclient.Event) {
	switch ev.Name {
	case api.EventReady:
		r.log.Info("Connected to remote host")
		return
	case api.EventGap:
		r.log.Warn("the gateway could not replay everything missed while disconnected", "data", string(ev.Data))
		return
	case api.EventDone:
		var d api.DoneEvent
		if json.Unmarshal(ev.Data, &d) == nil {
			r.log.Info("Server answer complete", "utterance_id", d.UtteranceID, "status", d.Status)
		}
		return
	case api.EventSpeak, api.EventMessage:
	default:
		return
	}
	// An answer to an ask whose id is not known yet waits for it.
	if id := eventUtteranceID(ev); id != "" && r.inflight > 0 {
		if _, known := r.asked[id]; !known {
			if len(r.held) < maxHeld {
				r.held = append(r.held, ev)
				return
			}
		}
	}
	r.reemit(ev)
}

// eventUtteranceID is the gateway utterance id a speak or message event
// answers, "" when none.
func eventUtteranceID(ev apiclient.Event) string {
	switch ev.Name {
	case api.EventSpeak:
		var s api.SpeakEvent
		if json.Unmarshal(ev.Data, &s) == nil && s.UtteranceID != nil {
			return *s.UtteranceID
		}
	case api.EventMessage:
		return contextUtteranceID(ev.Data)
	}
	return ""
}

// reemit puts a speak or message event on the local bus.
func (r *forwardRun) reemit(ev apiclient.Event) {
	var (
		m   api.Message
		err error
	)
	switch ev.Name {
	case api.EventSpeak:
		var s api.SpeakEvent
		if err = json.Unmarshal(ev.Data, &s); err != nil {
			break
		}
		var session json.RawMessage
		if s.UtteranceID != nil {
			session = r.asked[*s.UtteranceID]
		}
		r.log.Info("Speak", "utterance", s.Utterance, "expect_response", s.ExpectResponse)
		m, err = speakMessage(s, session)
	case api.EventMessage:
		m, err = forwardedMessage(ev.Data)
		if err == nil && !Reemitted(m.Type) {
			r.log.Debug("Not re-emitted: a message of the server's assistant", "type", m.Type)
			return
		}
		if err == nil {
			r.log.Debug("Received data", "event", ev.Name, "type", m.Type)
		}
	}
	if err != nil {
		r.log.Warn("an event of the gateway's stream is not a bus message: dropped", "event", ev.Name, "err", err)
		return
	}
	select {
	case r.out <- outMsg{msg: m, at: time.Now()}:
	case <-r.ctx.Done():
	}
}

// emitter writes re-emitted messages to the local bus in order. While the
// local bus is down it holds them (at most outboxSize, each for at most
// ReemitMaxAge) and tries again, so that no answer is lost to a reconnect.
func (b *Forwarder) emitter(ctx context.Context, in <-chan outMsg) {
	var queue []outMsg
	add := func(m outMsg) {
		if len(queue) >= outboxSize {
			b.log.Warn("the local bus has been down too long: oldest answer dropped", "type", queue[0].msg.Type)
			queue = queue[1:]
		}
		queue = append(queue, m)
	}
	retry := time.NewTimer(0)
	<-retry.C
	down := false
	for {
		if len(queue) == 0 {
			select {
			case m := <-in:
				add(m)
			case <-ctx.Done():
				return
			}
		}
		head := queue[0]
		if time.Since(head.at) > b.cfg.ReemitMaxAge {
			b.log.Warn("an answer waited too long for the local bus: dropped", "type", head.msg.Type)
			queue = queue[1:]
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := b.local.Send(sctx, head.msg)
		cancel()
		if err == nil {
			if down {
				b.log.Info("the local bus is back: delivering held answers", "held", len(queue))
				down = false
			}
			queue = queue[1:]
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !down {
			b.log.Warn("the local bus cannot take answers now; holding them", "err", err)
			down = true
		}
		retry.Reset(outboxRetry)
	wait:
		for {
			select {
			case m := <-in:
				add(m)
			case <-retry.C:
				break wait
			case <-ctx.Done():
				retry.Stop()
				return
			}
		}
	}
}

// sourceName is a source for the logs: "none" when the frame had none.
func sourceName(n api.Names) string {
	switch len(n) {
	case 0:
		return "none"
	case 1:
		return n[0]
	}
	return fmt.Sprint([]string(n))
}
