package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Open streams counted across replicas (handlers.Caps), all in one slot:
//
//	{streams}:<name>:<key>   hash: each replica's open streams of the key
//	{streams}:alive          sorted set: each replica by when its lease
//	                         ends, renewed by the replica every few seconds
//
// Opening a stream counts it in one script, which first drops the counts of
// replicas whose lease ended (killed, cut off): a dead replica's streams do
// not count for longer than a lease. An open stream costs no Redis work;
// the lease is one command per replica, whatever its streams.

// StreamLease is how long a replica's counts hold without its renewal.
const StreamLease = 15 * time.Second

func (k keyspace) streams(name, key string) string { return k.prefix + "{streams}:" + name + ":" + key }
func (k keyspace) streamsAlive() string            { return k.prefix + "{streams}:alive" }

// acquireScript: KEYS counts, alive; ARGV max (0: none), replica. 1 when
// counted.
var acquireScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max, me = tonumber(ARGV[1]), ARGV[2]
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local r, c = all[i], tonumber(all[i + 1])
  local lease = tonumber(redis.call('ZSCORE', KEYS[2], r) or '0')
  if r ~= me and lease < now then
    redis.call('HDEL', KEYS[1], r)
  else
    n = n + c
  end
end
if max > 0 and n >= max then return 0 end
redis.call('HINCRBY', KEYS[1], me, 1)
return 1
`)

// releaseScript: KEYS counts; ARGV replica, how many.
var releaseScript = rueidis.NewLuaScript(`
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
if c <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`)

// renewScript: KEYS alive; ARGV replica, lease (ms).
var renewScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
return 1
`)

// Streams counts the streams this replica holds open in Redis, for every
// Caps it made. Run renews its lease.
type Streams struct {
	s       *Store
	replica string
	lease   time.Duration

	mu      sync.Mutex
	owed    map[string]int // releases not yet written (Redis was away)
	lastLog atomic.Int64
}

// Streams returns this replica's count of open streams, under a replica id
// of its own; lease is StreamLease when zero.
func (s *Store) Streams(lease time.Duration) *Streams {
	if lease <= 0 {
		lease = StreamLease
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Streams{s: s, replica: hex.EncodeToString(b[:]), lease: lease, owed: map[string]int{}}
}

// Renew renews the replica's lease and writes the releases Redis missed.
func (st *Streams) Renew(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	err := renewScript.Exec(ctx, st.s.rdb, []string{st.s.k.streamsAlive()},
		[]string{st.replica, strconv.FormatInt(st.lease.Milliseconds(), 10)}).Error()
	if err != nil {
		return unreachable("renew the streams' lease", err)
	}
	st.mu.Lock()
	owed := st.owed
	st.owed = map[string]int{}
	st.mu.Unlock()
	for k, n := range owed {
		if err := releaseScript.Exec(ctx, st.s.rdb, []string{k}, []string{st.replica, strconv.Itoa(n)}).Error(); err != nil {
			st.mu.Lock()
			st.owed[k] += n
			st.mu.Unlock()
		}
	}
	return nil
}

// Run renews the lease every third of it until ctx ends.
func (st *Streams) Run(ctx context.Context) {
	t := time.NewTicker(st.lease / 3)
	defer t.Stop()
	for {
		if err := st.Renew(ctx); err != nil && ctx.Err() == nil {
			st.logOnce("streams' lease not renewed", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (st *Streams) logOnce(msg string, err error) {
	now := time.Now().UnixNano()
	if last := st.lastLog.Load(); now-last > int64(10*time.Second) && st.lastLog.CompareAndSwap(last, now) {
		st.s.log.Warn(msg, "err", err)
	}
}

// Caps returns the cap of max open streams per key (0: none, still
// counted) named name, counted across replicas. It is handlers.Caps.
func (st *Streams) Caps(name string, limit int) *Caps {
	return &Caps{st: st, name: name, max: strconv.Itoa(max(limit, 0))}
}

// Caps is one cap on the streams open per key, counted across replicas.
type Caps struct {
	st   *Streams
	name string
	max  string
}

// Acquire counts one more stream for key, unless key holds the maximum on
// all replicas together. release gives it back (once; never nil).
//
// With Redis out of reach it lets the stream open uncounted (and logs so):
// the stream itself needs Redis for its events and is refused with 503
// there.
func (c *Caps) Acquire(key string) (release func(), ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	k := c.st.s.k.streams(c.name, key)
	n, err := acquireScript.Exec(ctx, c.st.s.rdb, []string{k, c.st.s.k.streamsAlive()}, []string{c.max, c.st.replica}).AsInt64()
	if err != nil {
		c.st.logOnce("stream limit not checked: redis unreachable", err)
		return func() {}, true
	}
	if n != 1 {
		return func() {}, false
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
			defer cancel()
			if err := releaseScript.Exec(ctx, c.st.s.rdb, []string{k}, []string{c.st.replica, "1"}).Error(); err != nil {
				c.st.mu.Lock()
				c.st.owed[k]++
				c.st.mu.Unlock()
			}
		})
	}, true
}
