package clients

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/store"
)

// streams records what the registry ends.
type streams struct {
	mu     sync.Mutex
	forgot []string
	stale  map[string]int64
	open   []string
}

func (s *streams) Kick(string, string, error) {}

func (s *streams) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgot = append(s.forgot, id)
}

func (s *streams) KickStale(id string, kv int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale[id] = kv
}

func (s *streams) Watched() []string {
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
	ss := &streams{stale: map[string]int64{}, open: []string{"hall", "den"}}
	reg, err := New(server, ss, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(cli, nil, nil, nil)
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := server.Client(ctx, "den"); err == nil && c.KeyVersion == den.KeyVersion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's store never saw the other's changes")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
