package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(t testing.TB, cfg Config) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg.Now = c.Now
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestAllow(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the call
		ok    bool
		retry time.Duration
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"burst then refused", Config{Rate: 1, Burst: 3}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, time.Second},
		}},
		{"refill one token", Config{Rate: 1, Burst: 2}, []step{
			{0, true, 0}, {0, true, 0}, {0, false, time.Second},
			{400 * time.Millisecond, false, 600 * time.Millisecond},
			{600 * time.Millisecond, true, 0}, {0, false, time.Second},
		}},
		// The bucket never holds more than Burst, however long it rests.
		{"refill capped at burst", Config{Rate: 10, Burst: 2}, []step{
			{0, true, 0}, {time.Hour, true, 0}, {0, true, 0}, {0, false, 100 * time.Millisecond},
		}},
		// A refused call takes nothing: hammering does not push the wait.
		{"refusals cost nothing", Config{Rate: 2, Burst: 1}, []step{
			{0, true, 0}, {0, false, 500 * time.Millisecond}, {0, false, 500 * time.Millisecond},
			{500 * time.Millisecond, true, 0},
		}},
		{"default burst from rate", Config{Rate: 2.5}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 400 * time.Millisecond},
		}},
		{"slow rate", Config{Rate: 1.0 / 60, Burst: 1}, []step{
			{0, true, 0}, {0, false, time.Minute}, {30 * time.Second, false, 30 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newLimiter(t, tt.cfg)
			for i, s := range tt.steps {
				c.Advance(s.after)
				ok, retry := l.Allow("k")
				if ok != s.ok || (retry-s.retry).Abs() > time.Microsecond {
					t.Errorf("step %d: Allow = %v, %s; want %v, %s", i, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

// TestKeysIndependent: one key's use does not limit another.
func TestKeysIndependent(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 1})
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first call refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second call of a allowed")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b refused because of a")
	}
}

// TestMaxKeys: the limiter forgets the least recently used key beyond
// MaxKeys, so an attacker inventing keys cannot exhaust memory.
func TestMaxKeys(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 1, MaxKeys: 2})
	l.Allow("a")
	l.Allow("b")
	l.Allow("a") // a is now the most recent
	l.Allow("c") // forgets b
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("a was forgotten although recently used")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b was not forgotten")
	}
	for i := range 1000 {
		l.Allow(fmt.Sprint(i))
	}
	if n := l.Len(); n != 2 {
		t.Errorf("Len after 1000 keys = %d, want 2", n)
	}
}

// TestRefillSynctest checks the refill on the real clock's API under
// synctest's fake time.
func TestRefillSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(Config{Rate: 4, Burst: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("first call refused")
		}
		ok, retry := l.Allow("k")
		if ok || retry != 250*time.Millisecond {
			t.Fatalf("Allow = %v, %s; want false, 250ms", ok, retry)
		}
		time.Sleep(retry)
		if ok, _ := l.Allow("k"); !ok {
			t.Error("refused after waiting Retry-After")
		}
	})
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{}, {Rate: -1}, {Rate: 1, Burst: -1}, {Rate: 1, MaxKeys: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestCaps(t *testing.T) {
	c := NewCaps(2)
	r1, ok1 := c.Acquire("k")
	r2, ok2 := c.Acquire("k")
	r3, ok3 := c.Acquire("k")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("Acquire x3 = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	r3() // the refused release is a no-op
	if n := c.Open("k"); n != 2 {
		t.Fatalf("Open = %d after a refused release, want 2", n)
	}
	if _, ok := c.Acquire("other"); !ok {
		t.Error("another key refused")
	}
	// Release is idempotent: a double release must not free a slot that
	// another connection holds.
	r1()
	r1()
	if n := c.Open("k"); n != 1 {
		t.Fatalf("Open after double release = %d, want 1", n)
	}
	r4, ok := c.Acquire("k")
	if !ok {
		t.Fatal("slot not given back")
	}
	if _, ok := c.Acquire("k"); ok {
		t.Error("third connection allowed after a double release")
	}
	r2()
	r4()
	if n := c.Open("k"); n != 0 {
		t.Errorf("Open after all released = %d", n)
	}
	if len(c.n) != 1 { // only "other" remains
		t.Errorf("keys kept: %v", c.n)
	}
}

func TestCapsUnlimited(t *testing.T) {
	c := NewCaps(0)
	for range 100 {
		if _, ok := c.Acquire("k"); !ok {
			t.Fatal("refused with no limit")
		}
	}
	if c.Open("k") != 100 {
		t.Error("not counted")
	}
}

func TestCapsConcurrent(t *testing.T) {
	c := NewCaps(5)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	for range 50 {
		wg.Go(func() {
			release, ok := c.Acquire("k")
			defer release()
			if ok {
				mu.Lock()
				peak = max(peak, c.Open("k"))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if peak > 5 || c.Open("k") != 0 {
		t.Errorf("peak %d (max 5), open at end %d", peak, c.Open("k"))
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, keys := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			l, err := New(Config{Rate: 1e9, Burst: 1e9})
			if err != nil {
				b.Fatal(err)
			}
			names := make([]string, keys)
			for i := range names {
				names[i] = fmt.Sprintf("client-%d", i)
				l.Allow(names[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(names[i%keys])
				i++
			}
		})
	}
}
