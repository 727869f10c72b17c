// Package cidr reads the address ranges that the configuration, the admin
// API, the command line and the blacklist's table all write, into one normal
// form, so that one range has one spelling everywhere it is compared or
// stored.
package cidr

import (
	"net/netip"
	"strings"

	"github.com/ovosgw/gateway/api"
)

// maxLen bounds the text parsed as a range: the longest valid one
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128") is 49 bytes.
const maxLen = 64

// Parse reads a range as people write it: a CIDR ("203.0.113.0/24", masked
// if host bits are set) or a bare address, meaning that one host (/32 or
// /128); spaces around it are ignored. The result is in normal form (see
// Canonical): IPv4-mapped IPv6 forms ("::ffff:203.0.113.7") are folded to
// IPv4, the form addresses are looked up in, so a range cannot be written
// in a spelling that never matches. Zones ("fe80::1%eth0") are refused: a
// zone names an interface of one machine, not a range. The error is
// EINVALID.
func Parse(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxLen {
		return netip.Prefix{}, api.Errorf(api.EINVALID, "not an IP address or CIDR range")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, api.Errorf(api.EINVALID, "%q is not an IP address or CIDR range", s)
		}
		return Canonical(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, api.Errorf(api.EINVALID, "%q is not an IP address or CIDR range", s)
	}
	return Host(a), nil
}

// ParseList parses each range of list with Parse, skipping empty ones (a
// trailing comma in a setting).
func ParseList(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Canonical is p in normal form: masked, without a zone, and an
// IPv4-mapped IPv6 range of /96 or longer folded to its IPv4 range.
func Canonical(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	q, err := a.Prefix(bits)
	if err != nil {
		return p.Masked()
	}
	return q
}

// Host is the one-host range of a in normal form (/32 for IPv4, IPv4-mapped
// addresses included; /128 for IPv6).
func Host(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen())
}
