package clients

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
)

// forgotten records the clients the registry tells its bridge to forget.
type forgotten struct {
	mu  sync.Mutex
	ids []string
}

func (f *forgotten) ForgetClient(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
}

func (f *forgotten) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

// fixture is a Registry over a real SQLite store and a real stream hub.
type fixture struct {
	r      *Registry
	st     *store.Store
	hub    *hub.Server
	bridge *forgotten
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	b := &forgotten{}
	r, err := New(st, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.OnForget(b.ForgetClient)
	return &fixture{r: r, st: st, hub: h, bridge: b}
}

func (f *fixture) create(t *testing.T, id string, aliases ...string) api.ClientKeyResponse {
	t.Helper()
	k, err := f.r.Create(context.Background(), api.CreateClientRequest{ID: id, Aliases: aliases})
	if err != nil {
		t.Fatalf("Create(%s): %v", id, err)
	}
	return k
}

// verifies reports whether key is the access key the store holds for id.
func (f *fixture) verifies(t *testing.T, id, key string) bool {
	t.Helper()
	c, err := f.st.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := keys.Verify(c.KeyHash, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func ended(s *hub.Subscription) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func TestNewRequiresStore(t *testing.T) {
	if r, err := New(nil, nil, nil); err == nil || r != nil {
		t.Fatalf("New without a store = %v, %v", r, err)
	}
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	f.create(t, "hall", "entrance")
	tests := []struct {
		name        string
		req         api.CreateClientRequest
		code        string
		wantName    string
		wantAliases []string
	}{
		{name: "id only", req: api.CreateClientRequest{ID: "kitchen"}, wantName: "kitchen", wantAliases: []string{}},
		{name: "name and aliases", req: api.CreateClientRequest{ID: "bedroom", Name: "Bedroom", Aliases: []string{"chambre"}}, wantName: "Bedroom", wantAliases: []string{"chambre"}},
		{name: "empty id", req: api.CreateClientRequest{ID: ""}, code: api.EINVALID},
		{name: "upper-case id", req: api.CreateClientRequest{ID: "Kitchen"}, code: api.EINVALID},
		{name: "id with a space", req: api.CreateClientRequest{ID: "the kitchen"}, code: api.EINVALID},
		{name: "id too long", req: api.CreateClientRequest{ID: strings.Repeat("k", 64)}, code: api.EINVALID},
		{name: "id taken", req: api.CreateClientRequest{ID: "hall"}, code: api.ECONFLICT},
		{name: "id is another's alias", req: api.CreateClientRequest{ID: "entrance"}, code: api.ECONFLICT},
		{name: "alias is another's id", req: api.CreateClientRequest{ID: "garage", Aliases: []string{"hall"}}, code: api.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := f.r.Create(context.Background(), tt.req)
			if tt.code != "" {
				if api.ErrorCode(err) != tt.code {
					t.Fatalf("Create = %v, want %s", err, tt.code)
				}
				if k.AccessKey != "" {
					t.Fatal("a refused creation returned a key")
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if k.ID != tt.req.ID || k.Name != tt.wantName || !slices.Equal(k.Aliases, tt.wantAliases) || k.Aliases == nil || k.CreatedAt.IsZero() {
				t.Fatalf("created %+v", k)
			}
			key := k.AccessKey.Reveal()
			if !strings.HasPrefix(key, keys.AccessKeyPrefix) {
				t.Fatalf("access key without the %s prefix", keys.AccessKeyPrefix)
			}
			if !f.verifies(t, k.ID, key) {
				t.Fatal("the store does not hold the hash of the key returned")
			}
			if c, _ := f.st.Client(context.Background(), k.ID); strings.Contains(c.KeyHash, key) {
				t.Fatal("the store holds the key itself")
			}
		})
	}
	// Every client gets its own key.
	a, b := f.create(t, "one"), f.create(t, "two")
	if a.AccessKey == b.AccessKey {
		t.Fatal("two clients got the same key")
	}
}

func TestProfileResolveList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "kitchen", "cuisine")
	f.create(t, "hall")

	p, err := f.r.Profile(ctx, "kitchen")
	if err != nil || p.ID != "kitchen" || p.Name != "kitchen" || !slices.Equal(p.Aliases, []string{"cuisine"}) {
		t.Fatalf("Profile = %+v, %v", p, err)
	}
	if _, err := f.r.Profile(ctx, "cuisine"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("Profile by alias = %v, want ENOTFOUND (profiles are by id)", err)
	}
	for _, tt := range []struct{ name, want, code string }{
		{"kitchen", "kitchen", ""},
		{"cuisine", "kitchen", ""},
		{"hall", "hall", ""},
		{"garage", "", api.ENOTFOUND},
	} {
		got, err := f.r.Resolve(ctx, tt.name)
		if got != tt.want || api.ErrorCode(err) != tt.code {
			t.Errorf("Resolve(%s) = %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.code)
		}
	}
	list, err := f.r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
		if c.Aliases == nil || c.CreatedAt.IsZero() {
			t.Errorf("listed %+v", c)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"hall", "kitchen"}) {
		t.Fatalf("List ids %q", ids)
	}
}

func TestSetNamesAndRename(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "kitchen", "cuisine")
	f.create(t, "hall")

	p, err := f.r.SetNames(ctx, "kitchen", api.NamesRequest{Name: "Kitchen", Aliases: []string{"kueche"}})
	if err != nil || p.Name != "Kitchen" || !slices.Equal(p.Aliases, []string{"kueche"}) {
		t.Fatalf("SetNames = %+v, %v", p, err)
	}
	if _, err := f.r.Resolve(ctx, "cuisine"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("the replaced alias still resolves: %v", err)
	}
	if id, err := f.r.Resolve(ctx, "kueche"); err != nil || id != "kitchen" {
		t.Fatalf("the new alias resolves to %q, %v", id, err)
	}

	a, err := f.r.Rename(ctx, "kitchen", api.NamesRequest{})
	if err != nil || a.Name != "kitchen" || a.Aliases == nil || len(a.Aliases) != 0 || a.CreatedAt.IsZero() {
		t.Fatalf("Rename to nothing = %+v, %v; want the id as name, no aliases", a, err)
	}
	if _, err := f.r.SetNames(ctx, "kitchen", api.NamesRequest{Aliases: []string{"hall"}}); api.ErrorCode(err) != api.ECONFLICT {
		t.Fatalf("taking another client's id as alias = %v, want ECONFLICT", err)
	}
	if _, err := f.r.SetNames(ctx, "garage", api.NamesRequest{Name: "Garage"}); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("naming an unknown client = %v, want ENOTFOUND", err)
	}
}

func TestRotateKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.create(t, "kitchen")
	f.create(t, "hall")
	before, _ := f.st.Client(ctx, "kitchen")
	mine := f.hub.SubscribeKey("kitchen", "s1", "", before.KeyVersion)
	defer mine.Close()
	other := f.hub.Subscribe("hall", "s2", "")
	defer other.Close()

	k, err := f.r.RotateKey(ctx, "kitchen")
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "kitchen" || k.AccessKey == old.AccessKey {
		t.Fatalf("rotated %s: the key is unchanged %v", k.ID, k.AccessKey == old.AccessKey)
	}
	if !f.verifies(t, "kitchen", k.AccessKey.Reveal()) || f.verifies(t, "kitchen", old.AccessKey.Reveal()) {
		t.Fatal("after rotation the store does not take the new key only")
	}
	after, _ := f.st.Client(ctx, "kitchen")
	if after.KeyVersion == before.KeyVersion {
		t.Fatal("rotation left the key version as it was")
	}
	if !ended(mine) || !errors.Is(mine.Err(), hub.ErrKicked) {
		t.Fatalf("the client's stream: ended %v, err %v; want ErrKicked", ended(mine), mine.Err())
	}
	if ended(other) {
		t.Fatal("another client's stream ended")
	}
	if _, err := f.r.RotateKey(ctx, "garage"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("rotating an unknown client's key = %v, want ENOTFOUND", err)
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "kitchen", "cuisine")
	f.create(t, "hall")
	mine := f.hub.Subscribe("kitchen", "s1", "")
	defer mine.Close()
	other := f.hub.Subscribe("hall", "s2", "")
	defer other.Close()

	if err := f.r.Delete(ctx, "kitchen"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Resolve(ctx, "cuisine"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("a deleted client's alias resolves: %v", err)
	}
	if !ended(mine) || !errors.Is(mine.Err(), hub.ErrClientDeleted) || ended(other) {
		t.Fatalf("streams: the client's ended %v (%v), another's ended %v", ended(mine), mine.Err(), ended(other))
	}
	if got := f.bridge.list(); !slices.Equal(got, []string{"kitchen"}) {
		t.Fatalf("the bridge forgot %q, want [kitchen]", got)
	}
	if err := f.r.Delete(ctx, "kitchen"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("deleting twice = %v, want ENOTFOUND", err)
	}
	if got := f.bridge.list(); len(got) != 1 {
		t.Fatalf("a failed deletion told the bridge to forget: %q", got)
	}
}

// TestSync plays the command line changing the store behind the server's
// back: the registry's Sync must end what no longer holds.
func TestSync(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "kitchen")
	f.create(t, "hall")
	f.create(t, "garage")
	if err := f.r.Sync(ctx); err != nil { // learns the clients as they are
		t.Fatal(err)
	}
	kitchen, _ := f.st.Client(ctx, "kitchen")
	stale := f.hub.SubscribeKey("kitchen", "s1", "", kitchen.KeyVersion)
	defer stale.Close()
	hall, _ := f.st.Client(ctx, "hall")
	current := f.hub.SubscribeKey("hall", "s2", "", hall.KeyVersion)
	defer current.Close()
	gone := f.hub.Subscribe("garage", "s3", "")
	defer gone.Close()

	hash, err := keys.Hash("gwk_set-by-another-process")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetKey(ctx, "kitchen", hash); err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteClient(ctx, "garage"); err != nil {
		t.Fatal(err)
	}
	if ended(stale) || ended(gone) {
		t.Fatal("streams ended before Sync")
	}
	if err := f.r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !ended(stale) || !errors.Is(stale.Err(), hub.ErrKicked) {
		t.Fatalf("a stream of a re-keyed client: ended %v, err %v", ended(stale), stale.Err())
	}
	if !ended(gone) || !errors.Is(gone.Err(), hub.ErrClientDeleted) {
		t.Fatalf("a stream of a deleted client: ended %v, err %v", ended(gone), gone.Err())
	}
	if ended(current) {
		t.Fatal("a stream with the current key ended")
	}
	// The deleted client is forgotten once by each path that saw it gone
	// (known before, watched now), and no other client is.
	for _, id := range f.bridge.list() {
		if id != "garage" {
			t.Fatalf("the bridge was told to forget %q", id)
		}
	}
	if len(f.bridge.list()) == 0 {
		t.Fatal("the bridge was not told to forget the deleted client")
	}
}

// streams records what the registry ends.
type recordingStreams struct {
	mu     sync.Mutex
	forgot []string
	stale  map[string]int64
	open   []string
}

func (s *recordingStreams) Kick(string, string, error) {}

func (s *recordingStreams) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgot = append(s.forgot, id)
}

func (s *recordingStreams) KickStale(id string, kv int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale[id] = kv
}

func (s *recordingStreams) Watched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.open)
}

// TestSyncSeesWhatAnotherProcessDid: between two Syncs, the command line (a
// second store on the same file) deletes a client and creates it again
// under the same id, and re-keys another twice: the first is forgotten (its
// replay window and streams must not pass to the new client), the other's
// streams are checked against its newest key.
func TestSyncSeesWhatAnotherProcessDid(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	open := func() *store.Store {
		st, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	server, cli := open(), open()
	ss := &recordingStreams{stale: map[string]int64{}, open: []string{"hall", "den"}}
	reg, err := New(server, ss, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(cli, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"hall", "den"} {
		if _, err := other.Create(ctx, api.CreateClientRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"hall", "den"} {
		// An unknown name makes the server's store look at the file.
		if _, err := server.ResolveClient(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ss.forgot) != 0 {
		t.Fatalf("the first Sync forgot %v", ss.forgot)
	}
	if err := other.Delete(ctx, "hall"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, api.CreateClientRequest{ID: "hall"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err = other.RotateKey(ctx, "den"); err != nil {
			t.Fatal(err)
		}
	}
	den, err := cli.Client(ctx, "den")
	if err != nil {
		t.Fatal(err)
	}
	// The server's store sees the other's changes within its refresh
	// interval (Sync runs from store.Watch, once it has seen them).
	gatewaytest.Eventually(t, "the server's store to see the other's changes", func() bool {
		c, err := server.Client(ctx, "den")
		return err == nil && c.KeyVersion == den.KeyVersion
	})
	ss.open = []string{"den"} // Forget dropped hall's topic
	if err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ss.forgot, "hall") || slices.Contains(ss.forgot, "den") {
		t.Errorf("forgot %v, want hall only", ss.forgot)
	}
	if ss.stale["den"] != den.KeyVersion {
		t.Errorf("den's streams checked against key version %d, want %d", ss.stale["den"], den.KeyVersion)
	}
}
