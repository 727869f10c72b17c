package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/redisstore"
	"github.com/ovosgw/gateway/internal/store"
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
		fmt.Fprintf(stderr, "clients in redis: %s\n", rs.Addr())
	}
	return rs, nil
}

// openClientStore returns the registry's store: st, or Redis when
// GATEWAY_REDIS_URL is set (closed by the function returned).
func openClientStore(ctx context.Context, cfg config, st *store.Store, log *slog.Logger) (clientStore, func(), error) {
	if cfg.RedisURL == "" {
		return st, func() {}, nil
	}
	rs, err := openRedis(ctx, cfg, log.With("component", "redis"), nil)
	if err != nil {
		return nil, nil, err
	}
	log.Info("the registry of clients is in redis", slog.String("redis", rs.Addr()))
	return rs, func() { rs.Close() }, nil
}
