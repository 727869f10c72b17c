// Package bans turns repeated failures into consequences: an address that
// fails to authenticate too often within a window is banned (an automatic
// blacklist entry), for longer each time it comes back; and logins for a
// client id that keeps failing are slowed down, from any address.
//
// The slow-down is deliberately not a lockout: a lockout per client id would
// let anyone shut the owner out by failing on purpose. Nothing here removes a
// ban; a successful login only ends its client's slow-down.
//
// IPv6 addresses are counted (and banned) per /64 by default: one subscriber
// or LAN usually holds a whole /64 (RFC 6177), so counting single addresses
// would let an attacker rotate through 2^64 of them, one failure each.
package bans

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
)

// Defaults for Config.
const (
	DefaultAfter         = 5
	DefaultWindow        = 10 * time.Minute
	DefaultFor           = time.Hour
	DefaultMaxFor        = 30 * 24 * time.Hour
	DefaultRemember      = 7 * 24 * time.Hour
	DefaultMaxTracked    = 100_000
	DefaultIPv6Bits      = 64
	DefaultLoginFree     = 3
	DefaultLoginDelay    = 250 * time.Millisecond
	DefaultLoginMaxDelay = 8 * time.Second
	DefaultBanTimeout    = 5 * time.Second
)

// maxAfter bounds Config.After: it is also how many timestamps each tracked
// address keeps.
const maxAfter = 1000

// maxClientKey bounds how much of a client id is kept as a key: ids are at
// most 63 characters, and an attacker's longer ones must not cost memory.
const maxClientKey = 64

// Banner blocks a range for a while, and says whether an address is
// blocked (*blacklist.Blacklist).
type Banner interface {
	BanPrefix(ctx context.Context, p netip.Prefix, reason string, d time.Duration) (api.BlacklistEntry, error)
	Blocked(addr netip.Addr) bool
}

// Config is the ban policy. Zero fields take the defaults.
type Config struct {
	// After failures within Window ban the address (GATEWAY_BAN_AFTER,
	// default 5; GATEWAY_BAN_WINDOW, default 10m).
	After  int
	Window time.Duration
	// For is the first ban's length (GATEWAY_BAN_FOR, default 1h); each
	// further ban of the same address doubles it, up to MaxFor (30 days).
	For    time.Duration
	MaxFor time.Duration
	// Remember is how long after its last ban ended an address's repeat
	// count is kept (default 7 days); after that it starts again at For.
	Remember time.Duration
	// Allow lists ranges never banned (GATEWAY_IP_ALLOWLIST).
	Allow []netip.Prefix
	// MaxTracked bounds the addresses and the client ids tracked (each;
	// default 100000); the least recently seen are forgotten first.
	MaxTracked int
	// IPv6Bits is the IPv6 prefix counted and banned as one (default 64;
	// 128 counts single addresses).
	IPv6Bits int
	// LoginFree failures of a client id within Window cost nothing (default
	// 3): the attempts after them wait LoginDelay (250ms), doubling with each
	// further failure up to LoginMaxDelay (8s).
	LoginFree     int
	LoginDelay    time.Duration
	LoginMaxDelay time.Duration
	// BanTimeout bounds the write of a ban (default 5s).
	BanTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives bans (nil: discard).
	Logger *slog.Logger
	// Counter keeps the addresses' failures, reserved checks and bans
	// (nil: a MemCounter of MaxTracked ranges, in this process). Replicas
	// share one in Redis so that failed attempts count together.
	Counter Counter
}

// Stats counts what the bans did, for metrics.
type Stats struct {
	// Failures counted (not allowlisted).
	Failures uint64
	// Bans made.
	Bans uint64
	// BanErrors are bans that could not be written.
	BanErrors uint64
	// Allowlisted failures, never counted.
	Allowlisted uint64
	// LoginFailures counted per client id.
	LoginFailures uint64
	// CountErrors are failures or checks the Counter could not count
	// (Redis out of reach).
	CountErrors uint64
	// Tracked addresses (ranges; in this process only) and client ids
	// right now.
	Tracked        int
	TrackedClients int
}

// Bans counts failures. It is safe for concurrent use.
type Bans struct {
	cfg Config
	b   Banner
	log *slog.Logger

	counter Counter
	policy  Policy

	mu      sync.Mutex
	clients *simplelru.LRU[string, *loginRecord] // least recently used forgotten first

	failures, bans, banErrors, countErrors, allowlisted, loginFailures atomic.Uint64
}

// loginRecord counts a client id's recent failed logins.
type loginRecord struct {
	n    int
	last int64
}

// New validates cfg, fills defaults and returns the ban counter; b receives
// the bans.
func New(cfg Config, b Banner) (*Bans, error) {
	if b == nil {
		return nil, errors.New("bans: a banner is required")
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		switch {
		case *d < 0:
			return fmt.Errorf("bans: %s must not be negative", name)
		case *d == 0:
			*d = v
		}
		return nil
	}
	for _, f := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&cfg.Window, DefaultWindow, "Window"},
		{&cfg.For, DefaultFor, "For"},
		{&cfg.MaxFor, DefaultMaxFor, "MaxFor"},
		{&cfg.Remember, DefaultRemember, "Remember"},
		{&cfg.LoginDelay, DefaultLoginDelay, "LoginDelay"},
		{&cfg.LoginMaxDelay, DefaultLoginMaxDelay, "LoginMaxDelay"},
		{&cfg.BanTimeout, DefaultBanTimeout, "BanTimeout"},
	} {
		if err := def(f.d, f.v, f.name); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.After < 0 || cfg.After > maxAfter:
		return nil, fmt.Errorf("bans: After must be between 1 and %d", maxAfter)
	case cfg.After == 0:
		cfg.After = DefaultAfter
	}
	if cfg.MaxFor < cfg.For {
		cfg.MaxFor = cfg.For
	}
	if cfg.LoginMaxDelay < cfg.LoginDelay {
		cfg.LoginMaxDelay = cfg.LoginDelay
	}
	switch {
	case cfg.MaxTracked < 0:
		return nil, errors.New("bans: MaxTracked must not be negative")
	case cfg.MaxTracked == 0:
		cfg.MaxTracked = DefaultMaxTracked
	}
	switch {
	case cfg.IPv6Bits == 0:
		cfg.IPv6Bits = DefaultIPv6Bits
	case cfg.IPv6Bits < 32 || cfg.IPv6Bits > 128:
		return nil, errors.New("bans: IPv6Bits must be between 32 and 128")
	}
	switch {
	case cfg.LoginFree < 0:
		return nil, errors.New("bans: LoginFree must not be negative")
	case cfg.LoginFree == 0:
		cfg.LoginFree = DefaultLoginFree
	}
	cfg.Allow = slices.Clone(cfg.Allow)
	for i, p := range cfg.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("bans: invalid allowlisted range %q", p)
		}
		cfg.Allow[i] = cidr.Canonical(p)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Counter == nil {
		cfg.Counter = NewMemCounter(cfg.MaxTracked)
	}
	clients, err := simplelru.NewLRU[string, *loginRecord](cfg.MaxTracked, nil)
	if err != nil {
		return nil, fmt.Errorf("bans: %w", err)
	}
	return &Bans{cfg: cfg, b: b, log: cfg.Logger, counter: cfg.Counter, clients: clients,
		policy: Policy{After: cfg.After, Window: cfg.Window, For: cfg.For, MaxFor: cfg.MaxFor, Remember: cfg.Remember}}, nil
}

// Failed counts a failed attempt from addr (a wrong key, token or intent
// password; reason says which, for the log and the entry). When the address
// (its IPv6 /64) reaches After failures within Window it is banned, for For
// the first time and twice as long each time after, up to MaxFor, and Failed
// reports true. Allowlisted addresses are never counted. The ban is written
// even when ctx is cancelled: an attacker must not escape a ban by hanging
// up.
func (b *Bans) Failed(ctx context.Context, addr netip.Addr, reason string) (banned bool) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return false
	}
	for _, p := range b.cfg.Allow {
		if p.Contains(addr) {
			b.allowlisted.Add(1)
			return false
		}
	}
	b.failures.Add(1)
	key := b.key(addr)
	// Counted even when ctx is cancelled, like the ban.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.BanTimeout)
	repeats, err := b.counter.Fail(cctx, key.String(), b.cfg.Now(), b.policy)
	ccancel()
	if err != nil {
		b.countErrors.Add(1)
		b.log.Error("failure not counted", "cidr", key.String(), "err", err)
		return false
	}
	if repeats == 0 {
		return false
	}
	d := b.policy.BanLength(repeats)

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.BanTimeout)
	defer cancel()
	why := fmt.Sprintf("%d failed attempts within %s (%s)", b.cfg.After, api.ShortDuration(b.cfg.Window), reason)
	if repeats > 1 {
		why = fmt.Sprintf("%s, ban %d", why, repeats)
	}
	if _, err := b.b.BanPrefix(bctx, key, why, d); err != nil {
		b.banErrors.Add(1)
		b.log.Error("ban not written", "cidr", key.String(), "err", err)
		return false
	}
	b.bans.Add(1)
	b.log.Warn("address banned", "cidr", key.String(), "for", d, "repeat", repeats, "reason", reason)
	return true
}

// Attempt reserves the check of a secret sent from addr (an intent
// password) before it runs, so that a burst of guesses sent at once is
// counted before it is checked, not after: it reports false, counting
// nothing, when the address is blocked or when its recent failures and the
// checks already reserved reach After. A burst of any size is thus checked
// at most After times and bans the address once. When it reports true the
// caller must call Release once the check is over. Allowlisted addresses are
// never refused. An error (the shared Counter out of reach) refuses the
// check too: no guess is checked uncounted.
func (b *Bans) Attempt(ctx context.Context, addr netip.Addr) (bool, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return false, nil
	}
	for _, p := range b.cfg.Allow {
		if p.Contains(addr) {
			return true, nil
		}
	}
	if b.b.Blocked(addr) {
		return false, nil
	}
	key := b.key(addr).String()
	ok, err := b.counter.Reserve(ctx, key, b.cfg.Now(), b.policy)
	if err != nil {
		b.countErrors.Add(1)
		return false, err
	}
	return ok, nil
}

// Release ends a check reserved by Attempt; a failed one is counted as
// Failed counts it (and may ban the address).
func (b *Bans) Release(ctx context.Context, addr netip.Addr, failed bool, reason string) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return
	}
	for _, p := range b.cfg.Allow {
		if p.Contains(addr) {
			if failed {
				b.allowlisted.Add(1)
			}
			return
		}
	}
	key := b.key(addr).String()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.BanTimeout)
	if err := b.counter.Unreserve(cctx, key); err != nil {
		b.countErrors.Add(1)
		b.log.Error("check not released", "cidr", key, "err", err)
	}
	cancel()
	if failed {
		b.Failed(ctx, addr, reason)
	}
}

// key is the range addr is counted in: itself for IPv4, its /IPv6Bits
// prefix for IPv6.
func (b *Bans) key(addr netip.Addr) netip.Prefix {
	bits := addr.BitLen()
	if addr.Is6() {
		bits = b.cfg.IPv6Bits
	}
	p, _ := addr.Prefix(bits)
	return p
}

// LoginDelay is how long to wait before answering a login for clientID:
// nothing until LoginFree failures within Window, then LoginDelay, doubling
// with each further failure, up to LoginMaxDelay. It counts
// failures from every address, so that spreading guesses over many addresses
// does not help; it only slows the answer down and never refuses it, so it
// cannot be used to lock the owner out.
func (b *Bans) LoginDelay(clientID string) time.Duration {
	return b.loginDelay(clientKey(clientID))
}

func (b *Bans) loginDelay(key string) time.Duration {
	now := b.cfg.Now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.clients.Peek(key)
	if !ok {
		return 0
	}
	if now-r.last > int64(b.cfg.Window) {
		b.clients.Remove(key)
		return 0
	}
	over := r.n - b.cfg.LoginFree
	if over < 0 {
		return 0
	}
	return b.slowDown(over)
}

// LoginFailed counts a failed login for clientID (from any address). A
// failure more than Window after the previous one starts the count again.
func (b *Bans) LoginFailed(clientID string) {
	b.loginFailed(clientKey(clientID))
}

func (b *Bans) loginFailed(key string) {
	now := b.cfg.Now().UnixNano()
	b.loginFailures.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.loginRecordLocked(key, now)
	r.n++
	r.last = now
}

// loginRecordLocked returns key's record, made when missing and counted
// afresh when its last entry is more than Window before now. b.mu held.
func (b *Bans) loginRecordLocked(key string, now int64) *loginRecord {
	r, ok := b.clients.Get(key)
	if !ok {
		r = &loginRecord{}
		b.clients.Add(key, r)
	}
	if now-r.last > int64(b.cfg.Window) {
		r.n = 0
	}
	return r
}

// AttemptDelay counts an attempt for key (a client's intent passwords)
// before it is checked, and returns how long to wait before checking it: the
// slow-down of LoginDelay, counted from the attempts rather than from their
// failures, so that attempts sent at once wait in turn. LoginSucceeded(key)
// ends it.
func (b *Bans) AttemptDelay(key string) time.Duration {
	key = clientKey(key)
	now := b.cfg.Now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.loginRecordLocked(key, now)
	over := r.n - b.cfg.LoginFree
	r.n++
	r.last = now
	if over < 0 {
		return 0
	}
	return b.slowDown(over)
}

// slowDown is the wait of an attempt over failures past the free ones:
// LoginDelay, doubling with each, at most LoginMaxDelay.
func (b *Bans) slowDown(over int) time.Duration {
	d := b.cfg.LoginDelay
	for i := 0; i < over && d < b.cfg.LoginMaxDelay; i++ {
		d *= 2
	}
	return min(d, b.cfg.LoginMaxDelay)
}

// LoginSucceeded ends clientID's slow-down. Address failures and bans stay.
func (b *Bans) LoginSucceeded(clientID string) {
	b.loginSucceeded(clientKey(clientID))
}

func (b *Bans) loginSucceeded(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients.Remove(key)
}

// Logins is the login slow-down keyed by client and address (see
// LoginThrottle).
func (b *Bans) Logins() LoginThrottle { return LoginThrottle{b: b} }

// LoginThrottle slows down logins for a client from the addresses that keep
// failing it: LoginDelay, LoginFailed and LoginSucceeded counted for the
// client and the address's range (itself for IPv4, its /IPv6Bits prefix for
// IPv6) together. Wrong keys sprayed for a client from other addresses then
// slow those addresses down, never the client's own correct login from
// where it is. Spreading the guesses over many addresses gains an attacker
// nothing: each address is banned after After failures anyway, and an
// access key is 256 random bits.
type LoginThrottle struct{ b *Bans }

func (t LoginThrottle) key(clientID string, addr netip.Addr) string {
	rng := "-"
	if addr.IsValid() {
		rng = t.b.key(addr.Unmap().WithZone("")).String()
	}
	return clientKey(clientID) + "\x00" + rng
}

// LoginDelay is how long to wait before answering a login for clientID
// from addr (Bans.LoginDelay, counted for the pair).
func (t LoginThrottle) LoginDelay(clientID string, addr netip.Addr) time.Duration {
	return t.b.loginDelay(t.key(clientID, addr))
}

// LoginFailed counts a failed login for clientID from addr.
func (t LoginThrottle) LoginFailed(clientID string, addr netip.Addr) {
	t.b.loginFailed(t.key(clientID, addr))
}

// LoginSucceeded ends the slow-down of clientID from addr.
func (t LoginThrottle) LoginSucceeded(clientID string, addr netip.Addr) {
	t.b.loginSucceeded(t.key(clientID, addr))
}

// Stats returns the counters.
func (b *Bans) Stats() Stats {
	b.mu.Lock()
	clients := b.clients.Len()
	b.mu.Unlock()
	tracked := 0
	if m, ok := b.counter.(*MemCounter); ok {
		tracked = m.Len()
	}
	return Stats{
		Failures:       b.failures.Load(),
		Bans:           b.bans.Load(),
		BanErrors:      b.banErrors.Load(),
		CountErrors:    b.countErrors.Load(),
		Allowlisted:    b.allowlisted.Load(),
		LoginFailures:  b.loginFailures.Load(),
		Tracked:        tracked,
		TrackedClients: clients,
	}
}

func clientKey(id string) string {
	if len(id) > maxClientKey {
		id = id[:maxClientKey]
	}
	return id
}
