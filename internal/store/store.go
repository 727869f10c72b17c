// Package store keeps the gateway's state in one SQLite file: clients and
// their key hashes, the address blacklist, protected intents and revoked
// tokens. The server and the command line open the same file at the same
// time, from two processes, so every write is one transaction and the server
// notices what the other process changed (PRAGMA data_version).
//
// Client lookups and revocation checks run on every request; they are served
// from memory, refreshed from the file at most every RefreshInterval.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// RefreshInterval is how stale the in-memory clients and revocations may get
// when another process writes the file: a lookup checks for changes at most
// this often.
const RefreshInterval = 250 * time.Millisecond

// busyTimeout is how long a statement waits for the other process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// revocationPruneEvery is how often expired revocations are forgotten.
const revocationPruneEvery = time.Minute

// Store is the gateway's SQLite database with in-memory caches of the hot
// data. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time

	// mu serialises writes and reloads, and guards dataVersion and
	// lastPrune.
	mu          sync.Mutex
	dataVersion int64
	lastPrune   time.Time

	clients   atomic.Pointer[clientCache]
	lastCheck atomic.Int64  // unix nanoseconds of the last data_version check
	changes   atomic.Uint64 // changes by other connections seen so far

	revMu   sync.RWMutex
	revoked map[string]time.Time // jti -> until

	closeOnce sync.Once
	closed    chan struct{}
}

// Open opens (creating it if needed) the database at path, readable only by
// its owner (0600, in a 0700 directory when the directory is created), and
// brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: database path: %w", err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "1")
	// Writers take the write lock at BEGIN, so a transaction never fails
	// half-way on upgrading a read lock while the other process writes.
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	// One connection: SQLite has one writer anyway, reads are served from
	// memory, and PRAGMA data_version is per connection: on a single
	// connection it changes only when another process commits.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{
		db:      db,
		now:     time.Now,
		revoked: map[string]time.Time{},
		closed:  make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.mu.Lock()
	err = s.reloadLocked(ctx, true)
	s.mu.Unlock()
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// prepareFile creates the directory (0700) and the file (0600) before SQLite
// does, so that SQLite's own files (-wal, -shm), which copy the database
// file's mode, are private too.
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: create data directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Best effort: a file made by hand with looser permissions is
		// tightened; one we do not own stays as its owner made it.
		_ = f.Chmod(0o600)
	}
	return nil
}

// Close closes the database. Watch loops return; lookups fail afterwards.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// migrations are the schema's versions, in order: migrations()[i] brings
// PRAGMA user_version from i to i+1. Never edit a released step; add one.
func migrations() []string {
	return []string{
		`CREATE TABLE clients (
			id          TEXT PRIMARY KEY,
			name        TEXT NOT NULL,
			key_hash    TEXT NOT NULL,
			key_version INTEGER NOT NULL,
			created_at  INTEGER NOT NULL -- unix milliseconds
		) STRICT;
		-- Every id and every alias, so that they share one namespace and the
		-- primary key enforces it across processes. position 0 is the id.
		CREATE TABLE client_names (
			name      TEXT PRIMARY KEY,
			client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
			position  INTEGER NOT NULL
		) STRICT;
		CREATE INDEX client_names_client ON client_names(client_id);
		CREATE TABLE blacklist (
			cidr       TEXT PRIMARY KEY,
			reason     TEXT NOT NULL,
			source     TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			expires_at INTEGER -- NULL: never
		) STRICT;
		CREATE TABLE protected_intents (
			pattern       TEXT PRIMARY KEY,
			password_hash TEXT NOT NULL,
			created_at    INTEGER NOT NULL
		) STRICT;
		CREATE TABLE revoked_tokens (
			jti   TEXT PRIMARY KEY,
			until INTEGER NOT NULL
		) STRICT;`,
		// One counter for every key version ever given, to any client: a
		// token names its key version, so a version must never come back,
		// not even for a new client with a deleted one's id. It starts above
		// every version given so far and above the versions the per-client
		// counting could have given to clients deleted before this step
		// (their tokens live at most a token lifetime; a version is far
		// below the current time in milliseconds).
		`CREATE TABLE key_versions (
			last INTEGER NOT NULL
		) STRICT;
		INSERT INTO key_versions (last) SELECT max(
			coalesce((SELECT max(key_version) FROM clients), 0),
			CAST(strftime('%s', 'now') AS INTEGER) * 1000);`,
	}
}

// migrate applies the missing migrations in one write transaction, so two
// processes opening a new file at once do not both apply them.
func (s *Store) migrate(ctx context.Context) error {
	steps := migrations()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if v > len(steps) {
		return fmt.Errorf("store: database schema version %d is newer than this program's (%d): upgrade the gateway", v, len(steps))
	}
	if v == len(steps) {
		return nil
	}
	for i := v; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			return fmt.Errorf("store: migrate to schema version %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(steps))); err != nil {
		return fmt.Errorf("store: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// queryer is what the loaders need from a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readDataVersion(ctx context.Context, q queryer) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read data_version: %w", err)
	}
	return v, nil
}

// maybeRefresh reloads the caches if RefreshInterval has passed since the
// last check and another connection committed since. When another goroutine
// is already writing or refreshing, it serves what is in memory rather than
// queue behind it.
func (s *Store) maybeRefresh(ctx context.Context) error {
	if s.now().UnixNano()-s.lastCheck.Load() < int64(RefreshInterval) {
		return nil
	}
	if !s.mu.TryLock() {
		return nil
	}
	defer s.mu.Unlock()
	return s.reloadLocked(ctx, false)
}

// refreshNow checks data_version at once (waiting for a writer in progress)
// and reloads when another connection committed since.
func (s *Store) refreshNow(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(ctx, false)
}

// reloadLocked checks data_version and, when it moved (or force), reloads
// clients and revocations in one read transaction. s.mu must be held.
func (s *Store) reloadLocked(ctx context.Context, force bool) error {
	select {
	case <-s.closed:
		return errors.New("store: closed")
	default:
	}
	v, err := readDataVersion(ctx, s.db)
	if err != nil {
		return err
	}
	s.lastCheck.Store(s.now().UnixNano())
	if v == s.dataVersion && !force {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: reload: %w", err)
	}
	defer tx.Rollback()
	cache, err := loadClients(ctx, tx)
	if err != nil {
		return err
	}
	rev, err := s.loadRevocations(ctx, tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: reload: %w", err)
	}
	s.clients.Store(cache)
	s.revMu.Lock()
	s.revoked = rev
	s.revMu.Unlock()
	if !force {
		s.changes.Add(1)
	}
	s.dataVersion = v
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
// With reloadClients the client cache is rebuilt from inside the
// transaction, so it shows exactly what was committed. A change by another
// process found on the way is counted and loaded too.
func (s *Store) write(ctx context.Context, reloadClients bool, fn func(tx *sql.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return errors.New("store: closed")
	default:
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	v, err := readDataVersion(ctx, tx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	external := v != s.dataVersion
	var cache *clientCache
	if reloadClients || external {
		if cache, err = loadClients(ctx, tx); err != nil {
			return err
		}
	}
	var rev map[string]time.Time
	if external {
		if rev, err = s.loadRevocations(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if cache != nil {
		s.clients.Store(cache)
	}
	if rev != nil {
		s.revMu.Lock()
		s.revoked = rev
		s.revMu.Unlock()
	}
	if external {
		s.dataVersion = v
		s.changes.Add(1)
	}
	return nil
}

// Watch calls fn each time it sees that another process (the command line,
// another gateway) changed the database, checking every interval (at most
// RefreshInterval when every is not positive). fn runs on Watch's goroutine
// and should re-read what it cares about: it says that something changed,
// not what. Watch returns when ctx ends or the Store is closed; run it in its
// own goroutine.
func (s *Store) Watch(ctx context.Context, every time.Duration, fn func()) {
	if every <= 0 {
		every = RefreshInterval
	}
	seen := s.changes.Load()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-t.C:
		}
		s.mu.Lock()
		// An error (the other process holding a lock past busyTimeout, a
		// closed store) is retried on the next tick.
		_ = s.reloadLocked(ctx, false)
		s.mu.Unlock()
		if c := s.changes.Load(); c != seen {
			seen = c
			fn()
		}
	}
}

func unixMilli(t time.Time) int64 { return t.UnixMilli() }

func fromMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
