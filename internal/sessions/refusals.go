package sessions

import (
	"context"
	"errors"
	"net/netip"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/tokens"
)

// Banner counts an address's failed attempts towards a ban of it
// (bans.Bans); reason is for its log.
type Banner interface {
	Failed(ctx context.Context, addr netip.Addr, reason string) (banned bool)
}

// Reasons a credential is refused, as the metrics (gateway_auth_failures_total)
// and the ban log name them; a refused session token is "token-" and its
// tokens.Reason.
const (
	ReasonLogin      = "login"
	ReasonClientKey  = "client-key"
	ReasonAdminToken = "admin-token"
	ReasonClientGone = "client-gone"
	ReasonKeyChanged = "key-changed"
)

// Refused records a credential refused at the edge (a session token, a
// client key credential, the admin token, a stream ticket) from addr: it is
// counted by reason, and, when it looks like guessing (a wrong key, a forged
// or unknown token, a wrong admin token), it counts towards a ban of addr.
// A session that simply ended (expired, logged out, re-keyed, its client
// deleted) is counted but never held against the address. Failed logins
// are recorded by Login itself.
func (s *Sessions) Refused(ctx context.Context, addr netip.Addr, err error) {
	if c := api.ErrorCode(err); c != api.EUNAUTHORIZED && c != api.EFORBIDDEN {
		// Not a refusal of the credential: the check could not be made
		// (shared state out of reach), which is nobody's guess.
		return
	}
	s.refused(ctx, addr, refusalReason(err))
}

func (s *Sessions) refused(ctx context.Context, addr netip.Addr, reason string) {
	if s.cfg.Refusals != nil {
		s.cfg.Refusals(reason)
	}
	if s.cfg.Bans != nil && isGuess(reason) {
		s.cfg.Bans.Failed(ctx, addr, reason)
	}
}

// refusalReason names a refused credential by its error.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, ErrWrongKey):
		// A client key credential on a dialect's route (OpenAI's, Home
		// Assistant's): a login by another name.
		return ReasonClientKey
	case api.ErrorCode(err) == api.EFORBIDDEN:
		// The only refusal of a token that is a 403 (middleware.RequireAdmin).
		return ReasonAdminToken
	case errors.Is(err, ErrClientGone):
		return ReasonClientGone
	case errors.Is(err, ErrKeyChanged):
		return ReasonKeyChanged
	default:
		return "token-" + tokens.Reason(err)
	}
}

// isGuess says whether a refusal looks like guessing rather than a session
// that ended.
func isGuess(reason string) bool {
	switch reason {
	case ReasonLogin, ReasonClientKey, ReasonAdminToken, "token-" + tokens.ReasonInvalid, "token-" + tokens.ReasonMalformed:
		return true
	}
	return false
}
