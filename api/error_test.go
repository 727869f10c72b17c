package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestShortDuration: durations as people write them (issue 17, item 11:
// the console showed Go's "10m0s").
func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute:           "10m",
		time.Hour:                  "1h",
		90 * time.Minute:           "1h30m",
		90 * time.Second:           "1m30s",
		2 * time.Minute:            "2m",
		30 * 24 * time.Hour:        "720h",
		1500 * time.Millisecond:    "1.5s",
		time.Hour + 30*time.Second: "1h0m30s",
	} {
		if got := ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestErrorCause: an *Error made by a cause shows the caller its detail
// only; the cause is in its text for the log and reachable by errors.Is and
// errors.As.
func TestErrorCause(t *testing.T) {
	cause := errors.New("write tcp 127.0.0.1:1: broken pipe")
	err := fmt.Errorf("handling: %w", Wrap(cause, EUNAVAILABLE, "the bus is unavailable"))
	if got := ErrorDetail(err); got != "the bus is unavailable" {
		t.Errorf("ErrorDetail = %q, want the detail alone", got)
	}
	if got := ErrorCode(err); got != EUNAVAILABLE {
		t.Errorf("ErrorCode = %q", got)
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not see the cause")
	}
	if got := err.Error(); !strings.Contains(got, "broken pipe") || !strings.Contains(got, "the bus is unavailable") {
		t.Errorf("Error() = %q, want the detail and the cause", got)
	}
	if got := Errorf(EINVALID, "bad").Error(); got != "invalid: bad" {
		t.Errorf("Error() without a cause = %q", got)
	}
	var e *Error
	if !errors.As(Wrap(Errorf(EINVALID, "inner"), EUNAVAILABLE, "outer"), &e) || e.Code != EUNAVAILABLE {
		t.Errorf("errors.As found %v, want the outer error", e)
	}
}
