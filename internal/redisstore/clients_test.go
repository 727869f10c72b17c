package redisstore

import (
	"context"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/keys"

	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/clients/clientstest"
	"github.com/ovosgw/gateway/internal/redistest"
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
