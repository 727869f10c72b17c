package api

import (
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
