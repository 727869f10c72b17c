package store

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
)

// Limits on what a client is called (docs/protocol.md, "Words").
const (
	MaxIDLen      = 63
	MaxNameLen    = 100 // characters, not bytes
	MaxAliases    = 16
	maxQuotedEcho = 40
)

// ValidID reports whether s is a slug usable as a client id or alias:
// lowercase ASCII letters, digits, '-' and '_', 1 to MaxIDLen characters.
// Ids travel in URLs, bus contexts and logs, so nothing else is allowed.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NormalizeNames checks and tidies a display name and aliases as a client or
// admin sent them. The name is trimmed and may be empty (the store then
// uses the id); otherwise it is at most MaxNameLen printable characters (no
// control characters: names reach logs and event streams). Aliases are
// trimmed, empty ones dropped, duplicates removed keeping the first; each must
// be a valid slug and there may be at most MaxAliases. The aliases returned
// are never nil. Failures are api.Error EINVALID.
func NormalizeNames(name string, aliases []string) (string, []string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", nil, api.Errorf(api.EINVALID, "name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", nil, api.Errorf(api.EINVALID, "name is %d characters long, at most %d allowed", n, MaxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", nil, api.Errorf(api.EINVALID, "name contains a control or non-printable character")
		}
	}
	out := make([]string, 0, len(aliases))
	seen := make(map[string]bool, len(aliases))
	for _, a := range aliases {
		a = strings.TrimSpace(a)
		if a == "" || seen[a] {
			continue
		}
		if !ValidID(a) {
			return "", nil, api.Errorf(api.EINVALID,
				"alias %s is not a slug (lowercase letters, digits, '-' and '_', 1 to %d characters)", quote(a), MaxIDLen)
		}
		if len(out) == MaxAliases {
			return "", nil, api.Errorf(api.EINVALID, "more than %d aliases", MaxAliases)
		}
		seen[a] = true
		out = append(out, a)
	}
	return name, out, nil
}

// quote renders caller input for an error detail: quoted, so control
// characters show escaped, and cut short, so a huge value is not echoed.
func quote(s string) string {
	if len(s) > maxQuotedEcho {
		s = s[:maxQuotedEcho]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		return strconv.Quote(s) + "..."
	}
	return strconv.Quote(s)
}
