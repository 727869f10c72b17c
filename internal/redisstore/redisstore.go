// Package redisstore keeps the gateway's shared state in Redis, so that
// several replicas given the same GATEWAY_REDIS_URL are one gateway. So far
// it holds the registry of clients (clients.Store, as internal/store does in
// the SQLite file of one process); the other kinds of state follow.
//
// Every key starts with one prefix and the registry's keys share one hash
// tag, so that each of its atomic steps (a Lua script) touches a single slot
// and runs on Redis Cluster too. Reads that every request makes (a client's
// record, a name) are served from rueidis's server-assisted client-side
// cache: Redis tells each replica when a key it read changes.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/rueidis"

	"github.com/ovosgw/gateway/api"
)

// Defaults of Config.
const (
	// DefaultPrefix starts every key the gateway writes.
	DefaultPrefix = "ovosgw:"
	// DefaultCacheTTL bounds how long a replica serves a record from its
	// client-side cache. Redis invalidates the copy as soon as the key
	// changes; the bound only covers a lost invalidation.
	DefaultCacheTTL = time.Minute
	// cacheBytes is the client-side cache of each connection: records are
	// small, so far below rueidis's 128 MiB default.
	cacheBytes = 16 << 20
	// dialTimeout bounds connecting to Redis.
	dialTimeout = 5 * time.Second
	// opTimeout bounds one operation, retries included: rueidis retries a
	// read while Redis is away, and a caller (a login) must get an answer.
	opTimeout = 3 * time.Second
)

// Config is what Open needs.
type Config struct {
	// URL is GATEWAY_REDIS_URL: redis://[user:pass@]host:port/db,
	// rediss:// for TLS, unix:///path/to/socket?db=N for a socket.
	URL string
	// Prefix starts every key (DefaultPrefix when empty).
	Prefix string
	// CacheTTL bounds a client-side cached read (DefaultCacheTTL when zero).
	CacheTTL time.Duration
	// Logger receives the store's own messages (discarded when nil).
	Logger *slog.Logger
}

// Store is the gateway's state in one Redis.
type Store struct {
	rdb  rueidis.Client
	addr string
	ttl  time.Duration
	log  *slog.Logger
	k    keyspace
}

// ErrBadURL is returned by Open for a URL it cannot use. The URL itself is
// never part of an error: it may carry a password.
var ErrBadURL = errors.New("GATEWAY_REDIS_URL is not a Redis URL (redis://[user:pass@]host:port/db, rediss://..., unix:///path?db=N)")

// CheckURL reports whether url is a Redis URL Open can use (ErrBadURL if
// not), without connecting.
func CheckURL(url string) error {
	if _, err := rueidis.ParseURL(url); err != nil || url == "" {
		return ErrBadURL
	}
	return nil
}

// Addr names the server (host:port or socket path), without the URL's user
// information, for logs and messages.
func (s *Store) Addr() string { return s.addr }

// Open connects to the Redis at cfg.URL and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil || cfg.URL == "" {
		return nil, ErrBadURL
	}
	opt.CacheSizeEachConn = cacheBytes
	opt.Dialer.Timeout = dialTimeout
	opt.ClientName = "ovosgw"
	// One pipelined connection (auto-pipelining keeps it busy): a
	// replica's writes and its cached reads then share it, and Redis sends
	// the invalidation of a key this replica changed on that connection
	// right after the change's reply, so that barrier can make the replica
	// read its own writes.
	opt.PipelineMultiplex = -1
	rdb, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisstore: connect to %s: %w", addrOf(opt), err)
	}
	s := &Store{rdb: rdb, addr: addrOf(opt), ttl: cfg.CacheTTL, log: cfg.Logger, k: newKeyspace(cfg.Prefix)}
	if s.ttl <= 0 {
		s.ttl = DefaultCacheTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.Ping(ctx); err != nil {
		rdb.Close()
		return nil, err
	}
	return s, nil
}

// bound limits ctx to opTimeout.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// addrOf names the server for an error, without user information.
func addrOf(opt rueidis.ClientOption) string {
	if len(opt.InitAddress) == 0 {
		return "redis"
	}
	return opt.InitAddress[0]
}

// unreachableRetry is the Retry-After of a refusal for want of Redis.
const unreachableRetry = 5 * time.Second

// unreachable is a failure to reach Redis as the caller is told of it: 503
// with Retry-After (what needs the shared state waits for it, never goes
// on without it), the cause kept for the log.
func unreachable(what string, err error) error {
	return &api.Error{
		Code: api.EUNAVAILABLE, Detail: "the gateway's shared state is unreachable; try again shortly",
		RetryAfter: unreachableRetry, Cause: fmt.Errorf("redisstore: %s: %w", what, err),
	}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := s.rdb.Do(ctx, s.rdb.B().Ping().Build()).Error(); err != nil {
		return unreachable("ping", err)
	}
	return nil
}

// barrier returns once every reply and invalidation Redis sent before it
// has been read: after a write, this replica's cache no longer holds what
// the write changed. A failure only delays that until the invalidation
// arrives, so it is not reported.
func (s *Store) barrier(ctx context.Context) {
	_ = s.rdb.Do(ctx, s.rdb.B().Ping().Build()).Error()
}

// Close closes the connections.
func (s *Store) Close() error {
	s.rdb.Close()
	return nil
}

// keyspace names every key the store uses.
type keyspace struct {
	prefix string
}

func newKeyspace(prefix string) keyspace {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return keyspace{prefix: prefix}
}

// The registry's keys share the hash tag {clients}: one slot.
func (k keyspace) clientIDs() string       { return k.prefix + "{clients}:ids" }
func (k keyspace) clientNames() string     { return k.prefix + "{clients}:names" }
func (k keyspace) keyVersions() string     { return k.prefix + "{clients}:key-version" }
func (k keyspace) client(id string) string { return k.prefix + "{clients}:client:" + id }
func (k keyspace) clientChanges() string   { return k.prefix + "{clients}:changes" }
