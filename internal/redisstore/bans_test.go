package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/bans/banstest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// Redis passes the failure counters' conformance suite: one redis-server,
// a prefix of its own for each counter.
func TestCounterConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := 0
	banstest.Run(t, func(t *testing.T) bans.Counter {
		n++
		s, err := Open(context.Background(), Config{URL: srv.URL(), Prefix: fmt.Sprintf("t%d:", n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Counter()
	})
}

// Redis out of reach: a check is refused with a 503, never let through
// uncounted.
func TestCounterUnreachable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv)
	srv.Stop()
	p := bans.Policy{After: 3, Window: time.Minute, For: time.Hour, MaxFor: time.Hour, Remember: time.Hour}
	ok, err := s.Counter().Reserve(context.Background(), "192.0.2.1/32", time.Now(), p)
	if ok || api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("reserve with redis stopped: %v %v, want refused with %s", ok, err, api.EUNAVAILABLE)
	}
	if _, err := s.Counter().Fail(context.Background(), "192.0.2.1/32", time.Now(), p); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("fail with redis stopped: %v", err)
	}
}
