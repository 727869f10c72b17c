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
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/tokens"
	"github.com/ovosgw/gateway/middleware"
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

// Throttle slows logins down for a client id that keeps failing, from
// whatever address (*bans.Bans): a delay, never a lockout that an attacker
// could use to shut the owner out.
type Throttle interface {
	LoginDelay(clientID string) time.Duration
	LoginFailed(clientID string)
	LoginSucceeded(clientID string)
}

// Config configures Sessions.
type Config struct {
	// AdminTokenHash is the SHA-256 of the admin token; the token itself is
	// not kept. It is 256 random bits, so a fast hash is enough.
	AdminTokenHash [sha256.Size]byte
	Logger         *slog.Logger
	// Throttle, when not nil, slows down repeated failed logins per client.
	Throttle Throttle
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
	return &Sessions{cfg: cfg, tokens: t, clients: c, streams: streams, bridge: bridge, log: cfg.Logger, hashing: make(chan struct{}, cfg.MaxHashing)}, nil
}

var errLogin = api.Errorf(api.EUNAUTHORIZED, "unknown client or wrong access key")

// Refusals of a genuine session that has ended: not a guess, so callers
// need not count them towards a ban.
var (
	ErrClientGone = api.Errorf(api.EUNAUTHORIZED, "the client no longer exists")
	ErrKeyChanged = api.Errorf(api.EUNAUTHORIZED, "the access key was changed; log in again")
)

// Login checks the access key of the client named by id or alias and issues a
// session. An unknown client costs the same time as a wrong key, so the
// answer does not tell which it was.
func (s *Sessions) Login(ctx context.Context, r api.SessionRequest, addr netip.Addr) (api.SessionResponse, error) {
	if len(r.ClientID) > 200 || len(r.AccessKey) > 1024 {
		return api.SessionResponse{}, api.Errorf(api.EINVALID, "client_id or access_key is too long")
	}
	c, err := s.clients.ResolveClient(ctx, r.ClientID)
	known := err == nil
	if err != nil && api.ErrorCode(err) != api.ENOTFOUND {
		return api.SessionResponse{}, err
	}
	// The slow-down is per client, whichever of its names is used.
	throttleKey := r.ClientID
	if known {
		throttleKey = c.ID
	}
	if th := s.cfg.Throttle; th != nil {
		if d := th.LoginDelay(throttleKey); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return api.SessionResponse{}, ctx.Err()
			case <-t.C:
			}
		}
	}
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return api.SessionResponse{}, ctx.Err()
	}
	if !known {
		keys.VerifyDummy(r.AccessKey.Reveal())
		s.loginFailed(throttleKey)
		return api.SessionResponse{}, errLogin
	}
	ok, err := keys.Verify(c.KeyHash, r.AccessKey.Reveal())
	if err != nil {
		return api.SessionResponse{}, err
	}
	if !ok {
		s.loginFailed(c.ID)
		return api.SessionResponse{}, errLogin
	}
	if s.cfg.Throttle != nil {
		s.cfg.Throttle.LoginSucceeded(c.ID)
	}
	tok, claims, err := s.tokens.Issue(c.ID, c.KeyVersion)
	if err != nil {
		return api.SessionResponse{}, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "login", slog.String("client_id", c.ID), slog.String("session_id", claims.SessionID), slog.String("addr", addr.String()))
	return api.SessionResponse{
		Token:     tok,
		TokenType: "Bearer",
		ExpiresIn: int64(time.Until(claims.ExpiresAt).Round(time.Second) / time.Second),
		ExpiresAt: claims.ExpiresAt.UTC(),
		ClientID:  c.ID,
		SessionID: claims.SessionID,
	}, nil
}

func (s *Sessions) loginFailed(clientID string) {
	if s.cfg.Throttle != nil {
		s.cfg.Throttle.LoginFailed(clientID)
	}
}

// VerifySession checks a session token and that its client still exists with
// the key the session was opened with: a deleted client or a rotated key ends
// its sessions at once.
func (s *Sessions) VerifySession(ctx context.Context, token string) (middleware.Identity, error) {
	claims, err := s.tokens.Verify(token)
	if err != nil {
		return middleware.Identity{}, err
	}
	return s.identity(ctx, claims)
}

func (s *Sessions) identity(ctx context.Context, claims tokens.Claims) (middleware.Identity, error) {
	c, err := s.clients.Client(ctx, claims.ClientID)
	if err != nil {
		if api.ErrorCode(err) == api.ENOTFOUND {
			return middleware.Identity{}, ErrClientGone
		}
		return middleware.Identity{}, err
	}
	if c.KeyVersion != claims.KeyVersion {
		return middleware.Identity{}, ErrKeyChanged
	}
	return middleware.Identity{
		ClientID:   claims.ClientID,
		SessionID:  claims.SessionID,
		TokenID:    claims.ID,
		ExpiresAt:  claims.ExpiresAt,
		KeyVersion: claims.KeyVersion,
	}, nil
}

// Logout revokes the session's token, ends its streams and forgets its bus
// session.
func (s *Sessions) Logout(ctx context.Context, id middleware.Identity) error {
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
func (s *Sessions) Ticket(ctx context.Context, id middleware.Identity) (api.TicketResponse, error) {
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
func (s *Sessions) RedeemTicket(ctx context.Context, ticket string) (middleware.Identity, error) {
	claims, err := s.tokens.RedeemTicket(ticket)
	if err != nil {
		return middleware.Identity{}, err
	}
	return s.identity(ctx, claims)
}

// IsAdmin reports whether token is the admin token, in constant time.
func (s *Sessions) IsAdmin(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], s.cfg.AdminTokenHash[:]) == 1
}
