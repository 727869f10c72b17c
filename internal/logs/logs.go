// Package logs holds what the commands' JSON logs share.
package logs

import "log/slog"

// Durations is a slog.HandlerOptions.ReplaceAttr for JSON logs: a duration
// is written as the text logs write it ("1.5s", "250ms"), not as slog's JSON
// handler writes it, a bare number of nanoseconds that reads as neither.
func Durations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
