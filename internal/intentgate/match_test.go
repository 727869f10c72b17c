package intentgate

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"skill:Intent", "skill:Intent", true},
		{"skill:Intent", "skill:Intent2", false},
		{"skill:Intent", "skill:intent", false}, // case-sensitive
		{"skill", "skill", true},
		{"skill", "skill:Intent", false}, // a bare skill id matches the skill id, not the type
		{"*", "", true},
		{"*", "anything:at.all", true},
		{"skill:*", "skill:Intent", true},
		{"skill:*", "skill:", true},
		{"skill:*", "skill2:Intent", false},
		{"*:Unlock*", "home.skill:UnlockDoor", true},
		{"*:Unlock*", "home.skill:LockDoor", false},
		{"ovos-skill-*.openvoiceos", "ovos-skill-date-time.openvoiceos", true},
		{"ovos-skill-*.openvoiceos", "ovos-skill-date-time.other", false},
		// '*' crosses ':' and '.'.
		{"a*z", "a:b.c:z", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"a*b*b*c", "abbc", true},
		{"a*b*b*c", "abc", false},
		// Prefix and suffix must not overlap.
		{"ab*ba", "aba", false},
		{"ab*ba", "abba", true},
		{"**", "x", true},
		{"a**", "a", true},
		{"*x*", "yyy", false},
		{"", "", true},
		{"", "x", false},
		{"ünï*ød", "ünïcød", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.name, func(t *testing.T) {
			if got := Match(tt.pattern, tt.name); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
			if got := reference(tt.pattern, tt.name); got != tt.want {
				t.Errorf("reference(%q, %q) = %v: the test case is wrong", tt.pattern, tt.name, got)
			}
		})
	}
}

// TestMatchLinear: patterns that make backtracking matchers explode finish.
// (A quadratic or exponential matcher would take minutes here; the test
// asserts the answer, not the time.)
func TestMatchLinear(t *testing.T) {
	name := strings.Repeat("a", 100_000)
	pattern := strings.Repeat("a*", 100) + "b"
	if Match(pattern, name) {
		t.Error("matched a name without b")
	}
	if !Match(strings.Repeat("*a", 100), name) {
		t.Error("did not match")
	}
}

func TestValidPattern(t *testing.T) {
	ok := []string{"skill:Intent", "ovos-skill-date-time.openvoiceos", "*", "skill:*",
		"*:Unlock*", "what.time.intent", "ünïcode:Ïntent", strings.Repeat("x", MaxPatternLen)}
	for _, p := range ok {
		if err := ValidPattern(p); err != nil {
			t.Errorf("ValidPattern(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"empty":          "",
		"too long":       strings.Repeat("x", MaxPatternLen+1),
		"space":          "skill: Intent",
		"tab":            "skill:\tIntent",
		"no-break space": "skill:\u00a0Intent",
		"newline":        "skill:Intent\n",
		"escape":         "skill:\x1b[0m",
		"slash":          "skill/Intent",
		"invalid utf8":   "skill:\xff",
		"zero width":     "skill:\u200bIntent",
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			if err := ValidPattern(p); api.ErrorCode(err) != api.EINVALID {
				t.Errorf("ValidPattern(%q) = %v, want EINVALID", p, err)
			}
		})
	}
}

// reference is Match done by the regexp package (RE2, itself linear), for
// differential fuzzing. It needs valid UTF-8.
func reference(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
	return re.MatchString(name)
}

// FuzzMatch compares Match with a regexp-based reference.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"skill:*", "skill:Intent"}, {"a*b*c", "aXbYc"}, {"ab*ba", "aba"}, {"*", ""},
		{"**a**", "bab"}, {"a*", "\n"}, {"x*y*z", "xyzxyz"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 300 || len(name) > 2000 {
			return
		}
		got := Match(pattern, name)
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return
		}
		if want := reference(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, name, got, want)
		}
	})
}

// FuzzValidPattern: whatever ValidPattern accepts is bounded, printable,
// without white space or '/', and matches itself.
func FuzzValidPattern(f *testing.F) {
	for _, s := range []string{"skill:Intent", "*", "a b", "a/b", "\x00", strings.Repeat("é", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidPattern(p)
		if err != nil {
			if api.ErrorCode(err) != api.EINVALID {
				t.Fatalf("ValidPattern(%q) = %v, want EINVALID", p, err)
			}
			return
		}
		n := utf8.RuneCountInString(p)
		if n < 1 || n > MaxPatternLen || !utf8.ValidString(p) || strings.ContainsAny(p, " \t\r\n/") {
			t.Fatalf("ValidPattern accepted %q", p)
		}
		if !Match(p, p) {
			t.Fatalf("%q does not match itself", p)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Match("ovos-skill-*.openvoiceos:*Intent", "ovos-skill-date-time.openvoiceos:CurrentTimeIntent")
	}
}
