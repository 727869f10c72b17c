// Package problem writes errors as RFC 9457 problem details
// (application/problem+json): the one error path of the HTTP API. The caller
// sees a code, a title and a safe detail; the cause is kept on the request
// for the access log, never shown.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ovosgw/gateway/api"
)

// ContentType is the media type of every error body (RFC 9457 section 3).
const ContentType = "application/problem+json"

// Status returns the HTTP status for an error code.
func Status(code string) int {
	switch code {
	case api.EINVALID:
		return http.StatusBadRequest
	case api.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case api.EFORBIDDEN, api.EPASSWORDREQUIRED, api.EPASSWORDINVALID, api.EBLACKLISTED:
		return http.StatusForbidden
	case api.ENOTFOUND:
		return http.StatusNotFound
	case api.EMETHOD:
		return http.StatusMethodNotAllowed
	case api.ECONFLICT:
		return http.StatusConflict
	case api.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case api.ETIMEOUT:
		return http.StatusRequestTimeout
	case api.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case api.ERATELIMITED:
		return http.StatusTooManyRequests
	case api.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case api.EASSISTANT:
		return http.StatusBadGateway
	case api.EASSISTANTTIMEOUT:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// Write sends err as a problem+json response. An *api.Error is shown with
// its code and detail; any other error becomes a generic 500 whose cause is
// only recorded (see Record) for the access log.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	Record(r.Context(), err)
	code := api.ErrorCode(err)
	status := Status(code)
	var e *api.Error
	errors.As(err, &e)

	h := w.Header()
	if status == http.StatusUnauthorized {
		// RFC 6750 section 3: a 401 names the scheme it wants.
		h.Set("WWW-Authenticate", `Bearer realm="gateway"`)
	}
	if e != nil && e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	} else if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", "5")
	}
	p := api.Problem{
		Type:   api.ProblemTypePrefix + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: api.ErrorDetail(err),
	}
	if e != nil {
		p.Intent = e.Intent
	}
	var body any = p
	if shape, ok := r.Context().Value(shapeKey{}).(Shape); ok {
		body = shape(p, err)
	}
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Shape turns a problem into the body a route of another API's dialect
// sends: the problem's members, plus what that dialect's clients read (an
// OpenAI client reads an "error" object). err is the refusal, for the
// dialect's own details; its cause is never to be shown.
type Shape func(p api.Problem, err error) any

type shapeKey struct{}

// WithShape returns ctx under which Write sends its problems through shape:
// set by a middleware in front of a dialect's routes, so that every refusal
// on them, by the authentication, the limits or the handler, speaks it.
func WithShape(ctx context.Context, shape Shape) context.Context {
	return context.WithValue(ctx, shapeKey{}, shape)
}

type causeKey struct{}

// Cause is a per-request slot where the error path records what went wrong,
// so that the access log can say it in its one line.
type Cause struct{ Err error }

// WithCause returns a context carrying an empty Cause slot and the slot.
func WithCause(ctx context.Context) (context.Context, *Cause) {
	c := &Cause{}
	return context.WithValue(ctx, causeKey{}, c), c
}

// Record keeps err in the request's Cause slot, if there is one.
func Record(ctx context.Context, err error) {
	if c, ok := ctx.Value(causeKey{}).(*Cause); ok && err != nil {
		c.Err = err
	}
}
