package middleware

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
)

// RequestIDHeader carries the request id back to the caller, who can quote it
// in a bug report.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID gives every request a fresh random id, in the context and in the
// X-Request-Id response header. An id sent by the client is not trusted: it
// would let anyone write what they like into our logs.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestIDFrom returns the request id set by RequestID, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
