package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ovosgw/gateway/api"
)

// maxJTILen bounds a token id; ours are 22 characters.
const maxJTILen = 128

// Revoke records that the token with id jti must be refused until until (its
// expiry; afterwards it is refused as expired anyway and the record is
// forgotten). It is persisted, so a restart does not bring the token back.
func (s *Store) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" || len(jti) > maxJTILen {
		return api.Errorf(api.EINVALID, "invalid token id")
	}
	now := s.now()
	prune := false
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO revoked_tokens (jti, until) VALUES (?, ?)
			ON CONFLICT (jti) DO UPDATE SET until = max(until, excluded.until)`,
			jti, unixMilli(until)); err != nil {
			return fmt.Errorf("store: revoke token: %w", err)
		}
		// s.mu is held here: lastPrune is ours to read and set.
		if prune = now.Sub(s.lastPrune) >= revocationPruneEvery; prune {
			s.lastPrune = now
			if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE until <= ?`, unixMilli(now)); err != nil {
				return fmt.Errorf("store: prune revocations: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if prev, ok := s.revoked[jti]; !ok || until.After(prev) {
		s.revoked[jti] = until
	}
	if prune {
		for k, u := range s.revoked {
			if !u.After(now) {
				delete(s.revoked, k)
			}
		}
	}
	return nil
}

// Revoked reports whether the token with id jti was revoked and its
// revocation still runs. It is served from memory: loaded at Open, updated by
// Revoke, and reloaded when another process writes the file (seen by client
// lookups and Watch).
func (s *Store) Revoked(jti string) bool {
	s.revMu.RLock()
	until, ok := s.revoked[jti]
	s.revMu.RUnlock()
	return ok && s.now().Before(until)
}

// loadRevocations reads the revocations that still run.
func (s *Store) loadRevocations(ctx context.Context, q queryer) (map[string]time.Time, error) {
	rows, err := q.QueryContext(ctx, `SELECT jti, until FROM revoked_tokens WHERE until > ?`, unixMilli(s.now()))
	if err != nil {
		return nil, fmt.Errorf("store: load revocations: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			jti   string
			until int64
		)
		if err := rows.Scan(&jti, &until); err != nil {
			return nil, fmt.Errorf("store: load revocations: %w", err)
		}
		out[jti] = fromMilli(until)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load revocations: %w", err)
	}
	return out, nil
}
