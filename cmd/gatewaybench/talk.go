package main

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// clientState is one registered client: its session, its source address and
// the utterances whose events are still awaited.
type clientState struct {
	id    string
	key   string
	token string
	src   *source
	slow  bool
	// base and hostport are the replica the client logs in to and posts
	// its utterances to (its streams are on the first replica).
	base     string
	hostport string
	res      *results

	mu   sync.Mutex
	utts map[string]*utt // by utterance id
}

// utt is one utterance in flight. Its speak and done events may arrive
// before the POST that sent it has returned its id, so whichever side comes
// first creates it.
type utt struct {
	start  time.Time // before the POST was sent
	sent   bool      // the POST returned the id
	speak  time.Time // first speak event
	end    time.Time // done event
	status string
	done   chan struct{} // closed at the done event
}

func newClient(id string, src *source, slow bool, res *results) *clientState {
	return &clientState{id: id, src: src, slow: slow, res: res, utts: make(map[string]*utt)}
}

// get returns the utterance id, creating it. c.mu held.
func (c *clientState) get(id string) *utt {
	u := c.utts[id]
	if u == nil {
		u = &utt{done: make(chan struct{})}
		c.utts[id] = u
	}
	return u
}

// speak records a speak event of utterance id.
func (c *clientState) speak(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := c.get(id); u.speak.IsZero() {
		u.speak = at
	}
}

// done records the done event of utterance id.
func (c *clientState) done(id, status string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.get(id)
	if !u.end.IsZero() {
		return
	}
	u.end, u.status = at, status
	close(u.done)
	if u.sent {
		delete(c.utts, id)
		c.res.outstanding.Add(-1)
		c.res.finish(u)
	}
}

// sent records that the POST of utterance id, started at start, returned. It
// returns the channel closed at its done event.
func (c *clientState) sent(id string, start time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.get(id)
	u.start, u.sent = start, true
	if !u.end.IsZero() {
		delete(c.utts, id)
		c.res.finish(u)
	} else {
		c.res.outstanding.Add(1)
	}
	return u.done
}

// abandon forgets utterance id, whose done event did not come in time; it
// reports whether it was still awaited.
func (c *clientState) abandon(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.utts[id]
	if u == nil || !u.end.IsZero() {
		return false
	}
	delete(c.utts, id)
	c.res.outstanding.Add(-1)
	return true
}

// sweep forgets every utterance still awaited and returns how many were sent.
func (c *clientState) sweep() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id, u := range c.utts {
		if u.sent {
			n++
			c.res.outstanding.Add(-1)
		}
		delete(c.utts, id)
	}
	return n
}

// results collects the samples of the measured window.
type results struct {
	from, to time.Time // the measured window, by utterance start

	outstanding atomic.Int64 // sent, done event not yet seen

	mu       sync.Mutex
	accept   []time.Duration // POST sent → 202 read
	speak    []time.Duration // POST sent → first speak
	done     []time.Duration // POST sent → done
	sentN    int             // utterances accepted in the window
	statuses map[string]int
	errors   map[string]int
	slowSent int // utterances of slow clients accepted
}

func newResults() *results {
	return &results{statuses: make(map[string]int), errors: make(map[string]int)}
}

// counts reports whether an utterance started at start is measured. The
// window is set before any talker starts and never changes.
func (r *results) counts(start time.Time) bool {
	return !start.Before(r.from) && start.Before(r.to)
}

// finish records an utterance whose done event came (and whose POST
// returned). It is called with its client's lock held.
func (r *results) finish(u *utt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.counts(u.start) {
		return
	}
	if !u.speak.IsZero() {
		r.speak = append(r.speak, u.speak.Sub(u.start))
	}
	r.done = append(r.done, u.end.Sub(u.start))
	r.statuses[u.status]++
	if u.status != "handled" {
		r.errors["status_"+u.status]++
	}
}

// accepted records a POST answered 202 after d.
func (r *results) accepted(start time.Time, d time.Duration, slow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.counts(start) {
		return
	}
	if slow {
		r.slowSent++
		return
	}
	r.sentN++
	r.accept = append(r.accept, d)
}

// fail counts an error of kind. Talkers count those of the warm-up too,
// since they say something went wrong.
func (r *results) fail(kind string) {
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// talker speaks as one client until end: flat out (each utterance waits for
// its done event, or timeout), or at one utterance every interval from its
// first slot at (open loop: it never waits for done).
type talker struct {
	cl       *clientState
	sp       *speaker
	interval time.Duration // 0: flat out
	first    time.Time     // first slot in open loop
	timeout  time.Duration
	late     *atomic.Uint64 // open-loop sends more than an interval behind
}

func utteranceBody(text string) []byte {
	b, _ := json.Marshal(map[string]string{"utterance": text})
	return b
}

func (t *talker) run(ctx context.Context, end time.Time) {
	defer t.sp.close()
	res := t.cl.res
	next := t.first
	for ctx.Err() == nil {
		if t.interval > 0 {
			if !next.Before(end) {
				return
			}
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			} else if -d > t.interval {
				t.late.Add(1)
			}
			next = next.Add(t.interval)
		} else if !time.Now().Before(end) {
			return
		}
		start := time.Now()
		id, err := t.sp.say(ctx, t.timeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if start.Before(res.to) {
				res.fail(errorKind(err))
			}
			if t.interval == 0 {
				// Flat out, a refusal would spin: pause as a client would.
				select {
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
			continue
		}
		res.accepted(start, time.Since(start), t.cl.slow)
		if t.cl.slow {
			continue // its stream is not read: no events to wait for
		}
		done := t.cl.sent(id, start)
		if t.interval > 0 {
			continue
		}
		timer := time.NewTimer(t.timeout)
		select {
		case <-done:
		case <-timer.C:
			if t.cl.abandon(id) && start.Before(res.to) {
				res.fail("no_done")
			}
		case <-ctx.Done():
		}
		timer.Stop()
	}
}
