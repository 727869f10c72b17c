package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ovosgw/gateway/api"
)

// Bounds on what is read from a refusal.
const (
	// maxProblemBody bounds the problem+json body read from a refusal.
	maxProblemBody = 64 << 10
	// maxShownDetail bounds how much of the gateway's detail an error text
	// carries: it is untrusted text that ends up in logs.
	maxShownDetail = 300
)

// Error is a refusal by the gateway: the HTTP status and the
// application/problem+json body it sent (RFC 9457), with its Retry-After.
// Its text never holds a credential: the gateway puts none in a problem, and
// the request's token, key and password are not part of it.
type Error struct {
	// Method and Path name the request (the path without its query).
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Problem is the body as the gateway sent it; when the body was not a
	// problem, Type is empty and Title the status text.
	Problem api.Problem
	// RetryAfter is the Retry-After header (429, 503), zero when absent.
	RetryAfter time.Duration
}

// Error implements error with the status and the gateway's detail, control
// characters removed and length bounded (the detail is untrusted text).
func (e *Error) Error() string {
	detail := e.Problem.Detail
	if detail == "" {
		detail = e.Problem.Title
	}
	if detail == "" {
		detail = http.StatusText(e.Status)
	}
	return fmt.Sprintf("gateway: %s %s: %d %s", e.Method, e.Path, e.Status, clean(detail, maxShownDetail))
}

// Code is the problem's code, the last segment of its type (one of the
// api.E* constants), or "" when the body was not a problem.
func (e *Error) Code() string {
	t := e.Problem.Type
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// Code returns the problem code of err when it is (or wraps) an *Error, else
// "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return ""
}

// PasswordIntent reports whether err is the refusal of a protected intent
// (docs/protocol.md: 403 whose type ends in /password-required or
// /password-invalid, with the member intent): ok is true, intent names the
// intent and invalid tells a wrong password from a missing one.
func PasswordIntent(err error) (intent string, invalid, ok bool) {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden {
		return "", false, false
	}
	switch e.Code() {
	case api.EPASSWORDREQUIRED:
		return e.Problem.Intent, false, true
	case api.EPASSWORDINVALID:
		return e.Problem.Intent, true, true
	}
	return "", false, false
}

// Retryable reports whether a request that failed with err may succeed if
// sent again later, and how long the gateway asked to wait (zero when it did
// not say): transport failures (the gateway restarting, a network cut) and
// 429, 502, 503 and 504 are; other refusals and a cancelled context are not.
func Retryable(err error) (bool, time.Duration) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false, 0
	}
	var e *Error
	if !errors.As(err, &e) {
		return true, 0
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, e.RetryAfter
	}
	return false, 0
}

// readError turns a non-2xx response into an *Error, reading at most
// maxProblemBody bytes of its body.
func readError(method, path string, resp *http.Response) *Error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p api.Problem
		if json.Unmarshal(body, &p) == nil {
			e.Problem = p
		}
	}
	if e.Problem.Status == 0 {
		e.Problem.Status = resp.StatusCode
	}
	if e.Problem.Title == "" {
		e.Problem.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date (RFC 9110
// section 10.2.3); anything else, or a time in the past, is zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clean drops control characters from untrusted text and bounds its length,
// so that it cannot forge log lines.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
