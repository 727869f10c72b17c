// Package ratelimit bounds how fast and how much each caller may use the
// gateway: token buckets per key (a client, an address) and caps on the
// connections a key holds open at once (event streams).
//
// Both keep their state in memory, bounded; a later step may keep it in a
// shared store so that several gateways count together.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the keys a Limiter remembers.
const DefaultMaxKeys = 100_000

// Config is a Limiter's configuration.
type Config struct {
	// Rate is how many requests per second a key may make in the long run
	// (required, > 0).
	Rate float64
	// Burst is how many it may make at once (default: Rate rounded up, at
	// least 1).
	Burst int
	// MaxKeys bounds the keys remembered (default 100000); the least
	// recently used is forgotten first, which only gives it a full bucket
	// again.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter is a set of token buckets (golang.org/x/time/rate), one per key,
// each holding up to Burst tokens and refilled at Rate per second, the keys
// kept in a least-recently-used set bounded by MaxKeys. It is safe for
// concurrent use.
type Limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets *simplelru.LRU[string, *rate.Limiter]
}

// New validates cfg, fills defaults and returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		return nil, errors.New("ratelimit: Rate must be a positive number")
	}
	switch {
	case cfg.Burst < 0:
		return nil, errors.New("ratelimit: Burst must not be negative")
	case cfg.Burst == 0:
		cfg.Burst = int(max(1, math.Ceil(cfg.Rate)))
	}
	switch {
	case cfg.MaxKeys < 0:
		return nil, errors.New("ratelimit: MaxKeys must not be negative")
	case cfg.MaxKeys == 0:
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	buckets, err := simplelru.NewLRU[string, *rate.Limiter](cfg.MaxKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	return &Limiter{rate: rate.Limit(cfg.Rate), burst: cfg.Burst, now: cfg.Now, buckets: buckets}, nil
}

// Allow takes a token from key's bucket. When there is none it returns false
// and how long until there is one (for Retry-After, RFC 9110 section 10.2.3);
// a refused call takes nothing, so hammering does not push the wait further.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets.Get(key)
	if !found {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets.Add(key, b)
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	// Refused, b is unchanged; under l.mu nobody else takes from it.
	wait := time.Duration(math.Ceil((1 - b.TokensAt(now)) / float64(l.rate) * 1e9))
	return false, max(wait, time.Nanosecond)
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets.Len()
}

// Caps counts the connections each key holds open and refuses more than a
// maximum. It is safe for concurrent use; keys are forgotten when their last
// connection closes, so memory follows the open connections.
type Caps struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewCaps returns Caps allowing max open connections per key; max <= 0 means
// no limit (connections are still counted).
func NewCaps(max int) *Caps {
	return &Caps{max: max, n: map[string]int{}}
}

// Acquire counts one more connection for key, unless key already holds the
// maximum. release gives it back; calling it again does nothing, and it is
// never nil (a no-op when ok is false), so it can always be deferred.
func (c *Caps) Acquire(key string) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[key] >= c.max {
		return func() {}, false
	}
	c.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.n[key] <= 1 {
				delete(c.n, key)
			} else {
				c.n[key]--
			}
		})
	}, true
}

// Open is the number of connections key holds.
func (c *Caps) Open(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}
