package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Client is a registered device or person. KeyHash is the Argon2id hash of
// its access key; KeyVersion grows each time the key is replaced, and tokens
// carry it, so that rotating a key ends the sessions made with the old one.
type Client struct {
	ID         string
	Name       string
	Aliases    []string
	KeyHash    string
	KeyVersion int64
	CreatedAt  time.Time
}

// clone returns c with its own Aliases, so callers cannot alter the cache.
func (c Client) clone() Client {
	c.Aliases = slices.Clone(c.Aliases)
	if c.Aliases == nil {
		c.Aliases = []string{}
	}
	return c
}

// clientCache is an immutable snapshot of all clients.
type clientCache struct {
	byID   map[string]Client
	byName map[string]string // id or alias -> id
}

// loadClients reads every client with its aliases in one statement.
func loadClients(ctx context.Context, q queryer) (*clientCache, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT c.id, c.name, c.key_hash, c.key_version, c.created_at, n.name, n.position
		FROM clients c JOIN client_names n ON n.client_id = c.id
		ORDER BY c.id, n.position`)
	if err != nil {
		return nil, fmt.Errorf("store: load clients: %w", err)
	}
	defer rows.Close()
	cache := &clientCache{byID: map[string]Client{}, byName: map[string]string{}}
	for rows.Next() {
		var (
			c       Client
			created int64
			alias   string
			pos     int64
		)
		if err := rows.Scan(&c.ID, &c.Name, &c.KeyHash, &c.KeyVersion, &created, &alias, &pos); err != nil {
			return nil, fmt.Errorf("store: load clients: %w", err)
		}
		if prev, ok := cache.byID[c.ID]; ok {
			c = prev
		} else {
			c.CreatedAt = fromMilli(created)
			c.Aliases = []string{}
		}
		if pos > 0 {
			c.Aliases = append(c.Aliases, alias)
		}
		cache.byName[alias] = c.ID
		cache.byID[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load clients: %w", err)
	}
	return cache, nil
}

// CreateClient registers c. Its name and aliases go through NormalizeNames
// (an empty name becomes the id; an alias equal to the id is dropped);
// KeyVersion is the store's to give (see nextKeyVersion; the field is
// ignored) and CreatedAt defaults to now. It fails with EINVALID for a
// bad id, name, alias or a missing key hash, and with ECONFLICT when the id or
// an alias is already an id or alias of any client.
func (s *Store) CreateClient(ctx context.Context, c Client) error {
	c, err := NormalizeClient(c, s.now())
	if err != nil {
		return err
	}
	name, aliases := c.Name, c.Aliases
	return s.write(ctx, true, func(tx *sql.Tx) error {
		if err := checkTaken(ctx, tx, "", append([]string{c.ID}, aliases...)); err != nil {
			return err
		}
		kv, err := nextKeyVersion(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO clients (id, name, key_hash, key_version, created_at) VALUES (?, ?, ?, ?, ?)`,
			c.ID, name, c.KeyHash, kv, unixMilli(c.CreatedAt)); err != nil {
			if isConstraint(err) {
				return api.Errorf(api.ECONFLICT, "%s is already an id or alias of a client", quote(c.ID))
			}
			return fmt.Errorf("store: create client: %w", err)
		}
		return insertNames(ctx, tx, c.ID, aliases, true)
	})
}

// NormalizeClient checks a new client as every store of the registry
// takes it, and returns it in normal form: EINVALID for a bad id, name or
// alias or a missing key hash; the name and aliases through NormalizeFor;
// CreatedAt now when zero.
func NormalizeClient(c Client, now time.Time) (Client, error) {
	if !ValidID(c.ID) {
		return Client{}, api.Errorf(api.EINVALID,
			"id %s is not a slug (lowercase letters, digits, '-' and '_', 1 to %d characters)", quote(c.ID), MaxIDLen)
	}
	name, aliases, err := NormalizeFor(c.ID, c.Name, c.Aliases)
	if err != nil {
		return Client{}, err
	}
	if c.KeyHash == "" {
		return Client{}, api.Errorf(api.EINVALID, "client %s has no key hash", quote(c.ID))
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.Name, c.Aliases = name, aliases
	return c, nil
}

// NormalizeFor runs NormalizeNames for client id: an empty name becomes the
// id, and an alias equal to the id is dropped (it already answers to it).
func NormalizeFor(id, name string, aliases []string) (string, []string, error) {
	name, aliases, err := NormalizeNames(name, aliases)
	if err != nil {
		return "", nil, err
	}
	if name == "" {
		name = id
	}
	aliases = slices.DeleteFunc(aliases, func(a string) bool { return a == id })
	return name, aliases, nil
}

// checkTaken fails with ECONFLICT when one of names is an id or alias of a
// client other than owner ("" for none).
func checkTaken(ctx context.Context, tx *sql.Tx, owner string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	args := make([]any, 0, len(names)+1)
	args = append(args, owner)
	for _, n := range names {
		args = append(args, n)
	}
	q := `SELECT name FROM client_names WHERE client_id <> ? AND name IN (?` +
		strings.Repeat(`, ?`, len(names)-1) + `) ORDER BY name LIMIT 1`
	var taken string
	switch err := tx.QueryRowContext(ctx, q, args...).Scan(&taken); err {
	case sql.ErrNoRows:
		return nil
	case nil:
		return api.Errorf(api.ECONFLICT, "%s is already an id or alias of another client", quote(taken))
	default:
		return fmt.Errorf("store: check names: %w", err)
	}
}

// insertNames records the client's aliases (and, with withID, its id) in
// the shared namespace.
func insertNames(ctx context.Context, tx *sql.Tx, id string, aliases []string, withID bool) error {
	if withID {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO client_names (name, client_id, position) VALUES (?, ?, 0)`, id, id); err != nil {
			if isConstraint(err) {
				return api.Errorf(api.ECONFLICT, "%s is already an id or alias of another client", quote(id))
			}
			return fmt.Errorf("store: insert client id: %w", err)
		}
	}
	for i, a := range aliases {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO client_names (name, client_id, position) VALUES (?, ?, ?)`, a, id, i+1); err != nil {
			if isConstraint(err) {
				return api.Errorf(api.ECONFLICT, "%s is already an id or alias of another client", quote(a))
			}
			return fmt.Errorf("store: insert alias: %w", err)
		}
	}
	return nil
}

// Client returns the client with this id, or ENOTFOUND. It is served from
// memory and sees changes made by another process within RefreshInterval.
func (s *Store) Client(ctx context.Context, id string) (Client, error) {
	if err := s.maybeRefresh(ctx); err != nil {
		return Client{}, err
	}
	c, ok := s.clients.Load().byID[id]
	if !ok {
		return Client{}, api.Errorf(api.ENOTFOUND, "client %s not found", quote(id))
	}
	return c.clone(), nil
}

// ResolveClient returns the client whose id or alias is idOrAlias, or
// ENOTFOUND. Like Client, it is served from memory.
func (s *Store) ResolveClient(ctx context.Context, idOrAlias string) (Client, error) {
	if err := s.maybeRefresh(ctx); err != nil {
		return Client{}, err
	}
	cache := s.clients.Load()
	c, ok := cache.byID[cache.byName[idOrAlias]]
	if !ok {
		// A client just added by the command line in another process must
		// not be unknown for up to RefreshInterval: check the file once more.
		if err := s.refreshNow(ctx); err != nil {
			return Client{}, err
		}
		cache = s.clients.Load()
		if c, ok = cache.byID[cache.byName[idOrAlias]]; !ok {
			return Client{}, api.Errorf(api.ENOTFOUND, "client %s not found", quote(idOrAlias))
		}
	}
	return c.clone(), nil
}

// Clients returns every client, sorted by id.
func (s *Store) Clients(ctx context.Context) ([]Client, error) {
	if err := s.maybeRefresh(ctx); err != nil {
		return nil, err
	}
	cache := s.clients.Load()
	out := make([]Client, 0, len(cache.byID))
	for _, c := range cache.byID {
		out = append(out, c.clone())
	}
	slices.SortFunc(out, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteClient removes the client and its aliases, or fails with ENOTFOUND.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.write(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: delete client: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: delete client: %w", err)
		} else if n == 0 {
			return api.Errorf(api.ENOTFOUND, "client %s not found", quote(id))
		}
		return nil
	})
}

// SetNames replaces the client's display name and aliases (normalised as in
// CreateClient) and returns the client. It fails with ENOTFOUND, EINVALID, or
// ECONFLICT when an alias is an id or alias of another client.
func (s *Store) SetNames(ctx context.Context, id, name string, aliases []string) (Client, error) {
	name, aliases, err := NormalizeFor(id, name, aliases)
	if err != nil {
		return Client{}, err
	}
	err = s.write(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE clients SET name = ? WHERE id = ?`, name, id)
		if err != nil {
			return fmt.Errorf("store: set names: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: set names: %w", err)
		} else if n == 0 {
			return api.Errorf(api.ENOTFOUND, "client %s not found", quote(id))
		}
		if err := checkTaken(ctx, tx, id, aliases); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM client_names WHERE client_id = ? AND position > 0`, id); err != nil {
			return fmt.Errorf("store: set names: %w", err)
		}
		return insertNames(ctx, tx, id, aliases, false)
	})
	if err != nil {
		return Client{}, err
	}
	return s.cached(id)
}

// SetKey replaces the client's key hash, gives it a new KeyVersion (which
// invalidates every token issued with the old one) and returns the client.
func (s *Store) SetKey(ctx context.Context, id, keyHash string) (Client, error) {
	if keyHash == "" {
		return Client{}, api.Errorf(api.EINVALID, "empty key hash")
	}
	err := s.write(ctx, true, func(tx *sql.Tx) error {
		kv, err := nextKeyVersion(ctx, tx)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE clients SET key_hash = ?, key_version = ? WHERE id = ?`, keyHash, kv, id)
		if err != nil {
			return fmt.Errorf("store: set key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: set key: %w", err)
		} else if n == 0 {
			return api.Errorf(api.ENOTFOUND, "client %s not found", quote(id))
		}
		return nil
	})
	if err != nil {
		return Client{}, err
	}
	return s.cached(id)
}

// nextKeyVersion takes the next key version from the one counter of all
// clients, so that no two keys, of one client or of a client deleted and
// created again under the same id, ever share a version: a token or a
// remembered credential of an old key can never pass for the new one.
func nextKeyVersion(ctx context.Context, tx *sql.Tx) (int64, error) {
	var kv int64
	if err := tx.QueryRowContext(ctx, `UPDATE key_versions SET last = last + 1 RETURNING last`).Scan(&kv); err != nil {
		return 0, fmt.Errorf("store: next key version: %w", err)
	}
	return kv, nil
}

// cached returns the client from the cache just written, without a refresh.
func (s *Store) cached(id string) (Client, error) {
	c, ok := s.clients.Load().byID[id]
	if !ok {
		// Only possible if another goroutine deleted it in between.
		return Client{}, api.Errorf(api.ENOTFOUND, "client %s not found", quote(id))
	}
	return c.clone(), nil
}
