package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ovosgw/gateway/api"
)

// MaxPatternLen bounds a protected intent pattern, in characters.
const MaxPatternLen = 200

// ProtectedIntent is an intent pattern ("skill_id:IntentName", a skill id,
// '*' as wildcard) and the Argon2id hash of the password it needs.
type ProtectedIntent struct {
	Pattern      string
	PasswordHash string
	CreatedAt    time.Time
}

// Protect sets the password hash of pattern, adding the pattern if it is
// new (a re-protected pattern keeps its CreatedAt). It fails with EINVALID
// for an empty, over-long or control-character pattern or an empty hash.
func (s *Store) Protect(ctx context.Context, pattern, passwordHash string) error {
	if err := CheckProtect(pattern, passwordHash); err != nil {
		return err
	}
	return s.write(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO protected_intents (pattern, password_hash, created_at) VALUES (?, ?, ?)
			ON CONFLICT (pattern) DO UPDATE SET password_hash = excluded.password_hash`,
			pattern, passwordHash, unixMilli(s.now())); err != nil {
			return fmt.Errorf("store: protect intent: %w", err)
		}
		return nil
	})
}

// CheckProtect checks a pattern and its password hash as every store of the
// protected intents takes them: EINVALID for an empty, over-long or
// control-character pattern or an empty hash.
func CheckProtect(pattern, passwordHash string) error {
	if pattern == "" {
		return api.Errorf(api.EINVALID, "empty intent pattern")
	}
	if err := checkText("intent pattern", pattern, MaxPatternLen); err != nil {
		return err
	}
	if passwordHash == "" {
		return api.Errorf(api.EINVALID, "empty password hash")
	}
	return nil
}

// ProtectedNotFound is the refusal to unprotect a pattern that is not
// protected.
func ProtectedNotFound(pattern string) error {
	return api.Errorf(api.ENOTFOUND, "protected intent %s not found", quote(pattern))
}

// ProtectedIntents returns every protected pattern, sorted by pattern.
func (s *Store) ProtectedIntents(ctx context.Context) ([]ProtectedIntent, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT pattern, password_hash, created_at FROM protected_intents ORDER BY pattern`)
	if err != nil {
		return nil, fmt.Errorf("store: list protected intents: %w", err)
	}
	defer rows.Close()
	out := []ProtectedIntent{}
	for rows.Next() {
		var (
			p       ProtectedIntent
			created int64
		)
		if err := rows.Scan(&p.Pattern, &p.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("store: list protected intents: %w", err)
		}
		p.CreatedAt = fromMilli(created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list protected intents: %w", err)
	}
	return out, nil
}

// Unprotect removes pattern, or fails with ENOTFOUND.
func (s *Store) Unprotect(ctx context.Context, pattern string) error {
	return s.write(ctx, false, func(tx *sql.Tx) error {
		return deleteOne(ctx, tx, `DELETE FROM protected_intents WHERE pattern = ?`, []any{pattern},
			ProtectedNotFound(pattern))
	})
}
