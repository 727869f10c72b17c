package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/tokens"
)

// The store is what the token service records logouts in.
var _ tokens.Revocations = (*Store)(nil)

// open opens the store at path and closes it when the test ends.
func open(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.db")
	return open(t, path), path
}

// wantCode fails unless err is an *api.Error with code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want api.Error %s", err, code)
	}
}

func TestOpenPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "gateway.db")
	s := open(t, path)
	if err := s.CreateClient(context.Background(), Client{ID: "a", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("database file mode = %o, want 600", got)
	}
	for _, extra := range []string{"-wal", "-shm"} {
		if fi, err := os.Stat(path + extra); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode = %o, want no group/other access", extra, fi.Mode().Perm())
		}
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("created directory mode = %o, want 700", got)
	}
}

func TestOpenTightensLooseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}
}

func TestOpenWAL(t *testing.T) {
	s, _ := newStore(t)
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk int
	if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := newStore(t)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(context.Background(), path); err == nil {
		s.Close()
		t.Fatal("Open accepted a schema newer than the program")
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	if err := s.CreateClient(ctx, Client{ID: "kitchen", Name: "Kitchen", Aliases: []string{"k"}, KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	if err := s.Revoke(ctx, "jti-1", until); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "jti-old", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, path)
	c, err := s2.ResolveClient(ctx, "k")
	if err != nil || c.ID != "kitchen" || c.Name != "Kitchen" {
		t.Fatalf("after reopen: %+v, %v", c, err)
	}
	if !s2.Revoked("jti-1") {
		t.Error("revocation lost on reopen")
	}
	if s2.Revoked("jti-old") {
		t.Error("expired revocation still reported")
	}
	if s2.Revoked("jti-unknown") {
		t.Error("unknown jti reported revoked")
	}
}

// TestSecondProcess opens the file twice, as the server and the command line
// do, and checks that each sees what the other commits.
func TestSecondProcess(t *testing.T) {
	ctx := context.Background()
	server, path := newStore(t)
	cli := open(t, path)

	if err := server.CreateClient(ctx, Client{ID: "phone", KeyHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	// Let the server look the client up once so it is cached, then change it
	// from the other connection.
	phone, err := server.Client(ctx, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.CreateClient(ctx, Client{ID: "tv", Aliases: []string{"telly"}, KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.SetKey(ctx, "phone", "h2"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Revoke(ctx, "jti-cli", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// After one refresh interval, the next lookup must check and reload.
	runAhead(server, RefreshInterval)
	c, err := server.ResolveClient(ctx, "telly")
	if err != nil || c.ID != "tv" {
		t.Fatalf("server does not see the client made by the other process: %+v, %v", c, err)
	}
	p, err := server.Client(ctx, "phone")
	if err != nil || p.KeyVersion <= phone.KeyVersion || p.KeyHash != "h2" {
		t.Fatalf("server does not see the new key: %+v, %v", p, err)
	}
	if !server.Revoked("jti-cli") {
		t.Error("server does not see the other process's revocation")
	}

	// A write through the server must not count as a foreign change.
	before := server.changes.Load()
	if err := server.DeleteClient(ctx, "phone"); err != nil {
		t.Fatal(err)
	}
	server.mu.Lock()
	err = server.reloadLocked(ctx, false)
	server.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := server.changes.Load(); got != before {
		t.Errorf("own write counted as %d foreign changes", got-before)
	}
	// And the other side sees the deletion.
	runAhead(cli, RefreshInterval)
	if _, err := cli.Client(ctx, "phone"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("other process still sees the deleted client: %v", err)
	}
}

// runAhead sets s's clock d ahead of the real one, as if d had passed,
// instead of sleeping. Call it while no other goroutine uses s.
func runAhead(s *Store, d time.Duration) {
	s.now = func() time.Time { return time.Now().Add(d) }
}

// TestSecondProcessConflict checks that the shared namespace holds across
// connections, even when the writer's cache is stale.
func TestSecondProcessConflict(t *testing.T) {
	ctx := context.Background()
	a, path := newStore(t)
	b := open(t, path)
	if err := a.CreateClient(ctx, Client{ID: "one", Aliases: []string{"shared"}, KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.CreateClient(ctx, Client{ID: "shared", KeyHash: "h"}), api.ECONFLICT)
	wantCode(t, b.CreateClient(ctx, Client{ID: "two", Aliases: []string{"one"}, KeyHash: "h"}), api.ECONFLICT)
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, path := newStore(t)
	cli := open(t, path)

	fired := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		server.Watch(ctx, 10*time.Millisecond, func() { fired <- struct{}{} })
	}()

	if err := cli.CreateClient(ctx, Client{ID: "doomed", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not report the other process's change")
	}
	// When fn runs, the cache already shows the change.
	if _, err := server.Client(ctx, "doomed"); err != nil {
		t.Fatalf("cache not reloaded before fn: %v", err)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestWatchStopsOnClose(t *testing.T) {
	s, _ := newStore(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(context.Background(), time.Hour, func() {})
	}()
	s.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
}

func BenchmarkClient(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	if err := s.CreateClient(ctx, Client{ID: "bench", Aliases: []string{"b1", "b2"}, KeyHash: "h"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Client(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRevoked(b *testing.B) {
	s, _ := newStore(b)
	if err := s.Revoke(context.Background(), "jti", time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Revoked("jti") {
			b.Fatal("not revoked")
		}
	}
}
