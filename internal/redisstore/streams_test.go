package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/ratelimit/ratelimittest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// renewed is a replica's stream counter with its lease taken.
func renewed(t *testing.T, s *Store, lease time.Duration) *Streams {
	t.Helper()
	st := s.Streams(lease)
	if err := st.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Redis passes the stream caps' conformance suite, two replicas on one
// redis-server.
func TestStreamCapsConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := 0
	ratelimittest.RunCaps(t, func(t *testing.T, max int) (ratelimittest.Caps, ratelimittest.Caps) {
		n++
		name := fmt.Sprintf("t%d", n)
		return renewed(t, open(t, srv), time.Minute).Caps(name, max), renewed(t, open(t, srv), time.Minute).Caps(name, max)
	})
}

// A replica that stops renewing its lease (killed) stops counting once the
// lease has ended.
func TestStreamCapsForgetADeadReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	dead := renewed(t, open(t, srv), 300*time.Millisecond).Caps("s", 2)
	live := renewed(t, open(t, srv), time.Minute).Caps("s", 2)
	for range 2 {
		if _, ok := dead.Acquire("client:a"); !ok {
			t.Fatal("refused")
		}
	}
	if _, ok := live.Acquire("client:a"); ok {
		t.Fatal("a third allowed while the other replica's lease holds")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := live.Acquire("client:a"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead replica's streams still count")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis out of reach: a stream is let through uncounted (it needs Redis
// for its events and is refused there), and a release Redis missed is
// written with the next renewal.
func TestStreamCapsRedisAway(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s := open(t, srv)
	st := renewed(t, s, time.Minute)
	c := st.Caps("s", 1)
	release, ok := c.Acquire("k")
	if !ok {
		t.Fatal("refused")
	}
	srv.Stop()
	if _, ok := c.Acquire("k"); !ok {
		t.Fatal("refused with redis away")
	}
	release()
	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for st.Renew(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("renew never worked again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := c.Acquire("k"); !ok {
		t.Fatal("the release made while redis was away was lost")
	}
}
