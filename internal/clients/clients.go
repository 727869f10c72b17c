// Package clients is the client registry as the API and the command line use
// it: profiles, names and aliases, creation with a fresh access key (shown
// once, stored only as its Argon2id hash), key rotation and deletion, each of
// which ends what the client had open.
package clients

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
)

// Store is the persistence the registry uses.
type Store interface {
	CreateClient(ctx context.Context, c store.Client) error
	Client(ctx context.Context, id string) (store.Client, error)
	ResolveClient(ctx context.Context, idOrAlias string) (store.Client, error)
	Clients(ctx context.Context) ([]store.Client, error)
	DeleteClient(ctx context.Context, id string) error
	SetNames(ctx context.Context, id, name string, aliases []string) (store.Client, error)
	SetKey(ctx context.Context, id, keyHash string) (store.Client, error)
}

// Streams ends a client's open streams (the stream hub).
type Streams interface {
	Kick(clientID, sessionID string, reason error)
	Forget(clientID string)
	// KickStale ends the client's streams opened with another key version
	// than keyVersion; Watched lists the clients with open streams.
	KickStale(clientID string, keyVersion int64)
	Watched() []string
}

// Registry implements the client routes and commands.
type Registry struct {
	store   Store
	streams Streams
	// forgets are told of every client that left (OnForget): the bus
	// bridge, built after the registry since it resolves names through it.
	forgets  atomic.Pointer[[]func(clientID string)]
	forgetMu sync.Mutex // held by OnForget
	log      *slog.Logger
	known    map[string]time.Time // id -> creation time, as last seen by Sync
}

// New builds a Registry. streams may be nil (the command line).
func New(st Store, streams Streams, log *slog.Logger) (*Registry, error) {
	if st == nil {
		return nil, errors.New("clients: a store is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{store: st, streams: streams, log: log}
	r.forgets.Store(&[]func(string){})
	return r, nil
}

// OnForget registers fn to be told of every client that leaves (deleted,
// here or by another process), so that it can drop what it kept for it:
// the bus bridge registers its ForgetClient. It exists so that the bridge,
// which resolves names through the registry, can be built after it; call it
// before the registry is in use.
func (r *Registry) OnForget(fn func(clientID string)) {
	r.forgetMu.Lock()
	defer r.forgetMu.Unlock()
	old := *r.forgets.Load()
	next := append(old[:len(old):len(old)], fn)
	r.forgets.Store(&next)
}

func profile(c store.Client) api.ClientProfile {
	return api.ClientProfile{ID: c.ID, Name: c.Name, Aliases: nonNil(c.Aliases)}
}

func adminView(c store.Client) api.AdminClient {
	return api.AdminClient{ID: c.ID, Name: c.Name, Aliases: nonNil(c.Aliases), CreatedAt: c.CreatedAt.UTC()}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Profile returns a client's id, name and aliases.
func (r *Registry) Profile(ctx context.Context, id string) (api.ClientProfile, error) {
	c, err := r.store.Client(ctx, id)
	if err != nil {
		return api.ClientProfile{}, err
	}
	return profile(c), nil
}

// SetNames sets a client's display name and aliases (the seed's names on
// connect). An empty name falls back to the id.
func (r *Registry) SetNames(ctx context.Context, id string, req api.NamesRequest) (api.ClientProfile, error) {
	c, err := r.setNames(ctx, id, req)
	if err != nil {
		return api.ClientProfile{}, err
	}
	return profile(c), nil
}

// Rename is SetNames for the admin, who sees the whole client.
func (r *Registry) Rename(ctx context.Context, id string, req api.NamesRequest) (api.AdminClient, error) {
	c, err := r.setNames(ctx, id, req)
	if err != nil {
		return api.AdminClient{}, err
	}
	return adminView(c), nil
}

func (r *Registry) setNames(ctx context.Context, id string, req api.NamesRequest) (store.Client, error) {
	name, aliases, err := store.NormalizeNames(orDefault(req.Name, id), req.Aliases)
	if err != nil {
		return store.Client{}, err
	}
	return r.store.SetNames(ctx, id, name, aliases)
}

// Resolve maps an id or alias to the client's id.
func (r *Registry) Resolve(ctx context.Context, idOrAlias string) (string, error) {
	c, err := r.store.ResolveClient(ctx, idOrAlias)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// List returns every client, for the admin.
func (r *Registry) List(ctx context.Context) ([]api.AdminClient, error) {
	cs, err := r.store.Clients(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.AdminClient, len(cs))
	for i, c := range cs {
		out[i] = adminView(c)
	}
	return out, nil
}

// Create registers a client and returns its access key, this once.
func (r *Registry) Create(ctx context.Context, req api.CreateClientRequest) (api.ClientKeyResponse, error) {
	if !store.ValidID(req.ID) {
		return api.ClientKeyResponse{}, api.Errorf(api.EINVALID, "id must be 1 to 63 lowercase letters, digits, '-' or '_'")
	}
	name, aliases, err := store.NormalizeNames(orDefault(req.Name, req.ID), req.Aliases)
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	key, err := keys.NewAccessKey()
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	hash, err := keys.Hash(key.Reveal())
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	c := store.Client{ID: req.ID, Name: name, Aliases: aliases, KeyHash: hash, CreatedAt: time.Now().UTC()}
	if err := r.store.CreateClient(ctx, c); err != nil {
		return api.ClientKeyResponse{}, err
	}
	c, err = r.store.Client(ctx, req.ID)
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "client created", slog.String("client_id", c.ID))
	return keyResponse(c, key), nil
}

func keyResponse(c store.Client, key api.Secret) api.ClientKeyResponse {
	return api.ClientKeyResponse{ID: c.ID, Name: c.Name, Aliases: nonNil(c.Aliases), CreatedAt: c.CreatedAt.UTC(), AccessKey: key}
}

// Delete removes a client; its sessions stop working and its streams end.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if err := r.store.DeleteClient(ctx, id); err != nil {
		return err
	}
	r.forget(id)
	r.log.LogAttrs(ctx, slog.LevelInfo, "client deleted", slog.String("client_id", id))
	return nil
}

func (r *Registry) forget(id string) {
	if r.streams != nil {
		r.streams.Forget(id)
	}
	for _, fn := range *r.forgets.Load() {
		fn(id)
	}
}

// RotateKey gives a client a new access key (returned this once); sessions
// opened with the old key end at once.
func (r *Registry) RotateKey(ctx context.Context, id string) (api.ClientKeyResponse, error) {
	key, err := keys.NewAccessKey()
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	hash, err := keys.Hash(key.Reveal())
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	c, err := r.store.SetKey(ctx, id, hash)
	if err != nil {
		return api.ClientKeyResponse{}, err
	}
	if r.streams != nil {
		r.streams.Kick(id, "", hub.ErrKicked)
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "client key rotated", slog.String("client_id", id))
	return keyResponse(c, key), nil
}

// Sync brings what the server holds in step with the clients in the store,
// after a change by another process (the command line): every open stream
// whose client is gone ends, and so does every stream opened with a key
// that is no longer its client's, however many changes happened since the
// last call (a client created, re-keyed and re-keyed again in between). A
// client deleted since the last call, or deleted and created again under
// the same id, is forgotten: its streams, its replay window (which the new
// client must not read) and what the bus bridge kept for it. Call it from
// one goroutine (store.Watch's callback).
func (r *Registry) Sync(ctx context.Context) error {
	cs, err := r.store.Clients(ctx)
	if err != nil {
		return err
	}
	now := make(map[string]time.Time, len(cs))
	for _, c := range cs {
		now[c.ID] = c.CreatedAt
	}
	for id, created := range r.known {
		if c, ok := now[id]; !ok || !c.Equal(created) {
			r.forget(id)
		}
	}
	if r.streams != nil {
		for _, id := range r.streams.Watched() {
			// Looked up again, not taken from cs: a stream opened with a
			// key given since must not be taken for a stale one.
			c, err := r.store.Client(ctx, id)
			switch {
			case err == nil:
				r.streams.KickStale(id, c.KeyVersion)
			case api.ErrorCode(err) == api.ENOTFOUND:
				r.forget(id)
			default:
				return err
			}
		}
	}
	r.known = now
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
