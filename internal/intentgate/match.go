package intentgate

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
)

// MaxPatternLen bounds a pattern, in characters (as the store does).
const MaxPatternLen = 200

// ValidPattern checks an intent pattern: 1 to MaxPatternLen printable
// characters, no white space, no '/' (a pattern is a URL path segment of the
// admin API, and no intent or skill name has one). '*' is the only wildcard.
// The usual forms are "skill_id:IntentName", "skill_id", "skill_id:*" and
// "*" (everything). Errors are EINVALID.
func ValidPattern(p string) error {
	if p == "" {
		return api.Errorf(api.EINVALID, "empty intent pattern")
	}
	if !utf8.ValidString(p) {
		return api.Errorf(api.EINVALID, "intent pattern is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(p); n > MaxPatternLen {
		return api.Errorf(api.EINVALID, "intent pattern is %d characters long, at most %d allowed", n, MaxPatternLen)
	}
	for _, r := range p {
		switch {
		case unicode.IsSpace(r):
			return api.Errorf(api.EINVALID, "intent pattern contains white space")
		case !unicode.IsPrint(r):
			return api.Errorf(api.EINVALID, "intent pattern contains a control or non-printable character")
		case r == '/':
			return api.Errorf(api.EINVALID, "intent pattern contains '/'")
		}
	}
	return nil
}

// Match reports whether name matches pattern, where '*' stands for any run
// of characters (none included, ':' and '.' included) and everything else
// must be equal, case included. It runs in time linear in the inputs (no
// backtracking): the parts between stars are found left to right, each at
// its first occurrence after the previous one, which leaves the most room
// for the rest and so finds a match whenever one exists.
func Match(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	prefix := pattern[:star]
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	name = name[len(prefix):]
	middle := pattern[star+1:]
	suffix := middle
	if last := strings.LastIndexByte(middle, '*'); last >= 0 {
		suffix, middle = middle[last+1:], middle[:last]
	} else {
		middle = ""
	}
	if !strings.HasSuffix(name, suffix) {
		return false
	}
	name = name[:len(name)-len(suffix)]
	for middle != "" {
		var part string
		part, middle, _ = strings.Cut(middle, "*")
		if part == "" {
			continue
		}
		i := strings.Index(name, part)
		if i < 0 {
			return false
		}
		name = name[i+len(part):]
	}
	return true
}

// literalLike reports whether p names one intent exactly ("skill:Intent"),
// the form OVOS's session blacklisted_intents holds.
func literalLike(p string) bool {
	if strings.Contains(p, "*") {
		return false
	}
	skill, intent, ok := strings.Cut(p, ":")
	return ok && skill != "" && intent != ""
}
