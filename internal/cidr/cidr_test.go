package cidr

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ovosgw/gateway/api"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bare IPv4 is one host", "203.0.113.7", "203.0.113.7/32"},
		{"host bits masked", "203.0.113.7/24", "203.0.113.0/24"},
		{"bare IPv6 is one host", "2001:db8::1", "2001:db8::1/128"},
		{"IPv6 range", "2001:db8:0:0:1::/64", "2001:db8::/64"},
		{"spaces trimmed", "  10.1.2.3 ", "10.1.2.3/32"},
		// A mapped spelling would never match: Blocked looks addresses up
		// unmapped.
		{"v4-mapped host folded", "::ffff:203.0.113.7", "203.0.113.7/32"},
		{"v4-mapped range folded", "::ffff:203.0.113.0/120", "203.0.113.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if p.String() != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.in, p, tt.want)
			}
		})
	}
	for _, bad := range []string{"", " ", "example.com", "10.0.0.0/33", "1.2.3.4/", "/24",
		"fe80::1%eth0", "fe80::1%eth0/64", "1.2.3", "2001:db8::/129", "10.0.0.1/-1"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			_, err := Parse(bad)
			wantCode(t, err, api.EINVALID)
		})
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList([]string{"10.0.0.0/8", " ", "", "::ffff:192.0.2.1", "2001:db8::1/64"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/64")}
	if len(got) != len(want) {
		t.Fatalf("ParseList = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParseList[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := ParseList([]string{"10.0.0.0/8", "10.0.0.0/99"}); api.ErrorCode(err) != api.EINVALID {
		t.Errorf("ParseList with a bad range: %v, want EINVALID", err)
	}
}

func TestCanonicalAndHost(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    netip.Prefix
		want string
	}{
		{"masked", netip.MustParsePrefix("203.0.113.7/24"), "203.0.113.0/24"},
		{"mapped /120 folded", netip.MustParsePrefix("::ffff:203.0.113.7/120"), "203.0.113.0/24"},
		{"mapped /64 stays IPv6", netip.MustParsePrefix("::ffff:203.0.113.7/64"), "::/64"},
		{"host", Host(netip.MustParseAddr("::ffff:203.0.113.7")), "203.0.113.7/32"},
		{"zoned host", Host(netip.MustParseAddr("fe80::1%eth0")), "fe80::1/128"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Canonical(tt.p); got.String() != tt.want {
				t.Errorf("Canonical(%s) = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
}

// FuzzParse: Parse never panics, refuses with EINVALID, and what it accepts
// is in normal form (parsing it again gives the same range, never a mapped
// form).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.7/24", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120",
		"2001:db8::/64", "fe80::1%eth0", "1.2.3.4/33", "0.0.0.0/0", " 10.0.0.1 ", "::", "::/16", "1.2.3.4/08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if api.ErrorCode(err) != api.EINVALID {
				t.Fatalf("Parse(%q) error %v, want EINVALID", s, err)
			}
			return
		}
		if q, err := Parse(p.String()); err != nil || q != p {
			t.Fatalf("Parse(%q) = %s, not canonical (reparse %s, %v)", s, p, q, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("Parse(%q) = %s kept a mapped form", s, p)
		}
	})
}
