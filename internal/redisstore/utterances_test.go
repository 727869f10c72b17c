package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// An utterance one replica owns is another's to leave alone, pending and a
// while after it ended; a frame nobody owns is claimed by exactly one.
func TestUtterancesOwnership(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	a, b := open(t, srv).Utterances(), open(t, srv).Utterances()
	if owned, err := b.OwnedElsewhere(ctx, "u1"); err != nil || owned {
		t.Fatalf("an unknown utterance is owned: %v %v", owned, err)
	}
	if err := a.Own(ctx, "u1", "kitchen", "s1", time.Now().Add(time.Minute), true); err != nil {
		t.Fatal(err)
	}
	if owned, err := b.OwnedElsewhere(ctx, "u1"); err != nil || !owned {
		t.Fatalf("the other replica does not see the owner: %v %v", owned, err)
	}
	a.Ended(ctx, "u1", "kitchen", "s1")
	if owned, _ := b.OwnedElsewhere(ctx, "u1"); !owned {
		t.Fatal("an utterance that just ended is free for the others to deliver its late frames")
	}
	if n := srv.MustDo(t, "ZCARD", DefaultPrefix+"{leases}"); n != "0" {
		t.Fatalf("the ended utterance's lease is still there (%s)", n)
	}

	for round := range 20 {
		key := "frame:" + string(rune('a'+round))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			u := a
			if i%2 == 1 {
				u = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := u.Claim(ctx, key)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("a frame was claimed %d times", n)
		}
	}
}

// An utterance whose replica died is ended by exactly one other replica once
// its lease is past; one that ended normally is not.
func TestUtterancesOrphansEndOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := redistest.Start(t, redistest.Options{})
	dead := open(t, srv).Utterances()
	if err := dead.Own(ctx, "lost", "kitchen", "s1", time.Now().Add(200*time.Millisecond), true); err != nil {
		t.Fatal(err)
	}
	if err := dead.Own(ctx, "fine", "kitchen", "s1", time.Now().Add(200*time.Millisecond), true); err != nil {
		t.Fatal(err)
	}
	dead.Ended(ctx, "fine", "kitchen", "s1")
	if err := dead.Own(ctx, "dry", "kitchen", "s1", time.Now().Add(200*time.Millisecond), false); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var ended []string
	var wg sync.WaitGroup
	for range 3 {
		u := open(t, srv).Utterances()
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.SweepOrphans(ctx, func(id, clientID, sessionID string) {
				mu.Lock()
				defer mu.Unlock()
				if clientID != "kitchen" || sessionID != "s1" {
					t.Errorf("orphan %s of %s/%s", id, clientID, sessionID)
				}
				ended = append(ended, id)
			})
		}()
	}
	gatewaytest.Eventually(t, "the orphan to be ended", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ended) > 0
	})
	gatewaytest.Eventually(t, "the lease set to empty", func() bool {
		return srv.MustDo(t, "ZCARD", DefaultPrefix+"{leases}") == "0"
	})
	cancel()
	wg.Wait()
	if len(ended) != 1 || ended[0] != "lost" {
		t.Fatalf("ended %v, want only the orphan, once", ended)
	}
}
