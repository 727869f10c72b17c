package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/redistest"
	"github.com/ovosgw/gateway/internal/store"
)

// A URL that is no Redis URL, or a Redis that does not answer, fails Open
// with an error that never shows the URL's password.
func TestOpenRefusesWithoutShowingThePassword(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	stopped := strings.Replace(srv.URL(), "redis://", "redis://user:s3cret-pass@", 1)
	srv.Stop()
	for _, tc := range []struct {
		name, url string
		bad       bool
	}{
		{"empty", "", true},
		{"other scheme", "http://user:s3cret-pass@127.0.0.1:6379/0", true},
		{"bad database", "redis://user:s3cret-pass@127.0.0.1:6379/zero", true},
		{"nobody there", stopped, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), Config{URL: tc.url})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "s3cret-pass") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if errors.Is(err, ErrBadURL) != tc.bad {
				t.Fatalf("error %v, bad URL %v", err, tc.bad)
			}
		})
	}
}

// With appendonly yes, the clients survive a restart of Redis, and a store
// that was connected before fails while Redis is away and works again
// afterwards without being reopened.
func TestClientsSurviveARedisRestart(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s := open(t, srv)
	if err := s.CreateClient(ctx, store.Client{ID: "porch", Aliases: []string{"front"}, KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	before, err := s.Client(ctx, "porch")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// While Redis is away, a read fails within the store's bound (rueidis
	// alone would retry until the caller gives up) as unavailable (503 with
	// Retry-After), never a "not found".
	if _, err := s.ResolveClient(ctx, "front"); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("ResolveClient without Redis: %v", err)
	}
	srv.Restart(t)
	gatewaytest.Eventually(t, "the store to read the client again after the restart", func() bool {
		c, err := s.ResolveClient(ctx, "front")
		return err == nil && c.KeyVersion == before.KeyVersion && c.KeyHash == "h"
	})
	// The counter of key versions survived too: no version is given twice.
	if err := s.CreateClient(ctx, store.Client{ID: "attic", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Client(ctx, "attic"); err != nil || c.KeyVersion <= before.KeyVersion {
		t.Fatalf("after the restart: %+v, %v", c, err)
	}
}

// A record damaged in Redis (by hand, by another program) is an error for
// that client, not a panic, and not another client's record.
func TestDamagedRecordIsAnError(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv)
	if err := s.CreateClient(ctx, store.Client{ID: "porch", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	srv.MustDo(t, "HSET", DefaultPrefix+"{clients}:client:porch", "aliases", "not json")
	_, err := open(t, srv).Client(ctx, "porch")
	if err == nil || api.ErrorCode(err) == api.ENOTFOUND || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Client of a damaged record: %v", err)
	}
}
