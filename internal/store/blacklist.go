package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
)

// MaxReasonLen bounds a blacklist entry's reason, in characters.
const MaxReasonLen = 200

// NormalizeBlacklistEntry checks e as every store of the blacklist takes it
// and returns it in normal form: the range in canonical form, the source
// admin when empty, the reason trimmed (at most MaxReasonLen printable
// characters), CreatedAt now when zero.
func NormalizeBlacklistEntry(e api.BlacklistEntry, now time.Time) (api.BlacklistEntry, error) {
	cidr, err := canonicalCIDR(e.CIDR)
	if err != nil {
		return api.BlacklistEntry{}, err
	}
	e.CIDR = cidr
	switch e.Source {
	case "":
		e.Source = api.BlacklistAdmin
	case api.BlacklistAdmin, api.BlacklistAuto, api.BlacklistConfig:
	default:
		return api.BlacklistEntry{}, api.Errorf(api.EINVALID, "unknown blacklist source %s", quote(e.Source))
	}
	e.Reason = strings.TrimSpace(e.Reason)
	if err := checkText("reason", e.Reason, MaxReasonLen); err != nil {
		return api.BlacklistEntry{}, err
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	return e, nil
}

// CanonicalCIDR is the key of a range in every store of the blacklist:
// its canonical form (package cidr).
func CanonicalCIDR(s string) (string, error) { return canonicalCIDR(s) }

// BlacklistNotFound is the refusal to remove a range that has no entry.
func BlacklistNotFound(canon string) error {
	return api.Errorf(api.ENOTFOUND, "blacklist entry %s not found", quote(canon))
}

// canonicalCIDR returns s in the normal form of package cidr
// ("203.0.113.7/24" becomes "203.0.113.0/24", a bare address one host).
// Entries are keyed by this form, so one range has one entry.
func canonicalCIDR(s string) (string, error) {
	p, err := cidr.Parse(s)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// AddBlacklist adds e, or replaces the entry for the same range. The range
// is stored in canonical form; Source defaults to api.BlacklistAdmin and
// CreatedAt to now. Entries already expired are removed on the way.
func (s *Store) AddBlacklist(ctx context.Context, e api.BlacklistEntry) error {
	e, err := NormalizeBlacklistEntry(e, s.now())
	if err != nil {
		return err
	}
	cidr := e.CIDR
	var expires sql.NullInt64
	if e.ExpiresAt != nil {
		expires = sql.NullInt64{Int64: unixMilli(*e.ExpiresAt), Valid: true}
	}
	return s.write(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM blacklist WHERE expires_at IS NOT NULL AND expires_at <= ?`, unixMilli(s.now())); err != nil {
			return fmt.Errorf("store: prune blacklist: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO blacklist (cidr, reason, source, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (cidr) DO UPDATE SET reason = excluded.reason, source = excluded.source,
				created_at = excluded.created_at, expires_at = excluded.expires_at`,
			cidr, e.Reason, e.Source, unixMilli(e.CreatedAt), expires); err != nil {
			return fmt.Errorf("store: add blacklist entry: %w", err)
		}
		return nil
	})
}

// Blacklist returns the entries that have not expired, oldest first.
func (s *Store) Blacklist(ctx context.Context) ([]api.BlacklistEntry, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT cidr, reason, source, created_at, expires_at FROM blacklist
		WHERE expires_at IS NULL OR expires_at > ?
		ORDER BY created_at, cidr`, unixMilli(s.now()))
	if err != nil {
		return nil, fmt.Errorf("store: list blacklist: %w", err)
	}
	defer rows.Close()
	out := []api.BlacklistEntry{}
	for rows.Next() {
		var (
			e       api.BlacklistEntry
			created int64
			expires sql.NullInt64
		)
		if err := rows.Scan(&e.CIDR, &e.Reason, &e.Source, &created, &expires); err != nil {
			return nil, fmt.Errorf("store: list blacklist: %w", err)
		}
		e.CreatedAt = fromMilli(created)
		if expires.Valid {
			t := fromMilli(expires.Int64)
			e.ExpiresAt = &t
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list blacklist: %w", err)
	}
	return out, nil
}

// RemoveBlacklist removes the entry for r (in any spelling of the same
// range), or fails with ENOTFOUND. A row kept in the exact spelling r (an
// IPv4-mapped form written before ranges had one normal form) goes too.
func (s *Store) RemoveBlacklist(ctx context.Context, r string) error {
	canon, err := canonicalCIDR(r)
	if err != nil {
		return err
	}
	return s.write(ctx, false, func(tx *sql.Tx) error {
		return deleteOne(ctx, tx, `DELETE FROM blacklist WHERE cidr IN (?, ?)`, []any{canon, strings.TrimSpace(r)},
			BlacklistNotFound(canon))
	})
}

// deleteOne runs a DELETE of one key and returns notFound when no row went.
func deleteOne(ctx context.Context, tx *sql.Tx, query string, args []any, notFound error) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// checkText refuses text that is not valid UTF-8, is longer than max
// characters, or holds control characters (it reaches logs and the console).
func checkText(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return api.Errorf(api.EINVALID, "%s is not valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return api.Errorf(api.EINVALID, "%s is %d characters long, at most %d allowed", what, n, max)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return api.Errorf(api.EINVALID, "%s contains a control or non-printable character", what)
		}
	}
	return nil
}
