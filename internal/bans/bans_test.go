package bans

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/store"
)

// The blacklist is what receives the bans.
var _ Banner = (*blacklist.Blacklist)(nil)

// clock is a settable clock, starting at the real time (the store filters
// expired entries by the real clock).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

type fixture struct {
	clock *clock
	st    *store.Store
	bl    *blacklist.Blacklist
	bans  *Bans
}

// newFixture builds Bans on a real blacklist on a real SQLite file.
func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	c := &clock{t: time.Now()}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bl, err := blacklist.New(context.Background(), blacklist.Config{Now: c.Now}, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = c.Now
	b, err := New(cfg, bl)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: c, st: st, bl: bl, bans: b}
}

// fail counts n failures from addr and returns how many of them banned.
func (f *fixture) fail(t *testing.T, addr string, n int) int {
	t.Helper()
	a := netip.MustParseAddr(addr)
	banned := 0
	for range n {
		if f.bans.Failed(context.Background(), a, "login") {
			banned++
		}
	}
	return banned
}

func (f *fixture) blocked(addr string) bool {
	return f.bl.Blocked(netip.MustParseAddr(addr))
}

func TestBanThreshold(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		steps  []time.Duration // gap before each failure
		banned bool
	}{
		{"four failures", Config{}, []time.Duration{0, 0, 0, 0}, false},
		{"five failures", Config{}, []time.Duration{0, 0, 0, 0, 0}, true},
		{"five within the window", Config{}, []time.Duration{0, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute}, true},
		// Sliding window: the first failure has left the window when the
		// fifth comes.
		{"five spread over more than the window", Config{}, []time.Duration{0, 3 * time.Minute, 3 * time.Minute, 3 * time.Minute, 2 * time.Minute}, false},
		{"after 2", Config{After: 2}, []time.Duration{0, 0}, true},
		{"after 2, window 1m", Config{After: 2, Window: time.Minute}, []time.Duration{0, time.Minute}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			got := false
			for _, gap := range tt.steps {
				f.clock.Advance(gap)
				got = f.fail(t, "203.0.113.7", 1) > 0
			}
			if got != tt.banned || f.blocked("203.0.113.7") != tt.banned {
				t.Errorf("banned = %v, blocked = %v, want %v", got, f.blocked("203.0.113.7"), tt.banned)
			}
			if f.blocked("203.0.113.8") {
				t.Error("a neighbouring IPv4 address was banned too")
			}
		})
	}
}

// TestAllowlistNeverBanned: an allowlisted address (the owner's LAN) is
// never banned however often it fails, in either spelling.
func TestAllowlistNeverBanned(t *testing.T) {
	f := newFixture(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd00::/8")}})
	for _, a := range []string{"192.168.1.10", "::ffff:192.168.1.11", "fd00::1"} {
		if n := f.fail(t, a, 50); n != 0 {
			t.Errorf("%s: %d bans", a, n)
		}
		if f.blocked(a) {
			t.Errorf("%s blocked", a)
		}
	}
	if s := f.bans.Stats(); s.Allowlisted != 150 || s.Bans != 0 || s.Tracked != 0 {
		t.Errorf("Stats = %+v, want 150 allowlisted, no bans, nothing tracked", s)
	}
	if n := f.fail(t, "192.168.2.1", 5); n != 1 {
		t.Errorf("address outside the allowlist: %d bans, want 1", n)
	}
}

// TestBanDoubling: an address banned again gets twice the time, up to the
// cap, so a patient attacker gets ever fewer tries.
func TestBanDoubling(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []time.Duration
	}{
		{"default", Config{}, []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}},
		{"capped", Config{For: 10 * 24 * time.Hour}, []time.Duration{240 * time.Hour, 480 * time.Hour, 720 * time.Hour, 720 * time.Hour}},
		{"custom cap", Config{For: time.Minute, MaxFor: 3 * time.Minute}, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			for i, want := range tt.want {
				if n := f.fail(t, "198.51.100.4", 5); n != 1 {
					t.Fatalf("round %d: %d bans", i, n)
				}
				f.clock.Advance(want - time.Second)
				if !f.blocked("198.51.100.4") {
					t.Fatalf("round %d: unblocked a second before %s", i, want)
				}
				f.clock.Advance(time.Second)
				if f.blocked("198.51.100.4") {
					t.Fatalf("round %d: still blocked after %s", i, want)
				}
			}
		})
	}
}

// TestRepeatsForgotten: after Remember without a ban, the address starts
// again at For.
func TestRepeatsForgotten(t *testing.T) {
	f := newFixture(t, Config{Remember: 24 * time.Hour})
	f.fail(t, "198.51.100.4", 5)
	f.clock.Advance(time.Hour + 25*time.Hour)
	f.fail(t, "198.51.100.4", 5)
	f.clock.Advance(time.Hour)
	if f.blocked("198.51.100.4") {
		t.Error("the repeat count was not forgotten: second ban is longer than For")
	}
}

// TestIPv6Grouping: failures from different addresses of one /64 count
// together and the ban covers the /64, so rotating addresses does not help.
func TestIPv6Grouping(t *testing.T) {
	f := newFixture(t, Config{})
	for i := range 5 {
		f.fail(t, fmt.Sprintf("2001:db8:1:2::%x", i+1), 1)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:3::1", false},
	} {
		if got := f.blocked(tt.addr); got != tt.want {
			t.Errorf("Blocked(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	list, _ := f.bl.List(context.Background())
	if len(list) != 1 || list[0].CIDR != "2001:db8:1:2::/64" || list[0].Source != "auto" {
		t.Errorf("entries = %+v, want one auto /64", list)
	}

	// With IPv6Bits 128 each address counts alone.
	g := newFixture(t, Config{IPv6Bits: 128})
	for i := range 5 {
		g.fail(t, fmt.Sprintf("2001:db8:1:2::%x", i+1), 1)
	}
	if g.blocked("2001:db8:1:2::1") {
		t.Error("IPv6Bits 128: five addresses with one failure each were banned")
	}
}

// TestSuccessDoesNotEraseBan: a successful login ends only the client's
// slow-down: the address ban and the address's failure count stay, so an
// attacker holding one valid key cannot launder guesses at another.
func TestSuccessDoesNotEraseBan(t *testing.T) {
	f := newFixture(t, Config{})
	f.fail(t, "203.0.113.50", 5)
	f.bans.LoginSucceeded("kitchen")
	if !f.blocked("203.0.113.50") {
		t.Error("a successful login erased a ban")
	}
	f.fail(t, "203.0.113.51", 4)
	f.bans.LoginSucceeded("kitchen")
	if n := f.fail(t, "203.0.113.51", 1); n != 1 {
		t.Error("a successful login reset the address's failure count")
	}
}

// TestLoginDelay: the slow-down grows with failures from any address, is
// capped (never a lockout) and ends on success or after the window.
func TestLoginDelay(t *testing.T) {
	f := newFixture(t, Config{})
	b := f.bans
	want := []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := b.LoginDelay("kitchen"); got != w {
			t.Errorf("after %d failures: delay %s, want %s", i, got, w)
		}
		b.LoginFailed("kitchen")
	}
	if got := b.LoginDelay("garage"); got != 0 {
		t.Errorf("another client is slowed down: %s", got)
	}
	b.LoginSucceeded("kitchen")
	if got := b.LoginDelay("kitchen"); got != 0 {
		t.Errorf("after success: delay %s, want 0", got)
	}
	for range 6 {
		b.LoginFailed("kitchen")
	}
	if b.LoginDelay("kitchen") == 0 {
		t.Fatal("no delay after 6 failures")
	}
	f.clock.Advance(DefaultWindow + time.Second)
	if got := b.LoginDelay("kitchen"); got != 0 {
		t.Errorf("after the window: delay %s, want 0", got)
	}
	b.LoginFailed("kitchen")
	if got := b.LoginDelay("kitchen"); got != 0 {
		t.Errorf("one failure after the window: delay %s, want 0 (count restarted)", got)
	}
	// A long id is tracked under a bounded key.
	long := string(make([]byte, 10_000))
	for range 5 {
		b.LoginFailed(long)
	}
	if b.LoginDelay(long) == 0 {
		t.Error("a long client id escaped the slow-down")
	}
}

// TestBanSurvivesHangUp: the ban is written even when the request's context
// is already cancelled (the attacker closed the connection).
func TestBanSurvivesHangUp(t *testing.T) {
	f := newFixture(t, Config{After: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !f.bans.Failed(ctx, netip.MustParseAddr("203.0.113.9"), "login") {
		t.Fatal("Failed with a cancelled context did not ban")
	}
	if !f.blocked("203.0.113.9") {
		t.Error("not blocked")
	}
}

func TestBanError(t *testing.T) {
	f := newFixture(t, Config{After: 1})
	f.st.Close()
	if f.bans.Failed(context.Background(), netip.MustParseAddr("203.0.113.9"), "login") {
		t.Error("Failed reported a ban that could not be written")
	}
	if s := f.bans.Stats(); s.BanErrors != 1 || s.Bans != 0 {
		t.Errorf("Stats = %+v, want one ban error", s)
	}
}

// TestMaxTracked: memory stays bounded whatever the number of addresses and
// client ids an attacker uses.
func TestMaxTracked(t *testing.T) {
	f := newFixture(t, Config{MaxTracked: 3})
	for i := range 10 {
		f.fail(t, fmt.Sprintf("198.51.100.%d", i), 1)
		f.bans.LoginFailed(fmt.Sprintf("client-%d", i))
	}
	s := f.bans.Stats()
	if s.Tracked != 3 || s.TrackedClients != 3 {
		t.Errorf("Stats = %+v, want 3 tracked of each", s)
	}
	if s.Failures != 10 || s.LoginFailures != 10 {
		t.Errorf("Stats = %+v, want 10 failures of each", s)
	}
}

// TestConcurrentFailures: concurrent failures from one address ban exactly
// once per After failures.
func TestConcurrentFailures(t *testing.T) {
	f := newFixture(t, Config{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			f.bans.Failed(context.Background(), netip.MustParseAddr("203.0.113.1"), "login")
			f.bans.LoginFailed("kitchen")
			f.bans.LoginDelay("kitchen")
		})
	}
	wg.Wait()
	if s := f.bans.Stats(); s.Bans != 4 || s.Failures != 20 {
		t.Errorf("Stats = %+v, want 4 bans of 20 failures", s)
	}
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t, Config{})
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"negative after", Config{After: -1}},
		{"huge after", Config{After: maxAfter + 1}},
		{"negative window", Config{Window: -time.Second}},
		{"negative for", Config{For: -time.Second}},
		{"bad ipv6 bits", Config{IPv6Bits: 16}},
		{"invalid allow", Config{Allow: []netip.Prefix{{}}}},
		{"negative max tracked", Config{MaxTracked: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, f.bl); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New without a banner succeeded")
	}
}

// TestLoginThrottleFallsOnTheFailingAddresses: wrong keys sprayed for a
// client from other addresses slow those addresses down, not the client's
// own login from its address (issue 12, item 13); an IPv6 attacker's /64 is
// one range, and the client's success ends only its own slow-down.
func TestLoginThrottleFallsOnTheFailingAddresses(t *testing.T) {
	f := newFixture(t, Config{})
	lt := f.bans.Logins()
	victim := netip.MustParseAddr("198.51.100.7")
	attacker := netip.MustParseAddr("203.0.113.66")
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for range 20 {
		lt.LoginFailed("kitchen", attacker)
		lt.LoginFailed("kitchen", v6)
	}
	if got := lt.LoginDelay("kitchen", victim); got != 0 {
		t.Errorf("the client's own address is slowed down by others' failures: %s", got)
	}
	for _, a := range []netip.Addr{attacker, v6, netip.MustParseAddr("2001:db8:1:2::ffff"), netip.MustParseAddr("::ffff:203.0.113.66")} {
		if got := lt.LoginDelay("kitchen", a); got != DefaultLoginMaxDelay {
			t.Errorf("%s: delay %s, want %s", a, got, DefaultLoginMaxDelay)
		}
	}
	if got := lt.LoginDelay("garage", attacker); got != 0 {
		t.Errorf("another client from the attacker's address: %s", got)
	}
	if got := f.bans.LoginDelay("kitchen"); got != 0 {
		t.Errorf("the per-client slow-down (intent passwords') moved: %s", got)
	}
	lt.LoginSucceeded("kitchen", victim)
	if lt.LoginDelay("kitchen", attacker) == 0 {
		t.Error("the client's success from its address ended the attacker's slow-down")
	}
	// A long client id keeps its address apart.
	long := strings.Repeat("k", 10_000)
	for range 5 {
		lt.LoginFailed(long, attacker)
	}
	if lt.LoginDelay(long, attacker) == 0 || lt.LoginDelay(long, victim) != 0 {
		t.Error("a long client id lost its address in the key")
	}
}
