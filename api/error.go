package api

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error codes. Each names a problem type: the problem+json "type" member ends
// in "/" + code, so clients can tell refusals apart without parsing prose.
const (
	ECONFLICT         = "conflict"
	EFORBIDDEN        = "forbidden"
	EINTERNAL         = "internal"
	EINVALID          = "invalid"
	ENOTFOUND         = "not-found"
	ETOOLARGE         = "too-large"
	EUNSUPPORTED      = "unsupported-media-type"
	EUNAUTHORIZED     = "unauthorized"
	ERATELIMITED      = "rate-limited"
	EUNAVAILABLE      = "unavailable"
	EPASSWORDREQUIRED = "password-required"
	EPASSWORDINVALID  = "password-invalid"
	EBLACKLISTED      = "blacklisted"
	EMETHOD           = "method-not-allowed"
	ETIMEOUT          = "request-timeout"
	// EASSISTANTTIMEOUT: the assistant did not finish in time (a dialect's
	// answer that has nothing else to say).
	EASSISTANTTIMEOUT = "assistant-timeout"
	// EASSISTANT: handling failed on the assistant's side (the bus link
	// dropped while it was handling).
	EASSISTANT = "assistant-error"
)

// IntentPasswordHeader carries a protected intent's password, on any route
// that takes an utterance.
const IntentPasswordHeader = "X-Intent-Password"

// Error is an error meant for the caller: Code says what kind of failure it is
// and Detail says it in words that are safe to show (never a secret, never an
// internal cause). Anything that is not an *Error reaches the caller as
// EINTERNAL with a generic detail; its text is only logged.
//
// As tailscale's tsweb.HTTPError does, an Error may carry the Cause that
// made it, for the log: the error writer records it for the access log
// line, and the caller never sees it.
type Error struct {
	Code   string
	Detail string
	// Intent names the protected intent for EPASSWORDREQUIRED and
	// EPASSWORDINVALID.
	Intent string
	// RetryAfter, when positive, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration
	// Cause, when not nil, is what went wrong inside (a bus write that
	// failed, an answer that did not parse): logged, never shown to the
	// caller, and never holding a secret. Unwrap returns it.
	Cause error
}

// Error implements the error interface: the code and detail, then the
// cause. It is for the log; the caller is shown ErrorDetail.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

// Unwrap returns the cause, so that errors.Is and errors.As see it.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with the given code and a formatted detail.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and formatted detail, made by
// cause (kept for the log, see Error.Cause).
func Wrap(cause error, code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Cause: cause}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else
// EINTERNAL. A nil error has no code.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorDetail returns the caller-safe detail of err if it is an *Error, else a
// generic message: internal causes are never shown.
func ErrorDetail(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Detail
	default:
		return "internal error"
	}
}

// Problem is an RFC 9457 problem details body
// (Content-Type: application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Intent names the protected intent on password-required/-invalid.
	Intent string `json:"intent,omitempty"`
}

// ProblemTypePrefix is prepended to an error code to form Problem.Type.
const ProblemTypePrefix = "/problems/"

// ShortDuration writes d as people write it, for what a person reads (an
// entry's reason, an error's detail): "10m", "1h", "1h30m", "90s", not Go's
// "10m0s" and "1h0m0s".
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
