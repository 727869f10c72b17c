package api

import (
	"context"
	"time"
)

// Identity is who a request speaks for, settled once at the edge (the
// authentication middleware, or the stream's cookie and ticket): a client's
// session, a client's key without a session, or the admin. It lives here,
// in the vocabulary, so that the services that act for a client take it
// without importing the HTTP layer.
type Identity struct {
	ClientID  string
	SessionID string
	TokenID   string
	ExpiresAt time.Time
	// KeyVersion is the client's key generation the session was issued for.
	KeyVersion int64
	Admin      bool
}

type identityKey struct{}

// IdentityFrom returns the identity settled for the request whose context
// ctx is.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id. At the HTTP edge use
// middleware.SettleIdentity, which also names the client in the access log.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}
