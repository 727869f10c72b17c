package blacklist

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
	"github.com/ovosgw/gateway/internal/store"
)

// The SQLite store is what keeps the entries.
var _ Store = (*store.Store)(nil)

// clock is a settable clock. It starts at the real time, because the store
// filters expired entries by the real clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newBlacklist returns a blacklist on a fresh SQLite file, with static as
// its configured ranges.
func newBlacklist(t testing.TB, c *clock, static ...string) (*Blacklist, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.db")
	return openBlacklist(t, path, c, static...), path
}

func openBlacklist(t testing.TB, path string, c *clock, static ...string) *Blacklist {
	t.Helper()
	cfg := Config{Now: c.Now}
	for _, s := range static {
		cfg.Static = append(cfg.Static, netip.MustParsePrefix(s))
	}
	b, err := New(context.Background(), cfg, openStore(t, path))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want api.Error %s", err, code)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBlocked(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c, "192.0.2.0/24", "2001:db8:bad::/48")
	for _, r := range []api.BlacklistRequest{
		{CIDR: "198.51.100.7", Reason: "one host"},
		{CIDR: "2001:db8:1:2::/64", Reason: "a /64"},
		{CIDR: "10.0.0.0/8", Reason: "wide", TTL: "1h"},
	} {
		if _, err := b.Add(ctx, r); err != nil {
			t.Fatalf("Add(%+v): %v", r, err)
		}
	}
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{"config v4 range", "192.0.2.200", true},
		{"config v6 range", "2001:db8:bad:ffff::1", true},
		{"admin host", "198.51.100.7", true},
		{"neighbour of admin host", "198.51.100.8", false},
		{"admin v6 /64", "2001:db8:1:2:aaaa::1", true},
		{"next /64", "2001:db8:1:3::1", false},
		{"admin range with ttl", "10.200.3.4", true},
		{"unlisted", "203.0.113.1", false},
		// A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d; that
		// must not dodge an IPv4 entry.
		{"v4-mapped config", "::ffff:192.0.2.1", true},
		{"v4-mapped admin host", "::ffff:198.51.100.7", true},
		{"zoned v6 in range", "2001:db8:1:2::9%eth0", true},
		{"invalid address", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = addr(tt.addr)
			}
			if got := b.Blocked(a); got != tt.want {
				t.Errorf("Blocked(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

// TestExpiredStopsBlocking: an entry stops blocking the moment it expires,
// without waiting for a refresh (a ban must not outlive its term), and
// disappears from the list.
func TestExpiredStopsBlocking(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c)
	a := addr("203.0.113.9")
	if _, err := b.Ban(ctx, a, "too many failed logins", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(ctx, api.BlacklistRequest{CIDR: "198.51.100.0/24", TTL: "30m"}); err != nil {
		t.Fatal(err)
	}
	if !b.Blocked(a) || !b.Blocked(addr("198.51.100.1")) {
		t.Fatal("fresh entries do not block")
	}
	c.Advance(30 * time.Minute)
	if b.Blocked(addr("198.51.100.1")) {
		t.Error("the 30m entry still blocks after 30m")
	}
	if !b.Blocked(a) {
		t.Error("the 1h ban stopped blocking after 30m")
	}
	c.Advance(30 * time.Minute)
	if b.Blocked(a) {
		t.Error("the 1h ban still blocks after 1h")
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("List after expiry = %+v, want empty", list)
	}
}

// TestMappedSpellingBlocksIPv4: an admin entry written as a v4-mapped IPv6
// address blocks the IPv4 client it names.
func TestMappedSpellingBlocksIPv4(t *testing.T) {
	c := newClock()
	b, _ := newBlacklist(t, c)
	e, err := b.Add(context.Background(), api.BlacklistRequest{CIDR: "::ffff:203.0.113.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	if e.CIDR != "203.0.113.0/24" {
		t.Errorf("entry CIDR = %s, want 203.0.113.0/24", e.CIDR)
	}
	for _, s := range []string{"203.0.113.5", "::ffff:203.0.113.5"} {
		if !b.Blocked(addr(s)) {
			t.Errorf("Blocked(%s) = false", s)
		}
	}
}

func TestAddEntry(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c)
	e, err := b.Add(ctx, api.BlacklistRequest{CIDR: "203.0.113.7/24", Reason: "  scanner  ", TTL: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	if e.CIDR != "203.0.113.0/24" || e.Reason != "scanner" || e.Source != api.BlacklistAdmin {
		t.Errorf("entry = %+v", e)
	}
	if e.ExpiresAt == nil || !e.ExpiresAt.Equal(millis(c.Now().Add(2*time.Hour))) {
		t.Errorf("ExpiresAt = %v, want now+2h", e.ExpiresAt)
	}
	perm, err := b.Add(ctx, api.BlacklistRequest{CIDR: "2001:db8::5"})
	if err != nil {
		t.Fatal(err)
	}
	if perm.ExpiresAt != nil || perm.CIDR != "2001:db8::5/128" {
		t.Errorf("entry without ttl = %+v, want no expiry", perm)
	}
}

func TestAddInvalid(t *testing.T) {
	c := newClock()
	b, _ := newBlacklist(t, c)
	long := make([]byte, MaxReasonLen+1)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		r    api.BlacklistRequest
	}{
		{"not an address", api.BlacklistRequest{CIDR: "example.com"}},
		{"empty", api.BlacklistRequest{}},
		{"zone", api.BlacklistRequest{CIDR: "fe80::1%eth0"}},
		{"bad length", api.BlacklistRequest{CIDR: "10.0.0.0/40"}},
		// Too broad: would lock out everyone, the admin included.
		{"v4 everything", api.BlacklistRequest{CIDR: "0.0.0.0/0"}},
		{"v4 /7", api.BlacklistRequest{CIDR: "10.0.0.0/7"}},
		{"v6 everything", api.BlacklistRequest{CIDR: "::/0"}},
		{"ttl not a duration", api.BlacklistRequest{CIDR: "10.0.0.1", TTL: "tomorrow"}},
		{"ttl days unit", api.BlacklistRequest{CIDR: "10.0.0.1", TTL: "3d"}},
		{"ttl negative", api.BlacklistRequest{CIDR: "10.0.0.1", TTL: "-1h"}},
		{"ttl zero", api.BlacklistRequest{CIDR: "10.0.0.1", TTL: "0s"}},
		{"ttl over ten years", api.BlacklistRequest{CIDR: "10.0.0.1", TTL: "100000h"}},
		{"reason too long", api.BlacklistRequest{CIDR: "10.0.0.1", Reason: string(long)}},
		// The reason reaches logs and the console: no line breaks or
		// escapes.
		{"reason newline", api.BlacklistRequest{CIDR: "10.0.0.1", Reason: "a\nb"}},
		{"reason escape", api.BlacklistRequest{CIDR: "10.0.0.1", Reason: "a\x1b[31mb"}},
		{"reason invalid utf8", api.BlacklistRequest{CIDR: "10.0.0.1", Reason: "a\xffb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Add(context.Background(), tt.r)
			wantCode(t, err, api.EINVALID)
		})
	}
	if list, _ := b.List(context.Background()); len(list) != 0 {
		t.Errorf("refused requests left entries: %+v", list)
	}
}

// TestConfigCannotBeRemoved: a configured range is the operator's, not the
// API's: removing it is refused and it keeps blocking.
func TestConfigCannotBeRemoved(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c, "192.0.2.0/24")
	wantCode(t, b.Remove(ctx, "192.0.2.0/24"), api.EFORBIDDEN)
	wantCode(t, b.Remove(ctx, "192.0.2.9/24"), api.EFORBIDDEN)
	if !b.Blocked(addr("192.0.2.1")) {
		t.Error("configured range stopped blocking")
	}
	list, _ := b.List(ctx)
	if len(list) != 1 || list[0].Source != api.BlacklistConfig || list[0].ExpiresAt != nil {
		t.Errorf("List = %+v, want the config entry, never expiring", list)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	tests := []struct {
		name, add, remove string
	}{
		{"same text", "198.51.100.7", "198.51.100.7"},
		{"bare vs /32", "198.51.100.7", "198.51.100.7/32"},
		{"host bits", "203.0.113.0/24", "203.0.113.99/24"},
		{"mapped spelling", "203.0.113.7", "::ffff:203.0.113.7"},
		{"v6", "2001:db8::/64", "2001:db8:0:0::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBlacklist(t, c)
			e, err := b.Add(ctx, api.BlacklistRequest{CIDR: tt.add})
			if err != nil {
				t.Fatal(err)
			}
			p := netip.MustParsePrefix(e.CIDR)
			if !b.Blocked(p.Addr()) {
				t.Fatal("added entry does not block")
			}
			if err := b.Remove(ctx, tt.remove); err != nil {
				t.Fatalf("Remove(%q): %v", tt.remove, err)
			}
			if b.Blocked(p.Addr()) {
				t.Error("removed entry still blocks")
			}
			wantCode(t, b.Remove(ctx, tt.remove), api.ENOTFOUND)
		})
	}
	b, _ := newBlacklist(t, c)
	wantCode(t, b.Remove(ctx, "not an address"), api.EINVALID)
}

// TestOtherProcess: entries added or removed through another handle on the
// same file (the command line) take effect at the next Refresh.
func TestOtherProcess(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	server, path := newBlacklist(t, c)
	cli := openBlacklist(t, path, c)
	a := addr("198.51.100.20")
	if _, err := cli.Add(ctx, api.BlacklistRequest{CIDR: a.String(), Reason: "from the CLI"}); err != nil {
		t.Fatal(err)
	}
	if server.Blocked(a) {
		t.Fatal("blocked before any refresh (test assumption broken)")
	}
	if err := server.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !server.Blocked(a) {
		t.Fatal("the CLI's entry does not block after Refresh")
	}
	// The server can remove what the CLI added, even before refreshing.
	if _, err := cli.Add(ctx, api.BlacklistRequest{CIDR: "198.51.100.21"}); err != nil {
		t.Fatal(err)
	}
	if err := server.Remove(ctx, "198.51.100.21"); err != nil {
		t.Errorf("Remove of an entry not yet refreshed: %v", err)
	}
	if err := cli.Remove(ctx, a.String()); err != nil {
		t.Fatal(err)
	}
	if err := server.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if server.Blocked(a) {
		t.Error("the CLI's removal is not seen after Refresh")
	}
	// A new server process starts with the stored entries.
	if _, err := cli.Add(ctx, api.BlacklistRequest{CIDR: "203.0.113.1"}); err != nil {
		t.Fatal(err)
	}
	restarted := openBlacklist(t, path, c)
	if !restarted.Blocked(addr("203.0.113.1")) {
		t.Error("stored entry not loaded by New")
	}
}

// TestBanNeverShortens: an automatic ban of an address the admin blocked for
// good must not turn the permanent entry into a one-hour one.
func TestBanNeverShortens(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c, "192.0.2.0/24")
	a := addr("198.51.100.7")
	if _, err := b.Add(ctx, api.BlacklistRequest{CIDR: a.String(), Reason: "permanent"}); err != nil {
		t.Fatal(err)
	}
	e, err := b.Ban(ctx, a, "failed logins", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != api.BlacklistAdmin || e.ExpiresAt != nil {
		t.Errorf("Ban returned %+v, want the permanent admin entry", e)
	}
	c.Advance(2 * time.Hour)
	if !b.Blocked(a) {
		t.Error("the permanent entry was shortened by a ban")
	}
	// A longer ban replaces a shorter one.
	h := addr("198.51.100.8")
	if _, err := b.Ban(ctx, h, "first", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ban(ctx, h, "second", 4*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ban(ctx, h, "shorter", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Hour)
	if !b.Blocked(h) {
		t.Error("a shorter ban cut the 4h ban")
	}
}

func TestBanEntry(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c)
	tests := []struct {
		name string
		p    netip.Prefix
		want string
	}{
		{"v4 host", netip.MustParsePrefix("203.0.113.4/32"), "203.0.113.4/32"},
		{"v6 /64", netip.MustParsePrefix("2001:db8:1:2:3:4:5:6/64"), "2001:db8:1:2::/64"},
		{"mapped host", netip.MustParsePrefix("::ffff:203.0.113.5/128"), "203.0.113.5/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := b.BanPrefix(ctx, tt.p, "bad\nreason\x00", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if e.CIDR != tt.want || e.Source != api.BlacklistAuto || e.ExpiresAt == nil || e.Reason != "badreason" {
				t.Errorf("ban = %+v, want %s, auto, expiring, sanitised reason", e, tt.want)
			}
		})
	}
	if _, err := b.Ban(ctx, netip.Addr{}, "x", time.Hour); err == nil {
		t.Error("Ban of the zero address succeeded")
	}
	if _, err := b.Ban(ctx, addr("10.0.0.1"), "x", 0); err == nil {
		t.Error("Ban for 0 succeeded")
	}
}

func TestListSorted(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c, "2001:db8::/32", "10.0.0.0/8")
	for _, s := range []string{"203.0.113.0/24", "10.0.0.1", "2001:db8::1", "192.0.2.1"} {
		if _, err := b.Add(ctx, api.BlacklistRequest{CIDR: s}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.CIDR+" "+e.Source)
	}
	want := []string{
		"10.0.0.0/8 config", "10.0.0.1/32 admin", "192.0.2.1/32 admin", "203.0.113.0/24 admin",
		"2001:db8::/32 config", "2001:db8::1/128 admin",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v\nwant %v", got, want)
	}
	// The list is a copy: changing it does not change the blacklist.
	exp := time.Unix(0, 0)
	list[0].ExpiresAt = &exp
	if !b.Blocked(addr("10.9.9.9")) {
		t.Error("editing the list changed the blacklist")
	}
}

// TestConcurrent runs lookups while entries change (run with -race).
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	b, _ := newBlacklist(t, c)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					b.Blocked(addr("198.51.100.3"))
				}
			}
		})
	}
	for i := range 20 {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if _, err := b.Ban(ctx, a, "x", time.Hour); err != nil {
			t.Error(err)
		}
		if i%3 == 0 {
			if err := b.Refresh(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if !b.Blocked(addr("198.51.100.3")) {
		t.Error("ban lost")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(context.Background(), Config{}, nil); err == nil {
		t.Error("New without a store succeeded")
	}
	st := openStore(t, filepath.Join(t.TempDir(), "g.db"))
	if _, err := New(context.Background(), Config{Static: []netip.Prefix{{}}}, st); err == nil {
		t.Error("New with an invalid configured range succeeded")
	}
}

// FuzzAdd feeds untrusted text to Add's range parser: it never panics, and
// whatever it accepts is canonical, blocks the range's first address and
// can be removed in the same spelling.
func FuzzAdd(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.7/24", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120",
		"2001:db8::/64", "fe80::1%eth0", "1.2.3.4/33", "0.0.0.0/0", " 10.0.0.1 ", "::", "::/16", "1.2.3.4/08"} {
		f.Add(s)
	}
	c := newClock()
	b, _ := newBlacklist(f, c)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, s string) {
		p, err := cidr.Parse(s)
		if err != nil {
			if api.ErrorCode(err) != api.EINVALID {
				t.Fatalf("ParsePrefix(%q) error %v, want EINVALID", s, err)
			}
			return
		}
		if q, err := cidr.Parse(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrefix(%q) = %s, not canonical (reparse %s, %v)", s, p, q, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("ParsePrefix(%q) = %s kept a mapped form", s, p)
		}
		e, err := b.Add(ctx, api.BlacklistRequest{CIDR: s})
		if err != nil {
			if api.ErrorCode(err) != api.EINVALID {
				t.Fatalf("Add(%q): %v", s, err)
			}
			return
		}
		if e.CIDR != p.String() || !b.Blocked(p.Addr()) {
			t.Fatalf("Add(%q) = %+v; blocked %v", s, e, b.Blocked(p.Addr()))
		}
		if err := b.Remove(ctx, s); err != nil {
			t.Fatalf("Remove(%q): %v", s, err)
		}
		if b.Blocked(p.Addr()) {
			t.Fatalf("%q still blocked after Remove", s)
		}
	})
}
