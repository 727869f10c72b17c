package hub

import (
	"crypto/rand"

	"github.com/ovosgw/gateway/api"
)

// Subscription is one open stream of a client: the frames to replay first,
// then the live frames. It is small on purpose (no goroutine, one bounded
// channel), since a gateway may hold tens of thousands of idle streams.
type Subscription struct {
	id       string
	session  string
	key      int64 // the client's key version it was opened with; 0: none
	hub      *Server
	topic    *topic // nil when the hub was closed before it could attach
	ch       chan []byte
	done     chan struct{}
	err      error // set before done is closed
	idx      int   // index in topic.subs, -1 once detached; guarded by topic.mu
	lastID   uint64
	resumeID uint64
	replay   [][]byte
	gap      bool
	gapEvent api.GapEvent
}

// newConnectionID returns 128 random bits in base32 (crypto/rand.Text).
func newConnectionID() string { return rand.Text() }

// ID is the connection's random id, which the `ready` event names.
func (s *Subscription) ID() string { return s.id }

// LastID is the client's newest event id when the subscription opened.
func (s *Subscription) LastID() uint64 { return s.lastID }

// ResumeID is the id for the `ready` event to carry: the id just before the
// first frame this subscription delivers (replayed or live). It equals LastID
// when nothing is replayed; with a replay it is lower, so that a stream cut
// between `ready` and the end of the replay resumes where the replay stopped
// instead of skipping it.
func (s *Subscription) ResumeID() uint64 { return s.resumeID }

// Replay returns the encoded frames to write before the live ones, oldest
// first. The frames are shared with other subscribers: do not modify them.
func (s *Subscription) Replay() [][]byte { return s.replay }

// Gap reports whether events were lost between the Last-Event-ID the client
// sent and the first frame it gets, and the data of the `gap` event to send
// after `ready`: LastEventID as the client sent it (cut to 32 bytes) and
// FirstEventID, the id of the first frame it will receive.
func (s *Subscription) Gap() (bool, api.GapEvent) { return s.gap, s.gapEvent }

// Events delivers the live frames. It is never closed: watch Done, and prefer
// it in a select, since frames may remain buffered after the end. The frames
// are shared with other subscribers: do not modify them.
func (s *Subscription) Events() <-chan []byte { return s.ch }

// Done is closed when the hub ends the subscription (ErrSlow, a Kick, Forget,
// the hub's Close); not by the subscription's own Close, whose caller knows.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the hub ended the subscription; it is nil while it is live and
// after the subscription's own Close.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close unsubscribes: the stream's handler calls it when it returns. It is
// idempotent and safe at any time, after the hub ended the subscription too.
func (s *Subscription) Close() {
	t := s.topic
	if t == nil {
		return
	}
	t.mu.Lock()
	attached := s.idx >= 0
	if attached {
		t.remove(s)
	}
	t.mu.Unlock()
	if attached {
		s.hub.subscribers.Add(-1)
	}
}

// end records why the hub ended the subscription and closes Done. The caller
// has detached s (under the topic lock), which happens once.
func (s *Subscription) end(err error) {
	s.err = err
	close(s.done)
}
