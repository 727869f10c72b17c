// Package tokens issues and checks the gateway's session tokens (JWT, RFC
// 7519, signed with HS256) and the single-use tickets that open a client's
// event stream from another origin.
//
// Verification follows RFC 8725 (JWT Best Current Practices): the algorithm
// is pinned rather than read from the token (section 3.1), exp, iat, iss and
// aud are required and checked (3.8, 3.9), and a revoked token id is refused.
// A token must also look as Issue makes them: its times are JSON numbers
// (RFC 7519, section 2: NumericDate), it lives no longer than the configured
// TTL (exp - iat, with the leeway), and its header names no critical
// extension, since this verifier understands none (RFC 7515, section
// 4.1.11).
package tokens

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovosgw/gateway/api"
)

// Defaults and limits of Config.
const (
	DefaultIssuer   = "ovos-gateway"
	DefaultAudience = "ovos-gateway"
	DefaultTTL      = time.Hour
	DefaultLeeway   = 5 * time.Second
	MinSecretLen    = 32 // bytes: HS256's hash size (RFC 7518, section 3.2)
	maxLeeway       = time.Minute
	maxTokenLen     = 4096 // ours are about 400 bytes; longer is not ours
	idBytes         = 16   // session and token ids: 128 bits, 22 characters
)

// Reasons, the machine words Reason returns, for metrics labels.
const (
	ReasonExpired   = "expired"
	ReasonRevoked   = "revoked"
	ReasonInvalid   = "invalid"
	ReasonMalformed = "malformed"
)

// Caller-safe details of the EUNAUTHORIZED errors; Reason maps them back.
const (
	detailExpired   = "token expired"
	detailRevoked   = "token revoked"
	detailInvalid   = "invalid token"
	detailMalformed = "malformed token"
	detailTicket    = "invalid or expired ticket"
)

// Config configures Tokens. Zero values take the defaults above.
type Config struct {
	// Secret is the HS256 key: at least MinSecretLen bytes.
	Secret []byte
	// Issuer and Audience are written to and required in every token.
	Issuer   string
	Audience string
	// TTL is how long a token is valid.
	TTL time.Duration
	// Leeway forgives clock skew on exp, nbf and iat (at most a minute).
	Leeway time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Tickets keeps the outstanding stream tickets: the process's own when
	// nil, a shared one (redisstore) for several replicas.
	Tickets TicketStore
}

// RevocationChecker is Revocations shared by several replicas (Redis): it
// answers for a session and its token in one question, and may fail, in
// which case Verify refuses with EUNAVAILABLE rather than let a token
// through.
type RevocationChecker interface {
	RevokedAny(ctx context.Context, ids ...string) (bool, error)
}

// revocationTimeout bounds a shared revocation check; unavailableRetry is
// the Retry-After of a refusal when it could not be made.
const (
	revocationTimeout = 2 * time.Second
	unavailableRetry  = 5 * time.Second
)

// Revocations remembers logged-out sessions (by session id; tokens by token
// id before) until their tokens expire. store.Store
// implements it; a shared implementation lets several gateways agree.
type Revocations interface {
	Revoke(ctx context.Context, jti string, until time.Time) error
	Revoked(jti string) bool
}

// Claims is what a verified token says: the client (sub), the session (sid,
// also the OVOS session id on the bus), the token's own id (jti), and the
// client's key version when it was issued (kv), which must still be current.
type Claims struct {
	ClientID   string
	SessionID  string
	ID         string
	KeyVersion int64
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// jwtClaims is the token's JSON payload.
type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID  string `json:"sid"`
	KeyVersion *int64 `json:"kv"`
}

// Tokens issues and verifies session tokens and stream tickets. It is safe
// for concurrent use.
type Tokens struct {
	cfg      Config
	rev      Revocations
	parser   *jwt.Parser
	tickets  TicketStore
	verified *verifiedCache
}

// New checks cfg, fills its defaults and returns Tokens that record logouts
// in rev.
func New(cfg Config, rev Revocations) (*Tokens, error) {
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("tokens: the signing secret is %d bytes long, at least %d are required", len(cfg.Secret), MinSecretLen)
	}
	if rev == nil {
		return nil, errors.New("tokens: no revocation store")
	}
	if cfg.TTL < 0 || cfg.Leeway < 0 || cfg.Leeway > maxLeeway {
		return nil, fmt.Errorf("tokens: TTL %v or leeway %v out of range (leeway at most %v)", cfg.TTL, cfg.Leeway, maxLeeway)
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg, rev: rev, verified: newVerifiedCache()}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		// One spelling per token: no padding, no stray bits.
		jwt.WithStrictDecoding(),
	)
	t.tickets = cfg.Tickets
	if t.tickets == nil {
		t.tickets = newTickets(t.cfg.Now)
	}
	return t, nil
}

// TTL is how long the tokens Issue makes are valid.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Issue makes a token for a new session of clientID, whose key is at
// keyVersion, and returns it with its claims.
func (t *Tokens) Issue(clientID string, keyVersion int64) (api.Secret, Claims, error) {
	if clientID == "" {
		return "", Claims{}, errors.New("tokens: issue: empty client id")
	}
	sid, err := randomID()
	if err != nil {
		return "", Claims{}, err
	}
	return t.issue(clientID, sid, keyVersion)
}

// issue makes and signs a token of session sid, with a new token id, valid
// for a full TTL from now.
func (t *Tokens) issue(clientID, sid string, keyVersion int64) (api.Secret, Claims, error) {
	jti, err := randomID()
	if err != nil {
		return "", Claims{}, err
	}
	// JWT times are whole seconds (RFC 7519, NumericDate).
	now := t.cfg.Now().UTC().Truncate(time.Second)
	c := Claims{
		ClientID:   clientID,
		SessionID:  sid,
		ID:         jti,
		KeyVersion: keyVersion,
		IssuedAt:   now,
		ExpiresAt:  now.Add(t.cfg.TTL).Truncate(time.Second),
	}
	s, err := t.sign(c)
	if err != nil {
		return "", Claims{}, err
	}
	return api.Secret(s), c, nil
}

// Renew makes a new token for the session c names, valid for a full TTL from
// now: same client, session and key version, a new token id. The old token
// stays valid until its own expiry (another tab of the same browser may hold
// it); Revoke ends every token of the session at once. A revoked session is
// not renewed (a refresh racing a logout loses).
func (t *Tokens) Renew(c Claims) (api.Secret, Claims, error) {
	if c.ClientID == "" || c.SessionID == "" {
		return "", Claims{}, errors.New("tokens: renew: claims without client or session")
	}
	if err := t.checkRevoked(c); err != nil {
		return "", Claims{}, err
	}
	return t.issue(c.ClientID, c.SessionID, c.KeyVersion)
}

// sign encodes and signs c exactly as Issue does.
func (t *Tokens) sign(c Claims) (string, error) {
	kv := c.KeyVersion
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   c.ClientID,
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(c.IssuedAt),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		SessionID:  c.SessionID,
		KeyVersion: &kv,
	})
	s, err := tok.SignedString(t.cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("tokens: sign: %w", err)
	}
	return s, nil
}

// Verify checks token and returns its claims. Every failure is an
// *api.Error EUNAUTHORIZED whose detail is safe to show ("token expired",
// "token revoked", "invalid token", "malformed token"); Reason names it for
// metrics. Whether the client still exists with this key version is the
// caller's check. A token that verified once is remembered (verified.go):
// its next checks are only expiry and revocation.
func (t *Tokens) Verify(token string) (Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return Claims{}, unauthorized(detailMalformed)
	}
	key := tokenKey(token)
	if c, ok := t.verified.Get(key); ok {
		// As the parser decides exp: valid while now < exp + leeway.
		if !t.cfg.Now().Before(c.ExpiresAt.Add(t.cfg.Leeway)) {
			return Claims{}, unauthorized(detailExpired)
		}
		if err := t.checkRevoked(c); err != nil {
			return Claims{}, err
		}
		return c, nil
	}
	var jc jwtClaims
	_, err := t.parser.ParseWithClaims(token, &jc, t.key)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, unauthorized(detailMalformed)
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Claims are only validated after the signature checked out, so an
		// expired token here is one of ours.
		return Claims{}, unauthorized(detailExpired)
	default:
		return Claims{}, unauthorized(detailInvalid)
	}
	// Required beyond what the parser checks: a token without these was not
	// made by Issue.
	if jc.IssuedAt == nil || jc.Subject == "" || jc.ID == "" || jc.SessionID == "" || jc.KeyVersion == nil {
		return Claims{}, unauthorized(detailInvalid)
	}
	// A token longer-lived than Issue makes them (an exp far in the future)
	// was not made by Issue either, whatever signed it.
	if jc.ExpiresAt.Sub(jc.IssuedAt.Time) > t.cfg.TTL+t.cfg.Leeway {
		return Claims{}, unauthorized(detailInvalid)
	}
	// The parser takes a time written as a string ("exp":"9999999999").
	if !numericTimes(token) {
		return Claims{}, unauthorized(detailInvalid)
	}
	c := Claims{
		ClientID:   jc.Subject,
		SessionID:  jc.SessionID,
		ID:         jc.ID,
		KeyVersion: *jc.KeyVersion,
		IssuedAt:   jc.IssuedAt.UTC(),
		ExpiresAt:  jc.ExpiresAt.UTC(),
	}
	if err := t.checkRevoked(c); err != nil {
		return Claims{}, err
	}
	t.verified.Add(key, c)
	return c, nil
}

// key returns the HS256 secret, and refuses any other algorithm even if the
// parser's own pin were lifted (RFC 8725, section 2.1: algorithm confusion).
func (t *Tokens) key(tok *jwt.Token) (any, error) {
	if tok.Method != jwt.SigningMethodHS256 {
		return nil, errors.New("unexpected signing method")
	}
	// RFC 7515, section 4.1.11: a recipient that does not understand a
	// critical extension must refuse the token; this one understands none.
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("critical header extension")
	}
	return t.cfg.Secret, nil
}

// numericTimes says whether the times of a token's payload (exp, iat, nbf),
// where present, are JSON numbers. The payload has already been parsed, so
// it is valid base64url JSON.
func numericTimes(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return false
	}
	for name, raw := range claims {
		// encoding/json matches member names regardless of case, so "EXP"
		// is an exp too.
		switch strings.ToLower(name) {
		case "exp", "iat", "nbf":
			if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
				return false
			}
		}
	}
	return true
}

// Revoke ends the session of c at once: every token of the session (the
// one it was issued with and those Renew made since) is refused from now
// on, and so are the stream tickets they obtained. The revocation is kept
// until the session's newest token would have expired anyway.
//
// A session is revoked under its id, where older versions revoked a token
// under its token id (both are still honoured): the two are 128-bit random
// ids from one generator, so they share the Revocations' key space safely.
func (t *Tokens) Revoke(ctx context.Context, c Claims) error {
	if c.SessionID == "" {
		return api.Errorf(api.EINVALID, "claims without session id")
	}
	until := t.cfg.Now().Add(t.cfg.TTL)
	if c.ExpiresAt.After(until) {
		until = c.ExpiresAt
	}
	if err := t.rev.Revoke(ctx, c.SessionID, until.Add(t.cfg.Leeway)); err != nil {
		return fmt.Errorf("tokens: revoke: %w", err)
	}
	return nil
}

// checkRevoked refuses c when its session, or its token alone, was
// revoked: EUNAUTHORIZED "token revoked". Revocations shared by several
// replicas (RevocationChecker) may not answer: that is EUNAVAILABLE, never
// a token let through.
func (t *Tokens) checkRevoked(c Claims) error {
	if rc, ok := t.rev.(RevocationChecker); ok {
		ctx, cancel := context.WithTimeout(context.Background(), revocationTimeout)
		defer cancel()
		revoked, err := rc.RevokedAny(ctx, c.SessionID, c.ID)
		switch {
		case err != nil:
			return &api.Error{Code: api.EUNAVAILABLE, Detail: "the gateway's shared state is unreachable; try again shortly", RetryAfter: unavailableRetry}
		case revoked:
			return unauthorized(detailRevoked)
		}
		return nil
	}
	if t.rev.Revoked(c.SessionID) || t.rev.Revoked(c.ID) {
		return unauthorized(detailRevoked)
	}
	return nil
}

// Reason returns the machine word for a Verify, RedeemTicket or IssueTicket
// failure: ReasonExpired, ReasonRevoked, ReasonMalformed or ReasonInvalid;
// "" for nil.
func Reason(err error) string {
	var e *api.Error
	switch {
	case err == nil:
		return ""
	case !errors.As(err, &e):
		return ReasonInvalid
	}
	switch e.Detail {
	case detailExpired:
		return ReasonExpired
	case detailRevoked:
		return ReasonRevoked
	case detailMalformed:
		return ReasonMalformed
	default:
		return ReasonInvalid
	}
}

func unauthorized(detail string) *api.Error {
	return &api.Error{Code: api.EUNAUTHORIZED, Detail: detail}
}

// randomID returns 128 random bits in unpadded base64url (22 characters).
func randomID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tokens: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
