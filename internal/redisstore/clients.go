package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/store"
)

// The registry of clients in Redis:
//
//	{clients}:ids          set of client ids
//	{clients}:names        hash: id or alias -> client id (one namespace)
//	{clients}:key-version  counter of key versions, never reused
//	{clients}:changes      counter of changes, which Watch follows
//	{clients}:client:<id>  hash: name, aliases (JSON), key_hash (Argon2id),
//	                       key_version, created_at (Unix ms)
//
// Only the hash of an access key is ever written. Every change is one Lua
// script, so that two replicas racing for one id or alias leave exactly one
// client holding it, and a reader never sees half a change.

// Error replies of the scripts, mapped to api errors by scriptErr.
const (
	replyConflict = "GWCONFLICT "
	replyNotFound = "GWNOTFOUND"
)

// createScript: KEYS ids, names, key-version, client, changes; ARGV id, name,
// aliases JSON, key hash, created_at, then the aliases one by one.
var createScript = rueidis.NewLuaScript(`
for i = 6, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then return redis.error_reply('` + replyConflict + `' .. ARGV[i]) end
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return redis.error_reply('` + replyConflict + `' .. ARGV[1])
end
local kv = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], 'name', ARGV[2], 'aliases', ARGV[3], 'key_hash', ARGV[4], 'key_version', kv, 'created_at', ARGV[5])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[1])
for i = 6, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end
redis.call('INCR', KEYS[5])
return kv
`)

// deleteScript: KEYS ids, names, client, changes; ARGV id.
var deleteScript = rueidis.NewLuaScript(`
local aliases = redis.call('HGET', KEYS[3], 'aliases')
if not aliases then return redis.error_reply('` + replyNotFound + `') end
for _, a in ipairs(cjson.decode(aliases)) do
  if redis.call('HGET', KEYS[2], a) == ARGV[1] then redis.call('HDEL', KEYS[2], a) end
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('INCR', KEYS[4])
return 1
`)

// setNamesScript: KEYS names, client, changes; ARGV id, name, aliases JSON, then the
// aliases one by one.
var setNamesScript = rueidis.NewLuaScript(`
local old = redis.call('HGET', KEYS[2], 'aliases')
if not old then return redis.error_reply('` + replyNotFound + `') end
for i = 4, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return redis.error_reply('` + replyConflict + `' .. ARGV[i]) end
end
for _, a in ipairs(cjson.decode(old)) do
  if redis.call('HGET', KEYS[1], a) == ARGV[1] then redis.call('HDEL', KEYS[1], a) end
end
for i = 4, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('HSET', KEYS[2], 'name', ARGV[2], 'aliases', ARGV[3])
redis.call('INCR', KEYS[3])
return 1
`)

// setKeyScript: KEYS key-version, client, changes; ARGV key hash.
var setKeyScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('` + replyNotFound + `') end
local kv = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'key_hash', ARGV[1], 'key_version', kv)
redis.call('INCR', KEYS[3])
return kv
`)

// scriptErr turns a script's error reply into the api error it stands for.
func scriptErr(err error, id, what string) error {
	if re, ok := rueidis.IsRedisErr(err); ok {
		msg := re.Error()
		if name, ok := strings.CutPrefix(msg, replyConflict); ok {
			return api.Errorf(api.ECONFLICT, "%s is already an id or alias of another client", strconv.Quote(name))
		}
		if msg == replyNotFound {
			return notFound(id)
		}
	}
	return unreachable(what, err)
}

func notFound(idOrAlias string) error {
	return api.Errorf(api.ENOTFOUND, "client %s not found", quote(idOrAlias))
}

// quote renders a caller's id for an error: quoted and cut short.
func quote(s string) string {
	if len(s) > store.MaxIDLen {
		return strconv.Quote(s[:store.MaxIDLen]) + "..."
	}
	return strconv.Quote(s)
}

// CreateClient registers c, refusing (ECONFLICT) an id or alias that is
// already an id or alias of any client, atomically across replicas. Names
// are normalised as store.Store.CreateClient does; the key version is the
// store's to give; CreatedAt defaults to now.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	c, err := store.NormalizeClient(c, time.Now())
	if err != nil {
		return err
	}
	name, aliases := c.Name, c.Aliases
	aj, err := json.Marshal(aliases)
	if err != nil {
		return err
	}
	args := append([]string{c.ID, name, string(aj), c.KeyHash, strconv.FormatInt(c.CreatedAt.UnixMilli(), 10)}, aliases...)
	k := []string{s.k.clientIDs(), s.k.clientNames(), s.k.keyVersions(), s.k.client(c.ID), s.k.clientChanges()}
	if err := createScript.Exec(ctx, s.rdb, k, args).Error(); err != nil {
		return scriptErr(err, c.ID, "create client")
	}
	s.barrier(ctx)
	return nil
}

// Client returns the client with this id, or ENOTFOUND, from the
// client-side cache when it holds the record.
func (s *Store) Client(ctx context.Context, id string) (store.Client, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	c, ok, err := s.record(ctx, id, true)
	if err != nil {
		return store.Client{}, err
	}
	if !ok {
		// A client just created through another replica must not stay
		// unknown here until the cache hears of it: ask Redis itself.
		if c, ok, err = s.record(ctx, id, false); err != nil {
			return store.Client{}, err
		} else if !ok {
			return store.Client{}, notFound(id)
		}
	}
	return c, nil
}

// ResolveClient returns the client whose id or alias is idOrAlias, or
// ENOTFOUND.
func (s *Store) ResolveClient(ctx context.Context, idOrAlias string) (store.Client, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !store.ValidID(idOrAlias) {
		return store.Client{}, notFound(idOrAlias)
	}
	for _, cached := range []bool{true, false} {
		id, ok, err := s.owner(ctx, idOrAlias, cached)
		if err != nil {
			return store.Client{}, err
		}
		if !ok {
			continue
		}
		c, ok, err := s.record(ctx, id, cached)
		if err != nil {
			return store.Client{}, err
		}
		if ok {
			return c, nil
		}
	}
	return store.Client{}, notFound(idOrAlias)
}

// owner returns the id that name (an id or alias) belongs to.
func (s *Store) owner(ctx context.Context, name string, cached bool) (string, bool, error) {
	var res rueidis.RedisResult
	if cached {
		res = s.rdb.DoCache(ctx, s.rdb.B().Hget().Key(s.k.clientNames()).Field(name).Cache(), s.ttl)
	} else {
		res = s.rdb.Do(ctx, s.rdb.B().Hget().Key(s.k.clientNames()).Field(name).Build())
	}
	id, err := res.ToString()
	if rueidis.IsRedisNil(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unreachable("resolve client", err)
	}
	return id, true, nil
}

// record reads a client's hash, through the client-side cache or not.
func (s *Store) record(ctx context.Context, id string, cached bool) (store.Client, bool, error) {
	if !store.ValidID(id) {
		return store.Client{}, false, nil
	}
	var res rueidis.RedisResult
	if cached {
		res = s.rdb.DoCache(ctx, s.rdb.B().Hgetall().Key(s.k.client(id)).Cache(), s.ttl)
	} else {
		res = s.rdb.Do(ctx, s.rdb.B().Hgetall().Key(s.k.client(id)).Build())
	}
	m, err := res.AsStrMap()
	if err != nil {
		return store.Client{}, false, unreachable("read client", err)
	}
	if len(m) == 0 {
		return store.Client{}, false, nil
	}
	c, err := decode(id, m)
	if err != nil {
		return store.Client{}, false, err
	}
	return c, true, nil
}

// decode builds a client from its hash.
func decode(id string, m map[string]string) (store.Client, error) {
	c := store.Client{ID: id, Name: m["name"], KeyHash: m["key_hash"]}
	kv, err1 := strconv.ParseInt(m["key_version"], 10, 64)
	ms, err2 := strconv.ParseInt(m["created_at"], 10, 64)
	err3 := json.Unmarshal([]byte(m["aliases"]), &c.Aliases)
	if err := errors.Join(err1, err2, err3); err != nil || c.KeyHash == "" {
		return store.Client{}, fmt.Errorf("redisstore: the record of client %s is damaged: %v", quote(id), err)
	}
	if c.Aliases == nil {
		c.Aliases = []string{}
	}
	c.KeyVersion, c.CreatedAt = kv, time.UnixMilli(ms).UTC()
	return c, nil
}

// Clients returns every client, sorted by id.
func (s *Store) Clients(ctx context.Context) ([]store.Client, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	ids, err := s.rdb.Do(ctx, s.rdb.B().Smembers().Key(s.k.clientIDs()).Build()).AsStrSlice()
	if err != nil {
		return nil, unreachable("list clients", err)
	}
	slices.Sort(ids)
	cmds := make(rueidis.Commands, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, s.rdb.B().Hgetall().Key(s.k.client(id)).Build())
	}
	out := make([]store.Client, 0, len(ids))
	for i, res := range s.rdb.DoMulti(ctx, cmds...) {
		m, err := res.AsStrMap()
		if err != nil {
			return nil, unreachable("list clients", err)
		}
		if len(m) == 0 {
			continue // deleted since SMEMBERS
		}
		c, err := decode(ids[i], m)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteClient removes the client and frees its names, or fails with
// ENOTFOUND.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !store.ValidID(id) {
		return notFound(id)
	}
	k := []string{s.k.clientIDs(), s.k.clientNames(), s.k.client(id), s.k.clientChanges()}
	if err := deleteScript.Exec(ctx, s.rdb, k, []string{id}).Error(); err != nil {
		return scriptErr(err, id, "delete client")
	}
	s.barrier(ctx)
	return nil
}

// SetNames replaces the client's display name and aliases (normalised as in
// CreateClient) and returns the client. It fails with ENOTFOUND, EINVALID,
// or ECONFLICT when an alias is an id or alias of another client.
func (s *Store) SetNames(ctx context.Context, id, name string, aliases []string) (store.Client, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !store.ValidID(id) {
		return store.Client{}, notFound(id)
	}
	name, aliases, err := store.NormalizeFor(id, name, aliases)
	if err != nil {
		return store.Client{}, err
	}
	aj, err := json.Marshal(aliases)
	if err != nil {
		return store.Client{}, err
	}
	k := []string{s.k.clientNames(), s.k.client(id), s.k.clientChanges()}
	if err := setNamesScript.Exec(ctx, s.rdb, k, append([]string{id, name, string(aj)}, aliases...)).Error(); err != nil {
		return store.Client{}, scriptErr(err, id, "set names")
	}
	return s.fresh(ctx, id)
}

// SetKey replaces the client's key hash, gives it a new key version (which
// ends every session of the old key) and returns the client.
func (s *Store) SetKey(ctx context.Context, id, keyHash string) (store.Client, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if keyHash == "" {
		return store.Client{}, api.Errorf(api.EINVALID, "empty key hash")
	}
	if !store.ValidID(id) {
		return store.Client{}, notFound(id)
	}
	k := []string{s.k.keyVersions(), s.k.client(id), s.k.clientChanges()}
	if err := setKeyScript.Exec(ctx, s.rdb, k, []string{keyHash}).Error(); err != nil {
		return store.Client{}, scriptErr(err, id, "set key")
	}
	return s.fresh(ctx, id)
}

// fresh reads the record just written from Redis, not the cache; its reply
// comes after the write's invalidation, so it is a barrier too.
func (s *Store) fresh(ctx context.Context, id string) (store.Client, error) {
	c, ok, err := s.record(ctx, id, false)
	if err != nil {
		return store.Client{}, err
	}
	if !ok {
		return store.Client{}, notFound(id) // deleted in between
	}
	return c, nil
}

// Watch calls fn, from its own goroutine, after each check every interval
// that finds the registry changed (by this replica, another one, or the
// command line), until ctx ends. The check reads the change counter
// through the client-side cache, so an idle registry costs Redis nothing:
// Redis invalidates the cached counter when a change bumps it. A failed
// check (Redis away) is tried again on the next tick.
func (s *Store) Watch(ctx context.Context, every time.Duration, fn func()) {
	s.watchCounter(ctx, s.k.clientChanges(), "clients", every, fn)
}

// watchCounter calls fn, from its own goroutine, after each check every
// interval that finds the counter at key changed, until ctx ends. It reads
// the counter through the client-side cache, so that a quiet counter costs
// Redis nothing: Redis invalidates the cached copy when a change bumps it.
// A failed check (Redis away) is tried again on the next tick.
func (s *Store) watchCounter(ctx context.Context, key, what string, every time.Duration, fn func()) {
	if every <= 0 {
		every = time.Second
	}
	seen, _ := s.counter(ctx, key)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.counter(ctx, key)
		if err != nil {
			s.log.Warn("redis: checking for changes", slog.String("what", what), slog.Any("err", err))
			continue
		}
		if n != seen {
			seen = n
			fn()
		}
	}
}

// counter reads a change counter (0 before any change).
func (s *Store) counter(ctx context.Context, key string) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	n, err := s.rdb.DoCache(ctx, s.rdb.B().Get().Key(key).Cache(), s.ttl).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	return n, err
}
