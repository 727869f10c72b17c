package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/redistest"
	"github.com/ovosgw/gateway/internal/store/storetest"
)

// Redis passes the blacklist's and the protected intents' conformance
// suites, with two stores on one redis-server standing for two replicas.
func TestBlacklistConformance(t *testing.T) {
	storetest.RunBlacklist(t, func(t *testing.T) (storetest.Blacklist, storetest.Blacklist) {
		srv := redistest.Start(t, redistest.Options{})
		return open(t, srv), open(t, srv)
	})
}

func TestIntentsConformance(t *testing.T) {
	storetest.RunIntents(t, func(t *testing.T) (storetest.Intents, storetest.Intents) {
		srv := redistest.Start(t, redistest.Options{})
		return open(t, srv), open(t, srv)
	})
}

// A change made through one replica is seen by every other's watch.
func TestWatchAdminSeesOtherReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := open(t, srv), open(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan struct{}, 8)
	started := make(chan struct{})
	go func() {
		close(started)
		b.WatchAdmin(ctx, 50*time.Millisecond, func() { seen <- struct{}{} })
	}()
	<-started
	// WatchAdmin reads the counter before its first tick; changes are made
	// until one is seen, so that a change made before that read is not
	// what the test waits for.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if err := a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica never saw the change")
		}
	}
}
