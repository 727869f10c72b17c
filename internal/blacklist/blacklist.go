// Package blacklist is the gateway's IP blacklist: ranges from the
// configuration (GATEWAY_IP_BLACKLIST), ranges the admin adds, and the
// automatic bans of addresses that keep failing to authenticate.
//
// Every request asks Blocked, so lookups never take a lock: they read an
// immutable snapshot behind an atomic pointer, which writers replace whole.
// The snapshot keeps one map per prefix length in use (per address family),
// so a lookup costs one map probe per distinct prefix length, whatever the
// number of entries (usually a handful of lengths: /32, /64, /24...).
package blacklist

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
)

// Limits on what the admin may add.
const (
	// MaxReasonLen bounds an entry's reason, in characters.
	MaxReasonLen = 200
	// MaxTTL bounds an entry's lifetime; longer means "forever" and is
	// written without a ttl.
	MaxTTL = 10 * 365 * 24 * time.Hour
	// MinBits4 and MinBits6 are the shortest prefixes the admin API accepts:
	// a /0 or /4 typed by mistake would lock everyone out, the admin
	// included (the blacklist runs before authentication). The
	// configuration may still list anything.
	MinBits4 = 8
	MinBits6 = 16
)

// configReason is the reason shown for configured entries.
const configReason = "set by GATEWAY_IP_BLACKLIST"

// Store keeps the admin and automatic entries (*store.Store).
type Store interface {
	AddBlacklist(ctx context.Context, e api.BlacklistEntry) error
	Blacklist(ctx context.Context) ([]api.BlacklistEntry, error)
	RemoveBlacklist(ctx context.Context, cidr string) error
}

// Config is the blacklist's configuration.
type Config struct {
	// Static are the configured ranges (GATEWAY_IP_BLACKLIST): source
	// "config", they never expire and cannot be removed through the API.
	Static []netip.Prefix
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings (nil: discard).
	Logger *slog.Logger
}

// Blacklist answers whether an address is refused, and manages the entries.
// It is safe for concurrent use.
type Blacklist struct {
	st     Store
	now    func() time.Time
	log    *slog.Logger
	static []entry

	// mu serialises writers (Add, Ban, Remove, Refresh) so that a reload
	// never overwrites a newer in-memory change with an older read.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// entry is one range as the snapshot holds it.
type entry struct {
	e api.BlacklistEntry // CIDR in canonical form
	p netip.Prefix
	// raw is the spelling the store keys the entry by ("" for config).
	raw string
}

// snapshot is an immutable view of the blacklist.
type snapshot struct {
	v4, v6 table
	stored []entry // admin and auto entries; config entries are in Blacklist.static
}

// table finds the entries covering an address of one family.
type table struct {
	bits []int                  // the prefix lengths in use, longest first
	m    map[netip.Prefix]int64 // expiry in unix nanoseconds; 0 = never
}

// New builds the blacklist from cfg.Static and the store's entries.
func New(ctx context.Context, cfg Config, st Store) (*Blacklist, error) {
	if st == nil {
		return nil, errors.New("blacklist: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Blacklist{st: st, now: cfg.Now, log: cfg.Logger}
	created := millis(cfg.Now())
	seen := map[netip.Prefix]bool{}
	for _, p := range cfg.Static {
		if !p.IsValid() {
			return nil, fmt.Errorf("blacklist: invalid configured range %q", p)
		}
		p = cidr.Canonical(p)
		if seen[p] {
			continue
		}
		seen[p] = true
		b.static = append(b.static, entry{p: p, e: api.BlacklistEntry{
			CIDR: p.String(), Reason: configReason, Source: api.BlacklistConfig, CreatedAt: created,
		}})
	}
	b.snap.Store(b.build(nil))
	if err := b.Refresh(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Blocked reports whether addr is inside an entry that has not expired. It
// takes no lock and allocates nothing; an expired entry stops blocking at
// its expiry even before the next refresh drops it. IPv4-mapped IPv6
// addresses are looked up as IPv4, so a dual-stack listener cannot be used
// to dodge an IPv4 entry.
func (b *Blacklist) Blocked(addr netip.Addr) bool {
	t, addr := b.snap.Load().tableFor(addr)
	if t == nil {
		return false
	}
	var now int64
	for _, bits := range t.bits {
		p, err := addr.Prefix(bits)
		if err != nil {
			continue
		}
		exp, ok := t.m[p]
		if !ok {
			continue
		}
		if exp == 0 {
			return true
		}
		if now == 0 {
			now = b.now().UnixNano()
		}
		if now < exp {
			return true
		}
	}
	return false
}

// tableFor returns the table that holds addr's family and addr as it is
// looked up there: IPv4-mapped IPv6 as IPv4, without a zone. nil for an
// invalid address.
func (s *snapshot) tableFor(addr netip.Addr) (*table, netip.Addr) {
	addr = addr.Unmap().WithZone("")
	switch {
	case addr.Is4():
		return &s.v4, addr
	case addr.Is6():
		return &s.v6, addr
	}
	return nil, addr
}

// BlockedUntil is Blocked, and when the block ends: the latest expiry of
// the entries addr is in, the zero time when one never expires. It lets a
// refusal say when to come back.
func (b *Blacklist) BlockedUntil(addr netip.Addr) (bool, time.Time) {
	t, addr := b.snap.Load().tableFor(addr)
	if t == nil {
		return false, time.Time{}
	}
	now := b.now().UnixNano()
	var last int64
	blocked := false
	for _, bits := range t.bits {
		p, err := addr.Prefix(bits)
		if err != nil {
			continue
		}
		exp, ok := t.m[p]
		if !ok {
			continue
		}
		if exp == 0 {
			return true, time.Time{}
		}
		if now < exp {
			blocked = true
			last = max(last, exp)
		}
	}
	if !blocked {
		return false, time.Time{}
	}
	return true, time.Unix(0, last)
}

// List returns the entries in force: configured ones and stored ones that
// have not expired, sorted by address (IPv4 first), then prefix length, then
// source.
func (b *Blacklist) List(ctx context.Context) ([]api.BlacklistEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := b.snap.Load()
	now := b.now()
	all := make([]entry, 0, len(b.static)+len(s.stored))
	all = append(all, b.static...)
	for _, e := range s.stored {
		if !expired(e.e, now) {
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(x, y entry) int {
		if c := x.p.Addr().Compare(y.p.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(x.p.Bits(), y.p.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(x.e.Source, y.e.Source)
	})
	out := make([]api.BlacklistEntry, len(all))
	for i, e := range all {
		out[i] = clone(e.e)
	}
	return out, nil
}

// Add adds (or replaces) an admin entry. r.CIDR is a range or a bare address
// (one host); r.TTL, when set, is a Go duration between 1s and MaxTTL; the
// reason is at most MaxReasonLen printable characters. Anything else is
// EINVALID. The entry is written to the store before it takes effect.
func (b *Blacklist) Add(ctx context.Context, r api.BlacklistRequest) (api.BlacklistEntry, error) {
	p, err := cidr.Parse(r.CIDR)
	if err != nil {
		return api.BlacklistEntry{}, err
	}
	minBits := MinBits6
	if p.Addr().Is4() {
		minBits = MinBits4
	}
	if p.Bits() < minBits {
		return api.BlacklistEntry{}, api.Errorf(api.EINVALID,
			"%s is too broad: the shortest prefix accepted is /%d", p, minBits)
	}
	reason := strings.TrimSpace(r.Reason)
	if err := checkReason(reason); err != nil {
		return api.BlacklistEntry{}, err
	}
	now := b.now()
	e := api.BlacklistEntry{CIDR: p.String(), Reason: reason, Source: api.BlacklistAdmin, CreatedAt: millis(now)}
	if ttl := strings.TrimSpace(r.TTL); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || len(ttl) > 32 {
			return api.BlacklistEntry{}, api.Errorf(api.EINVALID, "ttl is not a duration such as \"1h\" or \"30m\"")
		}
		if d < time.Second || d > MaxTTL {
			return api.BlacklistEntry{}, api.Errorf(api.EINVALID, "ttl must be between 1s and %s", api.ShortDuration(MaxTTL))
		}
		exp := millis(now.Add(d))
		e.ExpiresAt = &exp
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.st.AddBlacklist(ctx, e); err != nil {
		return api.BlacklistEntry{}, fmt.Errorf("blacklist: add %s: %w", e.CIDR, err)
	}
	b.upsertLocked(entry{e: e, p: p, raw: e.CIDR})
	b.log.Info("blacklist entry added", "cidr", e.CIDR, "source", e.Source, "expires_at", e.ExpiresAt)
	return clone(e), nil
}

// Ban blocks the one host addr for d (source "auto"): the automatic ban of
// an address that failed too often.
func (b *Blacklist) Ban(ctx context.Context, addr netip.Addr, reason string, d time.Duration) (api.BlacklistEntry, error) {
	if !addr.IsValid() {
		return api.BlacklistEntry{}, api.Errorf(api.EINVALID, "invalid address")
	}
	return b.BanPrefix(ctx, cidr.Host(addr), reason, d)
}

// BanPrefix blocks the range p for d (source "auto"). Callers counting
// failures per IPv6 /64 ban the whole /64, since one subscriber usually
// holds at least that much and could rotate addresses within it. A ban never
// shortens an entry already in force for the same range (a permanent admin
// entry stays permanent); the entry in force is returned instead.
func (b *Blacklist) BanPrefix(ctx context.Context, p netip.Prefix, reason string, d time.Duration) (api.BlacklistEntry, error) {
	if !p.IsValid() || d <= 0 {
		return api.BlacklistEntry{}, api.Errorf(api.EINVALID, "invalid ban")
	}
	p = cidr.Canonical(p)
	if d > MaxTTL {
		d = MaxTTL
	}
	now := b.now()
	exp := millis(now.Add(d))
	e := api.BlacklistEntry{
		CIDR: p.String(), Reason: sanitize(reason), Source: api.BlacklistAuto,
		CreatedAt: millis(now), ExpiresAt: &exp,
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.static {
		if s.p == p {
			return clone(s.e), nil
		}
	}
	for _, s := range b.snap.Load().stored {
		if s.p == p && !expired(s.e, now) && (s.e.ExpiresAt == nil || !s.e.ExpiresAt.Before(exp)) {
			return clone(s.e), nil
		}
	}
	if err := b.st.AddBlacklist(ctx, e); err != nil {
		return api.BlacklistEntry{}, fmt.Errorf("blacklist: ban %s: %w", e.CIDR, err)
	}
	b.upsertLocked(entry{e: e, p: p, raw: e.CIDR})
	b.log.Warn("address banned", "cidr", e.CIDR, "reason", e.Reason, "for", d)
	return clone(e), nil
}

// Remove deletes the stored entry for the range r, written in any form Add
// accepts. A configured range cannot be removed (EFORBIDDEN: it comes back
// with the next start); an unknown one is ENOTFOUND.
func (b *Blacklist) Remove(ctx context.Context, r string) error {
	p, err := cidr.Parse(r)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.static {
		if s.p == p {
			return api.Errorf(api.EFORBIDDEN,
				"%s is set by GATEWAY_IP_BLACKLIST; remove it from the configuration instead", p)
		}
	}
	// Every stored spelling of the range goes (another process may have
	// written an IPv4-mapped form).
	raws := []string{}
	for _, s := range b.snap.Load().stored {
		if s.p == p {
			raws = append(raws, s.raw)
		}
	}
	if len(raws) == 0 {
		// Perhaps added by another process since the last refresh.
		raws = append(raws, p.String())
	}
	removed := 0
	for _, raw := range raws {
		err := b.st.RemoveBlacklist(ctx, raw)
		switch {
		case err == nil:
			removed++
		case api.ErrorCode(err) == api.ENOTFOUND:
		default:
			return fmt.Errorf("blacklist: remove %s: %w", p, err)
		}
	}
	if removed == 0 {
		return api.Errorf(api.ENOTFOUND, "no blacklist entry for %s", p)
	}
	s := b.snap.Load()
	kept := make([]entry, 0, len(s.stored))
	for _, e := range s.stored {
		if e.p != p {
			kept = append(kept, e)
		}
	}
	b.snap.Store(b.build(kept))
	b.log.Info("blacklist entry removed", "cidr", p.String())
	return nil
}

// Refresh reloads the stored entries, to see what another process (the
// command line) changed, and forgets expired ones. On error the current
// entries stay in force.
func (b *Blacklist) Refresh(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	list, err := b.st.Blacklist(ctx)
	if err != nil {
		return fmt.Errorf("blacklist: load: %w", err)
	}
	stored := make([]entry, 0, len(list))
	for _, e := range list {
		p, err := cidr.Parse(e.CIDR)
		if err != nil {
			b.log.Warn("unreadable blacklist entry skipped", "cidr", e.CIDR)
			continue
		}
		raw := e.CIDR
		e.CIDR = p.String()
		stored = append(stored, entry{e: e, p: p, raw: raw})
	}
	b.snap.Store(b.build(stored))
	return nil
}

// upsertLocked replaces the stored entry for e's range, or adds it. b.mu
// must be held.
func (b *Blacklist) upsertLocked(e entry) {
	s := b.snap.Load()
	stored := make([]entry, 0, len(s.stored)+1)
	for _, o := range s.stored {
		if o.p != e.p {
			stored = append(stored, o)
		}
	}
	stored = append(stored, e)
	b.snap.Store(b.build(stored))
}

// build makes a snapshot of the configured entries and stored, dropping
// stored entries that have expired.
func (b *Blacklist) build(stored []entry) *snapshot {
	now := b.now()
	s := &snapshot{
		v4:     table{m: map[netip.Prefix]int64{}},
		v6:     table{m: map[netip.Prefix]int64{}},
		stored: make([]entry, 0, len(stored)),
	}
	add := func(e entry) {
		t := &s.v6
		if e.p.Addr().Is4() {
			t = &s.v4
		}
		var exp int64
		if e.e.ExpiresAt != nil {
			exp = e.e.ExpiresAt.UnixNano()
		}
		old, ok := t.m[e.p]
		switch {
		case !ok:
			t.m[e.p] = exp
			t.bits = append(t.bits, e.p.Bits())
		case old == 0 || exp == 0:
			t.m[e.p] = 0
		default:
			t.m[e.p] = max(old, exp)
		}
	}
	for _, e := range b.static {
		add(e)
	}
	for _, e := range stored {
		if expired(e.e, now) {
			continue
		}
		s.stored = append(s.stored, e)
		add(e)
	}
	for _, t := range []*table{&s.v4, &s.v6} {
		slices.Sort(t.bits)
		t.bits = slices.Compact(t.bits)
		slices.Reverse(t.bits)
	}
	return s
}

func expired(e api.BlacklistEntry, now time.Time) bool {
	return e.ExpiresAt != nil && !now.Before(*e.ExpiresAt)
}

// clone copies e, so that callers cannot change the snapshot's expiry.
func clone(e api.BlacklistEntry) api.BlacklistEntry {
	if e.ExpiresAt != nil {
		t := *e.ExpiresAt
		e.ExpiresAt = &t
	}
	return e
}

// millis rounds t to the store's precision, so that an entry reads back the
// same after a reload.
func millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// checkReason refuses reasons that are too long or carry control
// characters (the reason reaches logs and the console).
func checkReason(s string) error {
	if !utf8.ValidString(s) {
		return api.Errorf(api.EINVALID, "reason is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxReasonLen {
		return api.Errorf(api.EINVALID, "reason is %d characters long, at most %d allowed", n, MaxReasonLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return api.Errorf(api.EINVALID, "reason contains a control or non-printable character")
		}
	}
	return nil
}

// sanitize makes an internal reason storable: printable, bounded.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if utf8.RuneCountInString(s) > MaxReasonLen {
		s = string([]rune(s)[:MaxReasonLen])
	}
	return strings.TrimSpace(s)
}
