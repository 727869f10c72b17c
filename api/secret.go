package api

import "log/slog"

// Secret is a string that must never reach a log: an access key, a token, a
// ticket or a password. It marshals to JSON as itself (it is sent to its
// owner once) but formats and logs as "[redacted]".
type Secret string

// String hides the value from fmt's %s and %v.
func (Secret) String() string { return "[redacted]" }

// GoString hides the value from fmt's %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// LogValue hides the value from log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Reveal returns the value, for the few places that must use it.
func (s Secret) Reveal() string { return string(s) }
