// Package sessions logs clients in and out: it checks access keys against
// their Argon2id hashes, issues and verifies session tokens (and checks on
// every use that the client still exists with the same key), hands out stream
// tickets, and recognises the admin token.
package sessions

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/tokens"
)

// Clients is where sessions look clients up.
type Clients interface {
	ResolveClient(ctx context.Context, idOrAlias string) (store.Client, error)
	Client(ctx context.Context, id string) (store.Client, error)
}

// Kicker ends a session's open streams (the stream hub).
type Kicker interface {
	Kick(clientID, sessionID string, reason error)
}

// Forgetter drops what the bus bridge keeps for a session.
type Forgetter interface {
	ForgetSession(sessionID string)
}

// Throttle slows logins down for a client id from an address that keeps
// failing it (bans.LoginThrottle): a delay, never a lockout, and one that
// falls on the failing addresses, so that wrong keys sprayed for a client
// from elsewhere do not slow the client's own login down.
type Throttle interface {
	LoginDelay(clientID string, addr netip.Addr) time.Duration
	LoginFailed(clientID string, addr netip.Addr)
	LoginSucceeded(clientID string, addr netip.Addr)
}

// Config configures Sessions.
type Config struct {
	// AdminTokenHash is the SHA-256 of the admin token; the token itself is
	// not kept. It is 256 random bits, so a fast hash is enough.
	AdminTokenHash [sha256.Size]byte
	Logger         *slog.Logger
	// Throttle, when not nil, slows down repeated failed logins per client.
	Throttle Throttle
	// Bans, when not nil, is told of every refusal that looks like
	// guessing (see Refused), with the address it came from.
	Bans Banner
	// Refusals, when not nil, is told of every refused credential by reason
	// (the metrics' count).
	Refusals func(reason string)
	// MaxHashing bounds the Argon2id checks running at once (each takes
	// about 19 MiB); default the number of CPUs.
	MaxHashing int
}

// Sessions implements the session routes' logic.
type Sessions struct {
	cfg     Config
	tokens  *tokens.Tokens
	clients Clients
	streams Kicker
	bridge  Forgetter
	log     *slog.Logger
	hashing chan struct{}
	keys    *verifiedKeys
	admin   atomic.Pointer[[sha256.Size]byte] // the admin token's hash, replaced by SetAdminTokenHash
}

// New builds Sessions. streams and bridge may be nil (the command line has
// neither).
func New(cfg Config, t *tokens.Tokens, c Clients, streams Kicker, bridge Forgetter) (*Sessions, error) {
	if t == nil || c == nil {
		return nil, errors.New("sessions: tokens and clients are required")
	}
	if cfg.AdminTokenHash == ([sha256.Size]byte{}) {
		return nil, errors.New("sessions: the admin token hash is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxHashing <= 0 {
		cfg.MaxHashing = runtime.NumCPU()
	}
	s := &Sessions{cfg: cfg, tokens: t, clients: c, streams: streams, bridge: bridge, log: cfg.Logger, hashing: make(chan struct{}, cfg.MaxHashing), keys: newVerifiedKeys()}
	h := cfg.AdminTokenHash
	s.admin.Store(&h)
	return s, nil
}

// SetAdminTokenHash replaces the admin token's hash (a new token made by
// `gateway admin-token reset`): from now on only the new token is the
// admin's. The zero hash is ignored.
func (s *Sessions) SetAdminTokenHash(hash [sha256.Size]byte) {
	if hash == ([sha256.Size]byte{}) {
		return
	}
	s.admin.Store(&hash)
}

// ErrWrongKey refuses an unknown client or a wrong access key (a login, a
// client key credential): a guess, which callers count towards a ban.
var ErrWrongKey = api.Errorf(api.EUNAUTHORIZED, "unknown client or wrong access key")

// Refusals of a genuine session that has ended: not a guess, so callers
// need not count them towards a ban.
var (
	ErrClientGone = api.Errorf(api.EUNAUTHORIZED, "the client no longer exists")
	ErrKeyChanged = api.Errorf(api.EUNAUTHORIZED, "the access key was changed; log in again")
)

// Login checks the access key of the client named by id or alias and issues a
// session. An unknown client costs the same time as a wrong key, so the
// answer does not tell which it was. A refused login is counted
// (Config.Refusals) and held against addr (Config.Bans).
func (s *Sessions) Login(ctx context.Context, r api.SessionRequest, addr netip.Addr) (api.SessionResponse, error) {
	c, err := s.checkKey(ctx, r.ClientID, r.AccessKey.Reveal(), addr)
	if err != nil {
		if api.ErrorCode(err) == api.EUNAUTHORIZED {
			s.refused(ctx, addr, ReasonLogin)
		}
		return api.SessionResponse{}, err
	}
	tok, claims, err := s.tokens.Issue(c.ID, c.KeyVersion)
	if err != nil {
		return api.SessionResponse{}, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "login", slog.String("client_id", c.ID), slog.String("session_id", claims.SessionID), slog.String("addr", addr.String()))
	return sessionResponse(tok, claims), nil
}

// Refresh gives the session id speaks for a new token valid for a full TTL:
// the session (its id, its bus session, its streams) goes on. The token it
// was asked with stays valid until its own expiry, since another tab of the
// same browser may hold it; a logout with any of them ends them all. It is
// how the console stays signed in across a reload and past the first
// token's expiry.
func (s *Sessions) Refresh(ctx context.Context, id api.Identity) (api.SessionResponse, error) {
	if id.Admin || id.SessionID == "" || id.TokenID == "" {
		return api.SessionResponse{}, api.Errorf(api.EUNAUTHORIZED, "only a client's session can be refreshed")
	}
	tok, claims, err := s.tokens.Renew(tokens.Claims{
		ClientID: id.ClientID, SessionID: id.SessionID, ID: id.TokenID, KeyVersion: id.KeyVersion, ExpiresAt: id.ExpiresAt,
	})
	if err != nil {
		return api.SessionResponse{}, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "session refreshed", slog.String("client_id", id.ClientID), slog.String("session_id", id.SessionID))
	return sessionResponse(tok, claims), nil
}

// sessionResponse is the answer to a login or a refresh.
func sessionResponse(tok api.Secret, claims tokens.Claims) api.SessionResponse {
	return api.SessionResponse{
		Token:     tok,
		TokenType: "Bearer",
		ExpiresIn: int64(time.Until(claims.ExpiresAt).Round(time.Second) / time.Second),
		ExpiresAt: claims.ExpiresAt.UTC(),
		ClientID:  claims.ClientID,
		SessionID: claims.SessionID,
	}
}

// checkKey checks the access key of the client named by id or alias, as a
// login does: slowed down per client and address after failures, at most
// MaxHashing Argon2id checks at once, and an unknown client costing the time
// of a wrong key.
func (s *Sessions) checkKey(ctx context.Context, idOrAlias, key string, addr netip.Addr) (store.Client, error) {
	if len(idOrAlias) > 200 || len(key) > 1024 {
		return store.Client{}, api.Errorf(api.EINVALID, "client_id or access_key is too long")
	}
	c, err := s.clients.ResolveClient(ctx, idOrAlias)
	known := err == nil
	if err != nil && api.ErrorCode(err) != api.ENOTFOUND {
		return store.Client{}, err
	}
	// The slow-down is per client, whichever of its names is used.
	throttleKey := idOrAlias
	if known {
		throttleKey = c.ID
	}
	if th := s.cfg.Throttle; th != nil {
		if d := th.LoginDelay(throttleKey, addr); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return store.Client{}, ctx.Err()
			case <-t.C:
			}
		}
	}
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return store.Client{}, ctx.Err()
	}
	if !known {
		keys.VerifyDummy(key)
		s.loginFailed(throttleKey, addr)
		return store.Client{}, ErrWrongKey
	}
	ok, err := keys.Verify(c.KeyHash, key)
	if err != nil {
		return store.Client{}, err
	}
	if !ok {
		s.loginFailed(c.ID, addr)
		return store.Client{}, ErrWrongKey
	}
	if s.cfg.Throttle != nil {
		s.cfg.Throttle.LoginSucceeded(c.ID, addr)
	}
	return c, nil
}

// KeySeparator parts the client from its access key in a client key
// credential, "<client id or alias>:<access key>": what an OpenAI client
// sends as its API key (Authorization: Bearer kitchen:gwk_...). An access
// key alone does not say whose it is, and finding out would cost an Argon2id
// check per client.
const KeySeparator = ":"

// VerifyKey checks a client key credential ("<client id or alias>:<access
// key>", see KeySeparator). The Argon2id check runs once (as a login does,
// throttled and bounded); the verdict is then remembered by the SHA-256 of
// the credential, as tokens are, and a later use checks only that the client
// still exists with the same key. The identity it returns has no session:
// the caller names the conversation. Failures are *api.Error EUNAUTHORIZED
// (ErrWrongKey, ErrClientGone, ErrKeyChanged).
func (s *Sessions) VerifyKey(ctx context.Context, credential string, addr netip.Addr) (api.Identity, error) {
	idOrAlias, key, ok := strings.Cut(credential, KeySeparator)
	if !ok || idOrAlias == "" || !strings.HasPrefix(key, keys.AccessKeyPrefix) || len(credential) > 1300 {
		return api.Identity{}, ErrWrongKey
	}
	h := sha256.Sum256([]byte(credential))
	if k, ok := s.keys.Get(h); ok {
		c, err := s.clients.Client(ctx, k.clientID)
		switch {
		case err == nil && c.KeyVersion == k.keyVersion:
			return api.Identity{ClientID: c.ID, KeyVersion: c.KeyVersion}, nil
		case err == nil:
			s.keys.Remove(h)
			return api.Identity{}, ErrKeyChanged
		case api.ErrorCode(err) == api.ENOTFOUND:
			s.keys.Remove(h)
			return api.Identity{}, ErrClientGone
		default:
			return api.Identity{}, err
		}
	}
	c, err := s.checkKey(ctx, idOrAlias, key, addr)
	if err != nil {
		if api.ErrorCode(err) == api.EINVALID {
			return api.Identity{}, ErrWrongKey
		}
		return api.Identity{}, err
	}
	s.keys.Add(h, verifiedKey{clientID: c.ID, keyVersion: c.KeyVersion})
	return api.Identity{ClientID: c.ID, KeyVersion: c.KeyVersion}, nil
}

func (s *Sessions) loginFailed(clientID string, addr netip.Addr) {
	if s.cfg.Throttle != nil {
		s.cfg.Throttle.LoginFailed(clientID, addr)
	}
}

// VerifySession checks a session token and that its client still exists with
// the key the session was opened with: a deleted client or a rotated key ends
// its sessions at once.
func (s *Sessions) VerifySession(ctx context.Context, token string) (api.Identity, error) {
	claims, err := s.tokens.Verify(token)
	if err != nil {
		return api.Identity{}, err
	}
	return s.identity(ctx, claims)
}

func (s *Sessions) identity(ctx context.Context, claims tokens.Claims) (api.Identity, error) {
	c, err := s.clients.Client(ctx, claims.ClientID)
	if err != nil {
		if api.ErrorCode(err) == api.ENOTFOUND {
			return api.Identity{}, ErrClientGone
		}
		return api.Identity{}, err
	}
	if c.KeyVersion != claims.KeyVersion {
		return api.Identity{}, ErrKeyChanged
	}
	return api.Identity{
		ClientID:   claims.ClientID,
		SessionID:  claims.SessionID,
		TokenID:    claims.ID,
		ExpiresAt:  claims.ExpiresAt,
		KeyVersion: claims.KeyVersion,
	}, nil
}

// Logout revokes the session's token, ends its streams and forgets its bus
// session.
func (s *Sessions) Logout(ctx context.Context, id api.Identity) error {
	err := s.tokens.Revoke(ctx, tokens.Claims{
		ClientID: id.ClientID, SessionID: id.SessionID, ID: id.TokenID, KeyVersion: id.KeyVersion, ExpiresAt: id.ExpiresAt,
	})
	if err != nil {
		return err
	}
	if s.streams != nil {
		s.streams.Kick(id.ClientID, id.SessionID, hub.ErrLoggedOut)
	}
	if s.bridge != nil {
		s.bridge.ForgetSession(id.SessionID)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "logout", slog.String("client_id", id.ClientID), slog.String("session_id", id.SessionID))
	return nil
}

// Ticket issues a single-use stream ticket for the session.
func (s *Sessions) Ticket(ctx context.Context, id api.Identity) (api.TicketResponse, error) {
	t, ttl, err := s.tokens.IssueTicket(tokens.Claims{
		ClientID: id.ClientID, SessionID: id.SessionID, ID: id.TokenID, KeyVersion: id.KeyVersion, ExpiresAt: id.ExpiresAt,
	})
	if err != nil {
		return api.TicketResponse{}, err
	}
	return api.TicketResponse{Ticket: t, ExpiresIn: int64(ttl / time.Second)}, nil
}

// RedeemTicket spends a stream ticket and returns the session it stands for,
// checked like a token (revoked, client gone, key rotated).
func (s *Sessions) RedeemTicket(ctx context.Context, ticket string) (api.Identity, error) {
	claims, err := s.tokens.RedeemTicket(ticket)
	if err != nil {
		return api.Identity{}, err
	}
	return s.identity(ctx, claims)
}

// PeekTicket returns the session a stream ticket stands for, checked as
// RedeemTicket does, without spending the ticket: a stream checks that it
// is the ticket's client's before it redeems it.
func (s *Sessions) PeekTicket(ctx context.Context, ticket string) (api.Identity, error) {
	claims, err := s.tokens.PeekTicket(ticket)
	if err != nil {
		return api.Identity{}, err
	}
	return s.identity(ctx, claims)
}

// IsAdmin reports whether token is the admin token, in constant time.
func (s *Sessions) IsAdmin(token string) bool {
	h := sha256.Sum256([]byte(token))
	want := s.admin.Load()
	return subtle.ConstantTimeCompare(h[:], want[:]) == 1
}
