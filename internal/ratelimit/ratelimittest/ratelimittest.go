// Package ratelimittest is the conformance suite of a rate limiter: the
// in-process one and the one in Redis pass the same tests. It counts
// refusals; it never depends on how fast the machine is.
package ratelimittest

import (
	"sync"
	"testing"
	"time"
)

// Limiter is what the suite checks (middleware.Limiter).
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// Run runs the suite. newPair returns two limiters sharing their counts
// (two replicas; the same one twice in a single process), allowing rate
// per second and burst at once, empty, each call a pair no other sees.
func Run(t *testing.T, newPair func(t *testing.T, rate float64, burst int) (Limiter, Limiter)) {
	// One check an hour: nothing refills while the test runs.
	const rate, burst = 1.0 / 3600, 3

	t.Run("burst then refused", func(t *testing.T) {
		a, _ := newPair(t, rate, burst)
		for i := range burst {
			if ok, _ := a.Allow("client:a"); !ok {
				t.Fatalf("check %d of a burst of %d refused", i+1, burst)
			}
		}
		for range 3 {
			ok, retry := a.Allow("client:a")
			if ok {
				t.Fatal("a check past the burst allowed")
			}
			if retry <= 0 || retry > time.Hour+time.Second {
				t.Fatalf("retry after %s, want (0, 1h]", retry)
			}
		}
		if ok, _ := a.Allow("client:b"); !ok {
			t.Fatal("another key was refused")
		}
	})

	t.Run("shared", func(t *testing.T) {
		a, b := newPair(t, rate, burst)
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				l := a
				if i%2 == 1 {
					l = b
				}
				if ok, _ := l.Allow("addr:192.0.2.1"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if allowed != burst {
			t.Fatalf("20 checks at once over two limiters: %d allowed, want %d", allowed, burst)
		}
	})

	t.Run("refills", func(t *testing.T) {
		// Fast enough to refill within a bounded poll.
		a, _ := newPair(t, 50, 1)
		if ok, _ := a.Allow("k"); !ok {
			t.Fatal("first check refused")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if ok, _ := a.Allow("k"); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the bucket never refilled")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// Caps is what RunCaps checks (handlers.Caps).
type Caps interface {
	Acquire(key string) (release func(), ok bool)
}

// RunCaps runs the suite of stream caps. newPair returns two caps sharing
// their counts (two replicas; the same one twice in a single process),
// allowing max open per key, empty, each call a pair no other sees.
func RunCaps(t *testing.T, newPair func(t *testing.T, max int) (Caps, Caps)) {
	t.Run("cap across both", func(t *testing.T) {
		a, b := newPair(t, 2)
		r1, ok := a.Acquire("client:a")
		if !ok {
			t.Fatal("first refused")
		}
		r2, ok := b.Acquire("client:a")
		if !ok {
			t.Fatal("second refused")
		}
		for i, c := range []Caps{a, b} {
			if _, ok := c.Acquire("client:a"); ok {
				t.Fatalf("a third on %d allowed", i)
			}
		}
		if _, ok := a.Acquire("client:b"); !ok {
			t.Fatal("another key refused")
		}
		r1()
		r1() // twice: gives back one
		r3, ok := b.Acquire("client:a")
		if !ok {
			t.Fatal("refused after a release")
		}
		if _, ok := a.Acquire("client:a"); ok {
			t.Fatal("a double release gave back two")
		}
		r2()
		r3()
		for i := range 2 {
			if _, ok := a.Acquire("client:a"); !ok {
				t.Fatalf("%d after every release refused", i+1)
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		a, b := newPair(t, 5)
		var mu sync.Mutex
		got := 0
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				c := a
				if i%2 == 1 {
					c = b
				}
				if _, ok := c.Acquire("addr:x"); ok {
					mu.Lock()
					got++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if got != 5 {
			t.Fatalf("20 at once under a cap of 5: %d allowed", got)
		}
	})
}
