package transfer

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/redisstore"
	"github.com/ovosgw/gateway/internal/redistest"
	"github.com/ovosgw/gateway/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t *testing.T) *redisstore.Store {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	s, err := redisstore.Open(context.Background(), redisstore.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill gives a data dir two clients (through the registry, so with real
// keys), an admin's blacklist entry, an automatic ban and a protected
// intent, and returns the clients' access keys and the intent's password.
func fill(t *testing.T, st *store.Store) (accessKeys map[string]string, password string) {
	t.Helper()
	ctx := context.Background()
	reg, err := clients.New(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	accessKeys = map[string]string{}
	for _, req := range []api.CreateClientRequest{
		{ID: "kitchen", Name: "Kitchen speaker", Aliases: []string{"cook", "chef"}},
		{ID: "attic"},
	} {
		c, err := reg.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		accessKeys[c.ID] = c.AccessKey.Reveal()
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	for _, e := range []api.BlacklistEntry{
		{CIDR: "10.1.0.0/16", Reason: "noisy lab", Source: api.BlacklistAdmin},
		{CIDR: "192.0.2.7/32", Reason: "5 failed logins", Source: api.BlacklistAuto, ExpiresAt: &until},
	} {
		if err := st.AddBlacklist(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	password = "open sesame"
	hash, err := keys.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Protect(ctx, "door.skill:Unlock", hash); err != nil {
		t.Fatal(err)
	}
	return accessKeys, password
}

// export runs Export and returns its output.
func export(t *testing.T, cs Clients, data Data) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := Export(context.Background(), &b, cs, data, time.Now()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// same fails unless the two stores hold the same records (key versions
// aside: the importing store gives its own).
func same(t *testing.T, wantCS Clients, wantData Data, gotCS Clients, gotData Data) {
	t.Helper()
	ctx := context.Background()
	want, err1 := wantCS.Clients(ctx)
	got, err2 := gotCS.Clients(ctx)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d clients, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.ID != w.ID || g.Name != w.Name || !slices.Equal(g.Aliases, w.Aliases) || g.KeyHash != w.KeyHash || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("client %+v, want %+v", g, w)
		}
	}
	wb, err1 := wantData.Blacklist(ctx)
	gb, err2 := gotData.Blacklist(ctx)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(gb) != len(wb) {
		t.Fatalf("blacklist %+v, want %+v", gb, wb)
	}
	for i := range wb {
		w, g := wb[i], gb[i]
		if g.CIDR != w.CIDR || g.Reason != w.Reason || g.Source != w.Source || !g.CreatedAt.Equal(w.CreatedAt) ||
			(g.ExpiresAt == nil) != (w.ExpiresAt == nil) || (g.ExpiresAt != nil && !g.ExpiresAt.Equal(*w.ExpiresAt)) {
			t.Fatalf("blacklist entry %+v, want %+v", g, w)
		}
	}
	wi, err1 := wantData.ProtectedIntents(ctx)
	gi, err2 := gotData.ProtectedIntents(ctx)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(gi) != len(wi) || gi[0].Pattern != wi[0].Pattern || gi[0].PasswordHash != wi[0].PasswordHash {
		t.Fatalf("protected intents %+v, want %+v", gi, wi)
	}
}

// The data dir's records go to Redis and back: every client keeps its key
// (its hash verifies the key it was given), names and creation time; the
// blacklist and the protected intent keep theirs; no access key and no
// password is ever in the export in plain text. Importing twice changes
// nothing.
func TestRoundTripThroughRedis(t *testing.T) {
	ctx := context.Background()
	from := openStore(t)
	accessKeys, password := fill(t, from)

	out := export(t, from, from)
	for id, k := range accessKeys {
		if strings.Contains(out, k) {
			t.Fatalf("the access key of %s is in the export", id)
		}
	}
	if strings.Contains(out, password) {
		t.Fatal("the intent's password is in the export")
	}
	if got := strings.Count(out, "$argon2id$"); got != 3 {
		t.Fatalf("%d Argon2id hashes in the export, want 3:\n%s", got, out)
	}

	rs, data := openRedis(t), openStore(t)
	n, err := Import(ctx, strings.NewReader(out), rs, data)
	if err != nil {
		t.Fatal(err)
	}
	if n != (Counts{Clients: 2, Blacklist: 2, Intents: 1}) {
		t.Fatalf("imported %+v", n)
	}
	same(t, from, from, rs, data)
	for id, k := range accessKeys {
		c, err := rs.ResolveClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := keys.Verify(c.KeyHash, k); err != nil || !ok {
			t.Fatalf("the key of %s no longer verifies after the import: %v", id, err)
		}
	}

	// Again: the clients are already there.
	n, err = Import(ctx, strings.NewReader(out), rs, data)
	if err != nil || n.Unchanged != 2 || n.Clients != 0 {
		t.Fatalf("second import: %+v, %v", n, err)
	}
	same(t, from, from, rs, data)

	// And back to a fresh data dir.
	back := openStore(t)
	if _, err := Import(ctx, strings.NewReader(export(t, rs, data)), back, back); err != nil {
		t.Fatal(err)
	}
	same(t, from, from, back, back)
}

// What an import refuses, each with its line, while the good records
// around it go in; a file that is no export is refused before anything is
// written.
func TestImportRefusesBadRecords(t *testing.T) {
	ctx := context.Background()
	hash, err := keys.Hash("k")
	if err != nil {
		t.Fatal(err)
	}
	header := `{"type":"gateway-export","format":1,"exported_at":"2026-01-01T00:00:00Z"}`
	good := `{"type":"client","id":"good","name":"Good","aliases":[],"key_hash":"` + hash + `","created_at":"2026-01-01T00:00:00Z"}`
	for _, tc := range []struct {
		name, input, want string
	}{
		{"no header", good + "\n", "line 1: not a gateway export"},
		{"empty", "", "empty input"},
		{"not JSON", "PK\x03\x04 a zip file", "line 1: not a gateway export"},
		{"another format", `{"type":"gateway-export","format":2}` + "\n" + good, "format 2"},
		{"plain key as hash", header + "\n" + `{"type":"client","id":"a","name":"A","aliases":[],"key_hash":"my-secret-key","created_at":"2026-01-01T00:00:00Z"}`, `line 2: client "a": key_hash is not an Argon2id hash`},
		{"key beside the hash", header + "\n" + `{"type":"client","id":"a","name":"A","aliases":[],"key_hash":"` + hash + `","access_key":"k","created_at":"2026-01-01T00:00:00Z"}`, `line 2: json: unknown field "access_key"`},
		{"bad id", header + "\n" + `{"type":"client","id":"A B","name":"A","aliases":[],"key_hash":"` + hash + `","created_at":"2026-01-01T00:00:00Z"}`, `line 2: client "A B": id "A B" is not a slug`},
		{"plain password", header + "\n" + `{"type":"protected_intent","pattern":"x:Y","password_hash":"hunter2","created_at":"2026-01-01T00:00:00Z"}`, `line 2: protected intent "x:Y": password_hash is not an Argon2id hash`},
		{"bad range", header + "\n" + `{"type":"blacklist","cidr":"10.0.0.0/99","reason":"","source":"admin","created_at":"2026-01-01T00:00:00Z","expires_at":null}`, `line 2: blacklist "10.0.0.0/99"`},
		{"configured range", header + "\n" + `{"type":"blacklist","cidr":"10.0.0.0/8","reason":"","source":"config","created_at":"2026-01-01T00:00:00Z","expires_at":null}`, "GATEWAY_IP_BLACKLIST"},
		{"unknown type", header + "\n" + `{"type":"session","id":"x"}`, `line 2: unknown record type "session"`},
		{"broken line", header + "\n" + `{"type":"client",`, "line 2: not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			input := tc.input
			if strings.HasPrefix(input, header) {
				input += "\n" + good + "\n"
			}
			_, err := Import(ctx, strings.NewReader(input), st, st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "my-secret-key") || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the secret: %v", err)
			}
			_, gerr := st.Client(ctx, "good")
			if strings.HasPrefix(tc.input, header) != (gerr == nil) {
				t.Fatalf("the good record after the bad one: %v (imported only after a header)", gerr)
			}
		})
	}
}

// A client whose id is taken by another with a different key is refused,
// not overwritten: an import never changes a key.
func TestImportNeverReplacesAKey(t *testing.T) {
	ctx := context.Background()
	from, to := openStore(t), openStore(t)
	fill(t, from)
	if err := to.CreateClient(ctx, store.Client{ID: "kitchen", KeyHash: "other"}); err != nil {
		t.Fatal(err)
	}
	n, err := Import(ctx, strings.NewReader(export(t, from, from)), to, to)
	if err == nil || !strings.Contains(err.Error(), `client "kitchen"`) || n.Clients != 1 {
		t.Fatalf("import over a taken id: %+v, %v", n, err)
	}
	if c, _ := to.Client(ctx, "kitchen"); c.KeyHash != "other" {
		t.Fatal("the import replaced a key")
	}
}
