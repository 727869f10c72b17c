package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Shared is what the bridges of several gateway replicas linked to one
// assistant agree on (redisstore.Utterances). Every replica hears every
// frame the bus carries, so each must know which frames are its own to
// deliver:
//   - a frame naming an utterance that one replica sent (pending, or ended
//     a moment ago) is that replica's: the others leave it (OwnedElsewhere);
//   - any other frame for a client (late speech, a timer, a proactive
//     speak) is delivered by the one replica that claims it first (Claim).
//
// And an utterance whose replica died is ended by another (Lease, in the
// implementation's sweep, which calls EndOrphan).
type Shared interface {
	// Own records that this replica sent utterance id, for clientID's
	// session, and will end it by until; failing, the utterance is not sent.
	// With lease, another replica ends it (EndOrphan) if it is still owned
	// after until: this replica died. A dry run takes no lease (it has no
	// done event).
	Own(ctx context.Context, id, clientID, sessionID string, until time.Time, lease bool) error
	// Ended says that utterance id ended here: it stays this replica's for a
	// while, so that its late frames are still delivered here only.
	Ended(ctx context.Context, id, clientID, sessionID string)
	// OwnedElsewhere says whether another replica owns utterance id.
	OwnedElsewhere(ctx context.Context, id string) (bool, error)
	// Claim says whether this replica is the first to claim key.
	Claim(ctx context.Context, key string) (bool, error)
}

// Timing of the shared ownership of utterances.
const (
	// OrphanGrace is how long after its timeout an utterance whose replica
	// died is ended by another.
	OrphanGrace = 5 * time.Second
	// claimTimeout bounds a call to Shared from the bus reader.
	claimTimeout = time.Second
	// claimWindow is how long a frame's occurrences are counted: frames that
	// are byte for byte the same within it are told apart by their count.
	claimWindow = 30 * time.Second
	// maxOccurrences bounds the frames counted.
	maxOccurrences = 1 << 14
)

// occurrences numbers the frames a bus carried that are byte for byte the
// same (a skill saying "OK" twice): every replica sees the bus's frames in
// the same order, so the n-th copy has the same key on every replica, and
// the copies are delivered once each rather than once in all.
type occurrences struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]occurrence
}

type occurrence struct {
	n    int
	last time.Time
}

func (o *occurrences) key(raw []byte, now time.Time) string {
	h := sha256.Sum256(raw)
	o.mu.Lock()
	if o.seen == nil {
		o.seen = make(map[[sha256.Size]byte]occurrence)
	}
	if len(o.seen) >= maxOccurrences {
		for k, v := range o.seen {
			if now.Sub(v.last) > claimWindow {
				delete(o.seen, k)
			}
		}
		if len(o.seen) >= maxOccurrences {
			clear(o.seen)
		}
	}
	c := o.seen[h]
	if now.Sub(c.last) > claimWindow {
		c.n = 0
	}
	c.n++
	c.last = now
	o.seen[h] = c
	o.mu.Unlock()
	return hex.EncodeToString(h[:]) + ":" + strconv.Itoa(c.n)
}

// mine reports whether this replica delivers f without asking the others:
// traffic the bridge drops anyway, a frame for no client, a frame naming an
// utterance of this replica's (pending or remembered as ended), or one of a
// session that has an utterance pending here.
func (b *Bridge) mine(f *api.Frame) bool {
	switch f.Type {
	case api.TypeConnected, api.TypeUtterance, api.TypeIntentGet:
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &f.Route
	if r.UtteranceID != "" {
		if b.utts[r.UtteranceID] != nil {
			return true
		}
	} else if s := b.session(r.SessionID); s != nil && len(s.pending) > 0 {
		return true
	}
	_, ok := b.route(f)
	return !ok
}

// claim reports whether this replica delivers f, a frame for a client that
// it does not own: not when another replica owns its utterance, and only
// when this replica claims it first. When the shared state cannot be asked,
// the frame is delivered: a copy too many rather than none.
func (b *Bridge) claim(f *api.Frame) bool {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	if id := f.Route.UtteranceID; id != "" {
		elsewhere, err := b.cfg.Shared.OwnedElsewhere(ctx, id)
		if err != nil {
			return true
		}
		if elsewhere {
			return false
		}
	}
	ok, err := b.cfg.Shared.Claim(ctx, b.occ.key(f.Raw, b.cfg.Now()))
	return ok || err != nil
}

// own records p as this replica's before it is written; failing, p is
// discarded. b.mu not held.
func (b *Bridge) own(ctx context.Context, p *Pending) error {
	if b.cfg.Shared == nil {
		return nil
	}
	until := b.cfg.Now().Add(b.cfg.UtteranceTimeout + OrphanGrace)
	if err := b.cfg.Shared.Own(ctx, p.id, p.clientID, p.sessionID, until, !p.dry); err != nil {
		b.mu.Lock()
		b.discard(p)
		b.mu.Unlock()
		b.st.refused.Add(1)
		return unavailableBy(err, "the gateway's shared state is unreachable")
	}
	return nil
}

// ended tells the others that p ended here, without holding up the caller.
func (b *Bridge) ended(p *Pending) {
	if b.cfg.Shared == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		defer cancel()
		b.cfg.Shared.Ended(ctx, p.id, p.clientID, p.sessionID)
	}()
}

// EndOrphan ends, with status error, an utterance that another replica sent
// and that outlived its timeout because that replica died: its client gets
// the done event it was owed.
func (b *Bridge) EndOrphan(id, clientID, sessionID string) {
	b.mu.Lock()
	p := b.utts[id]
	b.mu.Unlock()
	if p != nil {
		return // ours after all: it ends here
	}
	data, _ := json.Marshal(api.DoneEvent{UtteranceID: id, SessionID: sessionID, Status: api.StatusError})
	b.publish(clientID, api.Event{Name: api.EventDone, Data: data}, false)
}
