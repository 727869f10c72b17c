// Package banstest is the conformance suite of bans.Counter: the in-process
// counter and the one in Redis pass the same tests.
package banstest

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/store"
)

// policy is the suite's: 3 failures within a minute, bans of an hour
// doubling up to 4 hours, repeats remembered for a day.
var policy = bans.Policy{After: 3, Window: time.Minute, For: time.Hour, MaxFor: 4 * time.Hour, Remember: 24 * time.Hour}

// Run runs the suite; newCounter returns an empty counter, each call one
// the previous calls do not see.
func Run(t *testing.T, newCounter func(t *testing.T) bans.Counter) {
	// Times on whole milliseconds, as Redis keeps them.
	base := time.UnixMilli(time.Now().UnixMilli())
	ctx := context.Background()
	fail := func(t *testing.T, c bans.Counter, key string, at time.Time) int {
		t.Helper()
		n, err := c.Fail(ctx, key, at, policy)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	reserve := func(t *testing.T, c bans.Counter, key string, at time.Time) bool {
		t.Helper()
		ok, err := c.Reserve(ctx, key, at, policy)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("threshold", func(t *testing.T) {
		c := newCounter(t)
		for i := range policy.After - 1 {
			if n := fail(t, c, "192.0.2.1/32", base.Add(time.Duration(i)*time.Second)); n != 0 {
				t.Fatalf("failure %d: ban %d, want none", i+1, n)
			}
		}
		if n := fail(t, c, "192.0.2.2/32", base); n != 0 {
			t.Fatalf("another address: ban %d", n)
		}
		if n := fail(t, c, "192.0.2.1/32", base.Add(10*time.Second)); n != 1 {
			t.Fatalf("failure %d: ban %d, want 1", policy.After, n)
		}
		// The failures are forgotten with the ban: counting starts again.
		if n := fail(t, c, "192.0.2.1/32", base.Add(11*time.Second)); n != 0 {
			t.Fatalf("after the ban: ban %d, want none", n)
		}
	})

	t.Run("window", func(t *testing.T) {
		c := newCounter(t)
		at := base
		for i := range 2 * policy.After {
			if n := fail(t, c, "192.0.2.3/32", at); n != 0 {
				t.Fatalf("failure %d, each a window apart: ban %d", i+1, n)
			}
			at = at.Add(policy.Window)
		}
	})

	t.Run("doubling and remembering", func(t *testing.T) {
		c := newCounter(t)
		at := base
		round := func() int {
			n := 0
			for range policy.After {
				n = fail(t, c, "2001:db8::/64", at)
				at = at.Add(time.Second)
			}
			return n
		}
		for want := 1; want <= 4; want++ {
			if n := round(); n != want {
				t.Fatalf("round %d: ban %d", want, n)
			}
		}
		if d := policy.BanLength(4); d != policy.MaxFor {
			t.Fatalf("ban 4 lasts %s, want %s", d, policy.MaxFor)
		}
		// Long after the last ban ended, the next is a first one again.
		at = at.Add(policy.MaxFor + policy.Remember + time.Minute)
		if n := round(); n != 1 {
			t.Fatalf("after Remember: ban %d, want 1", n)
		}
	})

	t.Run("reservations", func(t *testing.T) {
		c := newCounter(t)
		key := "198.51.100.7/32"
		if n := fail(t, c, key, base); n != 0 {
			t.Fatal(n)
		}
		for i := range policy.After - 1 {
			if !reserve(t, c, key, base.Add(time.Second)) {
				t.Fatalf("reservation %d refused", i+1)
			}
		}
		if reserve(t, c, key, base.Add(time.Second)) {
			t.Fatal("a failure and After-1 reservations: one more was granted")
		}
		if err := c.Unreserve(ctx, key); err != nil {
			t.Fatal(err)
		}
		if !reserve(t, c, key, base.Add(time.Second)) {
			t.Fatal("a released reservation was not given back")
		}
		// The failure leaves the window: room for one more.
		if !reserve(t, c, key, base.Add(policy.Window+time.Second)) {
			t.Fatal("a failure out of the window still counts")
		}
		for range policy.After {
			if err := c.Unreserve(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		// Unreserving more than reserved gives nothing extra.
		if err := c.Unreserve(ctx, key); err != nil {
			t.Fatal(err)
		}
		for i := range policy.After {
			if !reserve(t, c, key, base.Add(policy.Window+2*time.Second)) {
				t.Fatalf("reservation %d refused when none is held", i+1)
			}
		}
		if reserve(t, c, key, base.Add(policy.Window+2*time.Second)) {
			t.Fatal("After+1 reservations granted")
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		c := newCounter(t)
		const n = 30 // a multiple of After: exactly n/After bans
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int]int{}
		for i := range n {
			wg.Go(func() {
				b, err := c.Fail(ctx, "203.0.113.9/32", base.Add(time.Duration(i)*time.Millisecond), policy)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got[b]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(got) != n/policy.After+1 || got[0] != n-n/policy.After {
			t.Fatalf("bans of %d failures at once: %v, want each of 1..%d once", n, got, n/policy.After)
		}
	})

	t.Run("replicas count together", func(t *testing.T) {
		// Two Bans (two replicas) on one counter, each with its own
		// blacklist: the failures sent to both add up to one ban.
		c := newCounter(t)
		var replicas [2]*bans.Bans
		var lists [2]*blacklist.Blacklist
		for i := range replicas {
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), fmt.Sprintf("gateway%d.db", i)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			lists[i], err = blacklist.New(ctx, blacklist.Config{}, st)
			if err != nil {
				t.Fatal(err)
			}
			replicas[i], err = bans.New(bans.Config{After: 4, Counter: c}, lists[i])
			if err != nil {
				t.Fatal(err)
			}
		}
		addr := netip.MustParseAddr("192.0.2.77")
		for i := range 3 {
			if replicas[i%2].Failed(ctx, addr, "client-key") {
				t.Fatalf("failure %d banned", i+1)
			}
		}
		if !replicas[1].Failed(ctx, addr, "client-key") {
			t.Fatal("the 4th failure, 2 on each replica, did not ban")
		}
		if !lists[1].Blocked(addr) {
			t.Fatal("the ban is not in the blacklist")
		}
		// Reserved checks count on every replica too.
		other := netip.MustParseAddr("192.0.2.78")
		for i := range 4 {
			ok, err := replicas[i%2].Attempt(ctx, other)
			if err != nil || !ok {
				t.Fatalf("attempt %d: %v %v", i+1, ok, err)
			}
		}
		if ok, err := replicas[0].Attempt(ctx, other); err != nil || ok {
			t.Fatalf("a 5th attempt at once, over two replicas: %v %v, want refused", ok, err)
		}
	})
}
