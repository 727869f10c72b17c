package middleware

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
)

// ErrBodyTimeout is what reading a request body returns once the client has
// taken longer than BodyTimeout allows to send it: an *api.Error ETIMEOUT
// (408), so that whoever reads the body (the JSON decoder) knows it by its
// code without importing this package.
var ErrBodyTimeout = api.Errorf(api.ETIMEOUT, "the body did not arrive in time")

// BodyTimeout bounds the time a client may take to send its request body to
// d, counted from here (the headers are bounded by the server's
// ReadHeaderTimeout): without it a client sending a body a byte at a time
// holds a connection and a goroutine for as long as it likes. The deadline
// is the connection's read deadline, lifted as soon as the whole body has
// been read, so that a handler that then waits (?wait=) is not cut off. The event
// stream has no body and is not under it.
func BodyTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
				// A writer without deadlines (a recorder in tests).
				next.ServeHTTP(w, r)
				return
			}
			r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			next.ServeHTTP(w, r)
		})
	}
}

// deadlineBody lifts the read deadline once the whole body is in, and names
// a deadline that passed ErrBodyTimeout. On any other end (too large, cut
// off, not read at all) the deadline stays: it also bounds what the server
// reads of an unread body after the handler, before it answers.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(b.lift)
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = ErrBodyTimeout
	}
	return n, err
}
