package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/ovosgw/gateway/internal/bans"
)

// Failure counters shared by every replica (bans.Counter), per address
// range, the three keys of one range in one slot:
//
//	bans:{<cidr>}     hash: repeats (bans so far), end (when the last ended,
//	                  unix ms), seq; expiring Remember after the last ban
//	                  ends, or Window after the last failure
//	bans:{<cidr>}:f   sorted set: the failures within Window, by time
//	bans:{<cidr>}:p   the checks reserved and not yet released; expiring
//	                  Window after the last reservation, so that the
//	                  reservations of a replica that died mid-check do not
//	                  count for longer
//
// Each step is one script: one round trip, atomic across replicas.

func (k keyspace) bans(cidr string) string { return k.prefix + "bans:{" + cidr + "}" }

// Counter is bans.Counter in Redis.
type Counter struct{ s *Store }

// Counter returns the shared failure counters.
func (s *Store) Counter() *Counter { return &Counter{s: s} }

var _ bans.Counter = (*Counter)(nil)

// failScript: KEYS hash, failures, reserved; ARGV now, window, after, for,
// maxFor, remember (ms). Returns the ban's number, or 0.
var failScript = rueidis.NewLuaScript(`
local now, window, after = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local first, maxfor, remember = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local rep = tonumber(redis.call('HGET', KEYS[1], 'repeats') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'end') or '0')
if rep > 0 and now > last + remember then rep = 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[2], now, seq)
local keep = window
if rep > 0 and last + remember - now > keep then keep = last + remember - now end
if redis.call('ZCARD', KEYS[2]) < after then
  redis.call('HSET', KEYS[1], 'repeats', rep)
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('PEXPIRE', KEYS[2], window)
  return 0
end
redis.call('DEL', KEYS[2])
rep = rep + 1
local d = first
for i = 2, rep do
  if d >= maxfor then break end
  d = d * 2
end
if d > maxfor then d = maxfor end
redis.call('HSET', KEYS[1], 'repeats', rep, 'end', now + d)
redis.call('PEXPIRE', KEYS[1], d + remember)
return rep
`)

// reserveScript: KEYS hash, failures, reserved; ARGV now, window, after
// (ms). Returns 1 when reserved.
var reserveScript = rueidis.NewLuaScript(`
local now, window, after = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2]) + tonumber(redis.call('GET', KEYS[3]) or '0')
if n >= after then return 0 end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], window)
return 1
`)

// unreserveScript: KEYS reserved.
var unreserveScript = rueidis.NewLuaScript(`
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('DECR', KEYS[1])
end
return 1
`)

func (c *Counter) keys(cidr string) []string {
	h := c.s.k.bans(cidr)
	return []string{h, h + ":f", h + ":p"}
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Fail implements bans.Counter.
func (c *Counter) Fail(ctx context.Context, key string, now time.Time, p bans.Policy) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	n, err := failScript.Exec(ctx, c.s.rdb, c.keys(key), []string{
		strconv.FormatInt(now.UnixMilli(), 10), ms(p.Window), strconv.Itoa(p.After),
		ms(p.For), ms(p.MaxFor), ms(p.Remember),
	}).AsInt64()
	if err != nil {
		return 0, unreachable("count a failure", err)
	}
	return int(n), nil
}

// Reserve implements bans.Counter.
func (c *Counter) Reserve(ctx context.Context, key string, now time.Time, p bans.Policy) (bool, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	n, err := reserveScript.Exec(ctx, c.s.rdb, c.keys(key), []string{
		strconv.FormatInt(now.UnixMilli(), 10), ms(p.Window), strconv.Itoa(p.After),
	}).AsInt64()
	if err != nil {
		return false, unreachable("reserve a check", err)
	}
	return n == 1, nil
}

// Unreserve implements bans.Counter.
func (c *Counter) Unreserve(ctx context.Context, key string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := unreserveScript.Exec(ctx, c.s.rdb, c.keys(key)[2:], nil).Error(); err != nil {
		return unreachable("release a check", err)
	}
	return nil
}
