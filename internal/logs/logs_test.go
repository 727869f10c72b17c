package logs_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/logs"
)

// TestDurations: JSON logs write durations as text, not nanoseconds; other
// values are left alone.
func TestDurations(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: logs.Durations}))
	log.Info("x", "took", 1500*time.Millisecond, slog.Group("g", slog.Duration("wait", 250*time.Millisecond)), "n", 3)
	for _, want := range []string{`"took":"1.5s"`, `"wait":"250ms"`, `"n":3`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s lacks %s", b.String(), want)
		}
	}
}
