package bans

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Policy is what a Counter needs of Config to count: the threshold, the
// window, and the ban lengths.
type Policy struct {
	After    int
	Window   time.Duration
	For      time.Duration
	MaxFor   time.Duration
	Remember time.Duration
}

// BanLength is the n-th ban's length: For doubled n-1 times, at most MaxFor.
func (p Policy) BanLength(n int) time.Duration {
	d := p.For
	for i := 1; i < n && d < p.MaxFor; i++ {
		d *= 2
	}
	return min(d, p.MaxFor)
}

// Counter keeps each address range's recent failures, the checks reserved
// and not yet released, and its bans so far. Keys are ranges in CIDR
// notation. The in-process one (NewMemCounter) is the default; with several
// replicas they share one in Redis (internal/redisstore), so that failed
// attempts count together. Every method is one atomic step.
type Counter interface {
	// Fail counts a failure of key at now. When the failures within
	// p.Window reach p.After, it forgets them and counts a ban (the repeats
	// forgotten p.Remember after the previous ban ended), returning its
	// number (1 for the first); otherwise 0.
	Fail(ctx context.Context, key string, now time.Time, p Policy) (ban int, err error)
	// Reserve reserves a check for key unless its failures within p.Window
	// and the checks reserved already reach p.After.
	Reserve(ctx context.Context, key string, now time.Time, p Policy) (bool, error)
	// Unreserve ends a check Reserve reserved.
	Unreserve(ctx context.Context, key string) error
}

// MemCounter is the Counter of one process: at most a bounded number of
// ranges, the least recently seen forgotten first. It is safe for
// concurrent use.
type MemCounter struct {
	mu    sync.Mutex
	addrs *simplelru.LRU[string, *addrRecord]
}

// addrRecord is what is known of one address (range).
type addrRecord struct {
	fails   []int64 // unix nanoseconds of recent failures, oldest first, at most After
	pending int     // checks reserved by Attempt and not yet released
	repeats int     // bans so far
	banEnd  int64   // when the last ban ends
}

// NewMemCounter returns an in-process Counter tracking at most max ranges
// (DefaultMaxTracked when not positive).
func NewMemCounter(max int) *MemCounter {
	if max <= 0 {
		max = DefaultMaxTracked
	}
	addrs, _ := simplelru.NewLRU[string, *addrRecord](max, nil) // only fails for max <= 0
	return &MemCounter{addrs: addrs}
}

// Len is how many ranges are tracked.
func (m *MemCounter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs.Len()
}

func (m *MemCounter) record(key string) *addrRecord {
	r, ok := m.addrs.Get(key)
	if !ok {
		r = &addrRecord{}
		m.addrs.Add(key, r)
	}
	return r
}

// Fail implements Counter.
func (m *MemCounter) Fail(_ context.Context, key string, now time.Time, p Policy) (int, error) {
	t := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.record(key)
	if r.repeats > 0 && t > r.banEnd+int64(p.Remember) {
		r.repeats = 0
	}
	cut := t - int64(p.Window)
	i := 0
	for i < len(r.fails) && r.fails[i] <= cut {
		i++
	}
	r.fails = append(r.fails[:0], r.fails[i:]...)
	r.fails = append(r.fails, t)
	if len(r.fails) < p.After {
		return 0, nil
	}
	r.fails = r.fails[:0]
	r.repeats++
	r.banEnd = t + int64(p.BanLength(r.repeats))
	return r.repeats, nil
}

// Reserve implements Counter.
func (m *MemCounter) Reserve(_ context.Context, key string, now time.Time, p Policy) (bool, error) {
	cut := now.UnixNano() - int64(p.Window)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.record(key)
	recent := 0
	for _, f := range r.fails {
		if f > cut {
			recent++
		}
	}
	if recent+r.pending >= p.After {
		return false, nil
	}
	r.pending++
	return true, nil
}

// Unreserve implements Counter.
func (m *MemCounter) Unreserve(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.addrs.Peek(key); ok && r.pending > 0 {
		r.pending--
	}
	return nil
}
