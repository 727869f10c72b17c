package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/store"
)

// The blacklist and the protected intents, shared by every replica:
//
//	{admin}:blacklist  hash: canonical range -> entry (JSON)
//	{admin}:intents    hash: pattern -> {password hash, created_at} (JSON)
//	{admin}:changes    counter of changes to either, which each replica
//	                   watches to reload them (WatchAdmin)
//
// They are small and read whole (a replica keeps them in memory and reloads
// on a change), so a hash each is enough.

func (k keyspace) blacklist() string    { return k.prefix + "{admin}:blacklist" }
func (k keyspace) intents() string      { return k.prefix + "{admin}:intents" }
func (k keyspace) adminChanges() string { return k.prefix + "{admin}:changes" }

// changed counts a change for the replicas watching (WatchAdmin).
func (s *Store) changed(ctx context.Context) {
	_ = s.rdb.Do(ctx, s.rdb.B().Incr().Key(s.k.adminChanges()).Build()).Error()
}

// AddBlacklist implements blacklist.Store.
func (s *Store) AddBlacklist(ctx context.Context, e api.BlacklistEntry) error {
	e, err := store.NormalizeBlacklistEntry(e, time.Now())
	if err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := s.rdb.Do(ctx, s.rdb.B().Hset().Key(s.k.blacklist()).FieldValue().FieldValue(e.CIDR, string(v)).Build()).Error(); err != nil {
		return unreachable("add blacklist entry", err)
	}
	s.changed(ctx)
	return nil
}

// Blacklist implements blacklist.Store: the entries that have not expired,
// oldest first. Expired ones are removed on the way.
func (s *Store) Blacklist(ctx context.Context) ([]api.BlacklistEntry, error) {
	m, err := s.rdb.Do(ctx, s.rdb.B().Hgetall().Key(s.k.blacklist()).Build()).AsStrMap()
	if err != nil {
		return nil, unreachable("list blacklist", err)
	}
	now := time.Now()
	out := []api.BlacklistEntry{}
	var expired []string
	for k, v := range m {
		var e api.BlacklistEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil || e.CIDR != k {
			continue // not one of ours
		}
		if e.ExpiresAt != nil && !e.ExpiresAt.After(now) {
			expired = append(expired, k)
			continue
		}
		e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Millisecond)
		if e.ExpiresAt != nil {
			t := e.ExpiresAt.UTC().Truncate(time.Millisecond)
			e.ExpiresAt = &t
		}
		out = append(out, e)
	}
	if len(expired) > 0 {
		_ = s.rdb.Do(ctx, s.rdb.B().Hdel().Key(s.k.blacklist()).Field(expired...).Build()).Error()
	}
	slices.SortFunc(out, func(a, b api.BlacklistEntry) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.CIDR, b.CIDR))
	})
	return out, nil
}

// RemoveBlacklist implements blacklist.Store.
func (s *Store) RemoveBlacklist(ctx context.Context, r string) error {
	canon, err := store.CanonicalCIDR(r)
	if err != nil {
		return err
	}
	n, err := s.rdb.Do(ctx, s.rdb.B().Hdel().Key(s.k.blacklist()).Field(canon).Build()).AsInt64()
	if err != nil {
		return unreachable("remove blacklist entry", err)
	}
	if n == 0 {
		return store.BlacklistNotFound(canon)
	}
	s.changed(ctx)
	return nil
}

// storedIntent is a protected intent's value.
type storedIntent struct {
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// protectScript: KEYS intents; ARGV pattern, hash, now (JSON time). A
// re-protected pattern keeps its created_at.
const protectScript = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
local created = ARGV[3]
if old then created = cjson.decode(old).created_at end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({password_hash = ARGV[2], created_at = created}))
return 1
`

// Protect implements intentgate.Store.
func (s *Store) Protect(ctx context.Context, pattern, passwordHash string) error {
	if err := store.CheckProtect(pattern, passwordHash); err != nil {
		return err
	}
	now, err := json.Marshal(time.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return err
	}
	cmd := s.rdb.B().Eval().Script(protectScript).Numkeys(1).Key(s.k.intents()).
		Arg(pattern, passwordHash, strings.Trim(string(now), `"`)).Build()
	if err := s.rdb.Do(ctx, cmd).Error(); err != nil {
		return unreachable("protect intent", err)
	}
	s.changed(ctx)
	return nil
}

// ProtectedIntents implements intentgate.Store: sorted by pattern.
func (s *Store) ProtectedIntents(ctx context.Context) ([]store.ProtectedIntent, error) {
	m, err := s.rdb.Do(ctx, s.rdb.B().Hgetall().Key(s.k.intents()).Build()).AsStrMap()
	if err != nil {
		return nil, unreachable("list protected intents", err)
	}
	out := []store.ProtectedIntent{}
	for pattern, v := range m {
		var si storedIntent
		if err := json.Unmarshal([]byte(v), &si); err != nil || si.PasswordHash == "" {
			continue
		}
		out = append(out, store.ProtectedIntent{Pattern: pattern, PasswordHash: si.PasswordHash, CreatedAt: si.CreatedAt.UTC()})
	}
	slices.SortFunc(out, func(a, b store.ProtectedIntent) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out, nil
}

// Unprotect implements intentgate.Store.
func (s *Store) Unprotect(ctx context.Context, pattern string) error {
	n, err := s.rdb.Do(ctx, s.rdb.B().Hdel().Key(s.k.intents()).Field(pattern).Build()).AsInt64()
	if err != nil {
		return unreachable("unprotect intent", err)
	}
	if n == 0 {
		return store.ProtectedNotFound(pattern)
	}
	s.changed(ctx)
	return nil
}

// WatchAdmin calls fn, until ctx ends, each time it sees (every period)
// that the blacklist or the protected intents changed, by any replica or
// the command line.
func (s *Store) WatchAdmin(ctx context.Context, every time.Duration, fn func()) {
	s.watchCounter(ctx, s.k.adminChanges(), "blacklist and protected intents", every, fn)
}
