package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/handlers"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/intentgate"
	"github.com/ovosgw/gateway/internal/redisstore"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/tokens"
)

// clientStore is where the registry of clients lives: the data dir's
// SQLite file, or Redis when GATEWAY_REDIS_URL is set. Watch calls its
// function after a change made elsewhere (the command line, a replica).
type clientStore interface {
	clients.Store
	Watch(ctx context.Context, every time.Duration, fn func())
}

// openRedis connects to GATEWAY_REDIS_URL, saying on stderr (when not nil)
// which server it uses, never the URL's password.
func openRedis(ctx context.Context, cfg config, log *slog.Logger, stderr io.Writer) (*redisstore.Store, error) {
	rs, err := redisstore.Open(ctx, redisstore.Config{URL: cfg.RedisURL.Reveal(), Logger: log})
	if err != nil {
		return nil, err
	}
	if stderr != nil {
		fmt.Fprintf(stderr, "shared state in redis: %s\n", rs.Addr())
	}
	return rs, nil
}

// records is where the command line finds the durable records (clients,
// blacklist, protected intents): the data dir's store, or Redis.
type records interface {
	clients.Store
	blacklist.Store
	intentgate.Store
}

// openRecords opens the durable records where the server keeps them: Redis
// when GATEWAY_REDIS_URL is set, else the data dir the server made. The
// function returned closes them.
func openRecords(ctx context.Context, cfg config, stderr io.Writer) (records, func(), error) {
	if cfg.RedisURL != "" {
		rs, err := openRedis(ctx, cfg, nil, stderr)
		if err != nil {
			return nil, nil, err
		}
		return rs, func() { rs.Close() }, nil
	}
	st, err := openExistingStore(ctx, cfg.DataDir, stderr)
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}

// sharedState is where the state that replicas share lives: the data dir's
// SQLite file and this process's memory, or Redis when GATEWAY_REDIS_URL is
// set. main picks; the services do not know which runs.
type sharedState struct {
	clients     clientStore
	blacklist   blacklist.Store
	intents     intentgate.Store
	revocations tokens.Revocations
	// The rest is nil without Redis: the hub, the tickets and the bridge
	// then keep their state in this process.
	redis      *redisstore.Store
	relay      hub.Relay
	tickets    tokens.TicketStore
	utterances bridge.Shared
	counter    bans.Counter
	streams    *redisstore.Streams
}

// openShared returns the shared state: st, or Redis when GATEWAY_REDIS_URL
// is set (closed by the function returned).
func openShared(ctx context.Context, cfg config, st *store.Store, log *slog.Logger) (*sharedState, func(), error) {
	if cfg.RedisURL == "" {
		return &sharedState{clients: st, blacklist: st, intents: st, revocations: st}, func() {}, nil
	}
	rs, err := openRedis(ctx, cfg, log.With("component", "redis"), nil)
	if err != nil {
		return nil, nil, err
	}
	log.Info("the state replicas share is in redis", slog.String("redis", rs.Addr()))
	// The lease under which this replica's open streams count, taken
	// before any stream opens.
	streams := rs.Streams(0)
	if err := streams.Renew(ctx); err != nil {
		rs.Close()
		return nil, nil, err
	}
	return &sharedState{
		clients: rs, blacklist: rs, intents: rs, revocations: rs.Revocations(),
		redis: rs, relay: rs.Events(hub.DefaultWindow), tickets: rs.Tickets(tokens.MaxTicketsPerClient),
		utterances: rs.Utterances(), counter: rs.Counter(), streams: streams,
	}, func() { rs.Close() }, nil
}

// run starts what the Redis state needs in the background (goBG): the
// events channel delivering to streams, the sweep of utterances whose
// replica died, and the watches of changes made elsewhere (to the clients:
// reloadClients; to the blacklist or the protected intents: reloadAdmin). It
// returns once the events channel is subscribed, or after a few seconds
// (a later subscription catches up).
func (sh *sharedState) run(goBG func(string, func(context.Context) error), streams *hub.Server, br *bridge.Bridge, reloadClients, reloadAdmin func(ctx context.Context), log *slog.Logger) {
	if sh.redis == nil {
		return
	}
	ready := make(chan struct{})
	ev := sh.relay.(*redisstore.Events)
	goBG("redis events", func(ctx context.Context) error {
		ev.Run(ctx, streams, ready)
		return nil
	})
	goBG("redis orphans", func(ctx context.Context) error {
		sh.redis.Utterances().SweepOrphans(ctx, br.EndOrphan)
		return nil
	})
	goBG("redis watch", func(ctx context.Context) error {
		// Changes made by other replicas and the command line.
		sh.redis.Watch(ctx, time.Second, func() { reloadClients(ctx) })
		return nil
	})
	goBG("redis streams lease", func(ctx context.Context) error {
		sh.streams.Run(ctx)
		return nil
	})
	goBG("redis admin watch", func(ctx context.Context) error {
		sh.redis.WatchAdmin(ctx, time.Second, func() { reloadAdmin(ctx) })
		return nil
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		log.Warn("the redis events channel is not subscribed yet; streams catch up once it is")
	}
}

// ready adds Redis to the readiness of the buses: a replica that cannot
// reach the shared state is not ready, and /readyz names it.
type ready struct {
	handlers.Readiness
	redis *redisstore.Store
	up    *atomic.Bool // as Ready last found Redis
}

func (r ready) Ready() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := r.redis.Ping(ctx)
	r.up.Store(err == nil)
	if err != nil {
		return false, "redis unreachable"
	}
	return r.Readiness.Ready()
}

// SharedState implements handlers.SharedReadiness.
func (r ready) SharedState() api.PartState {
	if r.up.Load() {
		return api.PartState{State: api.BusUp}
	}
	return api.PartState{State: api.BusDown}
}

// readiness is the buses' readiness, with Redis's when it is used.
func (sh *sharedState) readiness(buses handlers.Readiness) handlers.Readiness {
	if sh.redis == nil {
		return buses
	}
	return ready{Readiness: buses, redis: sh.redis, up: new(atomic.Bool)}
}
