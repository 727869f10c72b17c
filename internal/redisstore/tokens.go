package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/tokens"
)

// Revocations and stream tickets shared by every replica:
//
//	revoked:<id>                 a logged-out session (or, from before, a
//	                             token), expiring when its tokens would
//	{tickets}:<sha256 of ticket> an outstanding stream ticket: its claims and
//	                             expiry (JSON), expiring with it
//	{tickets}:n:<client>         the client's outstanding tickets, counted
//
// A revocation check reads the session's and the token's keys at once,
// served from the client-side cache after the first: Redis tells every replica when a
// logout creates the key. A ticket is spent with GETDEL, so of two replicas
// redeeming it at once exactly one gets it.

func (k keyspace) revoked(id string) string { return k.prefix + "revoked:" + id }
func (k keyspace) ticket(h [sha256.Size]byte) string {
	return k.prefix + "{tickets}:" + hex.EncodeToString(h[:])
}
func (k keyspace) ticketCount(clientID string) string { return k.prefix + "{tickets}:n:" + clientID }

// Revocations is tokens.Revocations (and tokens.RevocationChecker) in Redis.
type Revocations struct{ s *Store }

// Revocations returns the shared revocations.
func (s *Store) Revocations() *Revocations { return &Revocations{s: s} }

// Revoke implements tokens.Revocations.
func (r *Revocations) Revoke(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return api.Errorf(api.EINVALID, "invalid token id")
	}
	cmd := r.s.rdb.B().Set().Key(r.s.k.revoked(id)).Value("1").PxatMillisecondsTimestamp(until.UnixMilli()).Build()
	if err := r.s.rdb.Do(ctx, cmd).Error(); err != nil {
		return unreachable("revoke", err)
	}
	r.s.barrier(ctx)
	return nil
}

// RevokedAny implements tokens.RevocationChecker.
func (r *Revocations) RevokedAny(ctx context.Context, ids ...string) (bool, error) {
	cmds := make([]rueidis.CacheableTTL, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			cmds = append(cmds, rueidis.CT(r.s.rdb.B().Get().Key(r.s.k.revoked(id)).Cache(), r.s.ttl))
		}
	}
	if len(cmds) == 0 {
		return false, nil
	}
	for _, res := range r.s.rdb.DoMultiCache(ctx, cmds...) {
		err := res.Error()
		switch {
		case err == nil:
			return true, nil
		case !rueidis.IsRedisNil(err):
			return false, unreachable("revocation check", err)
		}
	}
	return false, nil
}

// Revoked implements tokens.Revocations; Tokens asks RevokedAny, which can
// say that it could not answer. Unanswered, this one says revoked.
func (r *Revocations) Revoked(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	revoked, err := r.RevokedAny(ctx, id)
	return revoked || err != nil
}

// Tickets is tokens.TicketStore in Redis.
type Tickets struct {
	s         *Store
	perClient int
}

// Tickets returns the shared ticket store, refusing a client's ticket
// beyond perClient outstanding ones.
func (s *Store) Tickets(perClient int) *Tickets { return &Tickets{s: s, perClient: perClient} }

// putTicketScript: KEYS ticket, count; ARGV value, ttl ms, per-client max.
var putTicketScript = rueidis.NewLuaScript(`
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if n > tonumber(ARGV[3]) then
  redis.call('DECR', KEYS[2])
  return redis.error_reply('GWLIMIT')
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseTicketScript: KEYS count. A count that expired meanwhile stays
// gone.
var releaseTicketScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
`)

// storedTicket is a ticket's value.
type storedTicket struct {
	Claims  tokens.Claims `json:"claims"`
	Expires time.Time     `json:"expires"`
}

// Put implements tokens.TicketStore.
func (t *Tickets) Put(ctx context.Context, hash [sha256.Size]byte, c tokens.Claims, expires time.Time) error {
	ttl := time.Until(expires)
	if ttl <= 0 {
		return api.Errorf(api.EUNAUTHORIZED, "token expired")
	}
	v, err := json.Marshal(storedTicket{Claims: c, Expires: expires})
	if err != nil {
		return err
	}
	err = putTicketScript.Exec(ctx, t.s.rdb,
		[]string{t.s.k.ticket(hash), t.s.k.ticketCount(c.ClientID)},
		[]string{string(v), strconv.FormatInt(max(ttl.Milliseconds(), 1), 10), strconv.Itoa(t.perClient)}).Error()
	if err != nil {
		if strings.Contains(err.Error(), "GWLIMIT") {
			return &api.Error{Code: api.ERATELIMITED, Detail: "too many outstanding stream tickets for this client", RetryAfter: tokens.TicketTTL}
		}
		return unreachable("keep ticket", err)
	}
	return nil
}

// Get implements tokens.TicketStore.
func (t *Tickets) Get(ctx context.Context, hash [sha256.Size]byte, spend bool) (tokens.Claims, time.Time, bool, error) {
	key := t.s.k.ticket(hash)
	cmd := t.s.rdb.B().Get().Key(key).Build()
	if spend {
		cmd = t.s.rdb.B().Getdel().Key(key).Build()
	}
	v, err := t.s.rdb.Do(ctx, cmd).ToString()
	if rueidis.IsRedisNil(err) {
		return tokens.Claims{}, time.Time{}, false, nil
	}
	if err != nil {
		return tokens.Claims{}, time.Time{}, false, unreachable("read ticket", err)
	}
	var st storedTicket
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return tokens.Claims{}, time.Time{}, false, nil // not one of ours: unknown
	}
	if spend {
		// The count only bounds a client's outstanding tickets: a failure
		// here costs a slot until it expires.
		_ = releaseTicketScript.Exec(ctx, t.s.rdb, []string{t.s.k.ticketCount(st.Claims.ClientID)}, nil).Error()
	}
	return st.Claims, st.Expires, true, nil
}
