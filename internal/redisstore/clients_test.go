package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/keys"

	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/clients/clientstest"
	"github.com/ovosgw/gateway/internal/redistest"
	"github.com/ovosgw/gateway/internal/store"
)

// open connects a store to srv, closed when t ends.
func open(t *testing.T, srv *redistest.Server) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Redis passes the client registry's conformance suite, with two stores on
// one real redis-server standing for two replicas.
func TestClientStoreConformance(t *testing.T) {
	clientstest.Run(t, func(t *testing.T) (clients.Store, clients.Store) {
		srv := redistest.Start(t, redistest.Options{})
		return open(t, srv), open(t, srv)
	})
}

// dump is everything the server holds, key by key, as text.
func dump(t *testing.T, srv *redistest.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys := srv.MustDo(t, "KEYS", "*")
	if keys == "" {
		return out
	}
	for _, k := range strings.Split(keys, "\n") {
		switch typ := srv.MustDo(t, "TYPE", k); typ {
		case "hash":
			out[k] = srv.MustDo(t, "HGETALL", k)
		case "set":
			out[k] = srv.MustDo(t, "SMEMBERS", k)
		case "string":
			out[k] = srv.MustDo(t, "GET", k)
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
	}
	return out
}

// A client created through the registry on Redis is kept with the Argon2id
// hash of its key, never the key; every key is under the prefix, in the
// registry's one hash slot; the key still logs in (its hash verifies).
func TestRedisHoldsOnlyKeyHashes(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	reg, err := clients.New(open(t, srv), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, err := reg.Create(ctx, api.CreateClientRequest{ID: "kitchen", Name: "Kitchen", Aliases: []string{"cook"}})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := reg.RotateKey(ctx, "kitchen")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{created.AccessKey.Reveal(), rotated.AccessKey.Reveal()}
	held := dump(t, srv)
	if len(held) == 0 {
		t.Fatal("nothing in Redis")
	}
	var hashes int
	for k, v := range held {
		if !strings.HasPrefix(k, DefaultPrefix+"{clients}:") {
			t.Errorf("key %q is not under %s{clients}:", k, DefaultPrefix)
		}
		for _, secret := range secrets {
			if strings.Contains(k, secret) || strings.Contains(v, secret) {
				t.Fatalf("an access key is in Redis in plain text, at %s", k)
			}
		}
		hashes += strings.Count(v, "$argon2id$")
	}
	if hashes != 1 {
		t.Fatalf("%d Argon2id hashes in Redis, want the current key's one", hashes)
	}
	c, err := open(t, srv).ResolveClient(ctx, "cook")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := keys.Verify(c.KeyHash, rotated.AccessKey.Reveal()); err != nil || !ok {
		t.Fatalf("the rotated key does not verify against the stored hash: %v %v", ok, err)
	}
}

// Watch on one replica hears of every kind of change made through another.
func TestWatchHearsChangesFromAnotherReplica(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := redistest.Start(t, redistest.Options{})
	a, b := open(t, srv), open(t, srv)
	calls := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(ctx, 5*time.Millisecond, func() { calls <- struct{}{} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	heard := func(what string) {
		t.Helper()
		select {
		case <-calls:
		case <-time.After(gatewaytest.WaitLimit):
			t.Fatalf("Watch did not hear of %s", what)
		}
		for len(calls) > 0 { // one change may be heard once or not at all twice
			<-calls
		}
	}
	// Watch takes its first reading in its own goroutine: a change made
	// before it is not news to it. Changes are made until one is heard, so
	// that the changes the test checks come after that reading.
	for i := 0; ; i++ {
		if err := a.CreateClient(ctx, store.Client{ID: fmt.Sprintf("warm-up-%d", i), KeyHash: "h"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-calls:
		case <-time.After(100 * time.Millisecond):
			if i < 100 {
				continue
			}
			t.Fatal("Watch hears no change at all")
		}
		break
	}
	for len(calls) > 0 {
		<-calls
	}
	if err := a.CreateClient(ctx, store.Client{ID: "porch", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	heard("a creation")
	if _, err := a.SetKey(ctx, "porch", "h2"); err != nil {
		t.Fatal(err)
	}
	heard("a new key")
	if _, err := a.SetNames(ctx, "porch", "Porch", []string{"front"}); err != nil {
		t.Fatal(err)
	}
	heard("new names")
	if err := a.DeleteClient(ctx, "porch"); err != nil {
		t.Fatal(err)
	}
	heard("a deletion")
}
