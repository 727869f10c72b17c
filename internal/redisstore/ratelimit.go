package redisstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// limiter is middleware.Limiter.
type limiter interface {
	Allow(key string) (bool, time.Duration)
}

// Rate limits shared by every replica: one key per limited key (a client,
// an address) and limit,
//
//	rate:<name>:<key>   the bucket's theoretical arrival time (GCRA), in
//	                    microseconds of Redis's clock, expiring when the
//	                    bucket is full again
//
// A check is one script (one round trip); the time is Redis's own, so
// replicas whose clocks differ still count alike.

func (k keyspace) rate(name, key string) string { return k.prefix + "rate:" + name + ":" + key }

// gcraScript: KEYS bucket; ARGV emission interval, burst tolerance (µs).
// Returns 0 when allowed, else the microseconds to wait.
var gcraScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + interval
local allowAt = new - tolerance
if allowAt > now then return math.ceil(allowAt - now) end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
return 0
`)

// RateLimiter is a set of token buckets in Redis, one per key, holding up
// to a burst and refilled at a rate, counted as GCRA (the generic cell rate
// algorithm): one number per key, one script per check. It is
// middleware.Limiter.
type RateLimiter struct {
	s                   *Store
	name                string
	interval, tolerance string
	lastLog             atomic.Int64
}

// RateLimiter returns the shared limiter name (keys of different names
// never meet) allowing rate checks per second, burst at once (when not
// positive: rate rounded up, at least 1).
func (s *Store) RateLimiter(name string, rate float64, burst int) (*RateLimiter, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, errors.New("redisstore: a rate limit needs a positive rate")
	}
	if burst < 1 {
		burst = int(max(1, math.Ceil(rate))) // as ratelimit.New
	}
	interval := 1e6 / rate
	return &RateLimiter{s: s, name: name,
		interval:  strconv.FormatFloat(interval, 'f', 3, 64),
		tolerance: strconv.FormatFloat(interval*float64(burst), 'f', 3, 64)}, nil
}

// checkTimeout bounds a check: a request waits no longer than this for its
// rate limit.
const checkTimeout = time.Second

// Allow takes a token from key's bucket; when there is none it returns
// false and how long until there is one. A refused check takes nothing.
//
// With Redis out of reach it lets the request go (and logs so, at most
// every 10 s): a rate limit spreads the load, it guards no secret, and the
// request needs Redis anyway for what it does (the client's record, its
// utterance's ownership) and gets its 503 there. Guesses are counted by
// the bans, which refuse when they cannot count.
func (l *RateLimiter) Allow(key string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	return l.check(ctx, key)
}

// AllowPair is Allow of key here and of key2 in other (a RateLimiter of the
// same store), sent at once: the connection's pipeline carries both in one
// round trip. It is middleware.PairLimiter. Unlike two checks in turn, a
// request refused here still takes its token from other.
func (l *RateLimiter) AllowPair(key string, other limiter, key2 string) (bool, time.Duration) {
	o, ok := other.(*RateLimiter)
	if !ok || o.s != l.s {
		if ok, retry := l.Allow(key); !ok {
			return false, retry
		}
		return other.Allow(key2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	type result struct {
		ok    bool
		retry time.Duration
	}
	second := make(chan result, 1)
	go func() {
		ok, retry := o.check(ctx, key2)
		second <- result{ok, retry}
	}()
	ok1, retry1 := l.check(ctx, key)
	r := <-second
	return ok1 && r.ok, max(retry1, r.retry)
}

// check is one check, bounded by ctx.
func (l *RateLimiter) check(ctx context.Context, key string) (bool, time.Duration) {
	wait, err := gcraScript.Exec(ctx, l.s.rdb, []string{l.s.k.rate(l.name, key)}, []string{l.interval, l.tolerance}).AsInt64()
	if err != nil {
		now := time.Now().UnixNano()
		if last := l.lastLog.Load(); now-last > int64(10*time.Second) && l.lastLog.CompareAndSwap(last, now) {
			l.s.log.Warn("rate limit not checked: redis unreachable; requests go unlimited until it is back", "limit", l.name, "err", err)
		}
		return true, 0
	}
	if wait == 0 {
		return true, 0
	}
	return false, time.Duration(wait) * time.Microsecond
}
