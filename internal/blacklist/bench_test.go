package blacklist

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
)

// BenchmarkBlocked looks up addresses (one blocked, one not, one IPv6) in a
// blacklist of n entries of mixed prefix lengths. The snapshot keeps one map
// per prefix length in use, so the cost follows the number of distinct
// lengths (here 4 per family at most), not the number of entries.
func BenchmarkBlocked(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var static []netip.Prefix
			for i := range n {
				a4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				var a16 [16]byte
				a16[0], a16[1], a16[2], a16[3] = 0x20, 0x01, 0x0d, 0xb8
				a16[4], a16[5], a16[6] = byte(i>>16), byte(i>>8), byte(i)
				a6 := netip.AddrFrom16(a16)
				switch i % 4 {
				case 0:
					static = append(static, netip.PrefixFrom(a4, 32))
				case 1:
					static = append(static, netip.PrefixFrom(a4, 24).Masked())
				case 2:
					static = append(static, netip.PrefixFrom(a6, 64).Masked())
				default:
					static = append(static, netip.PrefixFrom(a6, 128))
				}
			}
			st := openStore(b, filepath.Join(b.TempDir(), "g.db"))
			bl, err := New(context.Background(), Config{Static: static}, st)
			if err != nil {
				b.Fatal(err)
			}
			hit := static[0].Addr()
			miss := netip.MustParseAddr("203.0.113.9")
			v6 := netip.MustParseAddr("2001:db8:ffff::1")
			if !bl.Blocked(hit) || bl.Blocked(miss) || bl.Blocked(v6) {
				b.Fatal("unexpected lookup results")
			}
			b.ReportAllocs()
			for b.Loop() {
				bl.Blocked(hit)
				bl.Blocked(miss)
				bl.Blocked(v6)
			}
		})
	}
}
