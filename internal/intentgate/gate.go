// Package intentgate guards password-protected intents (docs/protocol.md,
// "Intent passwords"). When any pattern is protected, each utterance is
// first shown to the assistant in a dry run (which intent would handle
// this?); an utterance headed for a protected intent goes on the bus only
// with that intent's password. Every protected pattern the utterance has not
// unlocked also goes into the session that goes on the bus, as OVOS lists it
// (blacklisted_intents, blacklisted_skills; wildcards expanded against the
// intents the bus has announced), so that OVOS skips them even when its real
// run differs from the dry run.
//
// With no pattern protected the gate costs nothing: no dry run, no lock.
package intentgate

import (
	"cmp"
	"context"
	"encoding/json"
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
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/busframe"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
)

// MaxPasswordLen bounds an intent password, in bytes.
const MaxPasswordLen = 1024

// Defaults for Config.
const (
	DefaultRefreshEvery = 30 * time.Second
	DefaultTimeout      = 5 * time.Second
	DefaultMaxVerify    = 4
	// retryAfter is what a refusal for an unanswered dry run suggests.
	retryAfter = 5 * time.Second
)

// Store keeps the patterns and their password hashes (*store.Store).
type Store interface {
	Protect(ctx context.Context, pattern, passwordHash string) error
	ProtectedIntents(ctx context.Context) ([]store.ProtectedIntent, error)
	Unprotect(ctx context.Context, pattern string) error
}

// DryRun asks the assistant which intent would handle an utterance, without
// running it (*bridge.Bridge); nil means none would.
type DryRun interface {
	Intent(ctx context.Context, u bridge.Utterance) (*bridge.Intent, error)
}

// Failures counts password checks before they run, as logins are counted
// (*bans.Bans). Per address: Attempt reserves one (false: refuse it
// unchecked, the address has failed or is trying too often; an error: it
// could not be counted, refuse it unchecked too), Release ends
// it and counts a failure towards a ban. Per client: AttemptDelay counts an
// attempt and says how long it waits first, LoginSucceeded ends the
// slow-down. Pass a nil interface, not a nil pointer, for none.
type Failures interface {
	Attempt(ctx context.Context, addr netip.Addr) (bool, error)
	Release(ctx context.Context, addr netip.Addr, failed bool, reason string)
	AttemptDelay(key string) time.Duration
	LoginSucceeded(key string)
}

// throttleKey is the per-client key of intent passwords in Failures, apart
// from the client's logins (client ids never hold a colon).
func throttleKey(clientID string) string { return "intent-password:" + clientID }

// Config is the gate's configuration.
type Config struct {
	// FailOpen lets an utterance through (still with the blacklisted
	// intents) when the dry run fails (GATEWAY_INTENT_CHECK=open). The
	// default refuses it with EUNAVAILABLE (fail closed).
	FailOpen bool
	// Logger receives refusals and errors, never a password (nil: discard).
	Logger *slog.Logger
	// RefreshEvery is how often the patterns are reloaded from the store,
	// to see what the command line changed (default 30s; negative: never,
	// the caller calls Refresh, e.g. from store.Watch). Run does the
	// reloading, until its context ends.
	RefreshEvery time.Duration
	// Timeout bounds a dry run, as a backstop for the bridge's own (default
	// 5s).
	Timeout time.Duration
	// MaxVerify bounds the password checks running at once: each costs an
	// Argon2id hash (about 19 MiB and 30 ms), so a flood of guesses must
	// queue rather than exhaust memory (default 4).
	MaxVerify int
}

// Stats counts what the gate did, for metrics.
type Stats struct {
	DryRuns          uint64
	DryRunFailures   uint64
	FailedOpen       uint64
	PasswordRequired uint64
	PasswordInvalid  uint64
	// PasswordRefused are passwords refused unchecked: the address had
	// too many failures and checks under way (Failures.Attempt).
	PasswordRefused uint64
	Unlocked        uint64
}

// Gate checks utterances against the protected patterns. It is safe for
// concurrent use.
type Gate struct {
	cfg   Config
	st    Store
	dry   DryRun
	fails Failures
	log   *slog.Logger
	sem   chan struct{}

	// mu serialises writers, so that a reload never replaces a newer
	// snapshot with an older read.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]

	knownMu  sync.Mutex
	known    map[known]struct{}
	knownGen atomic.Uint64 // bumped when known grows
	full     atomic.Pointer[expansion]

	dryRuns, dryRunFailures, failedOpen, required, invalid, unlocked, refused atomic.Uint64
}

// snapshot is an immutable view of the protected patterns.
type snapshot struct {
	rules []rule
}

// Blacklist is what a session may not use, as an OVOS session lists it.
type Blacklist = bridge.Blacklist

// covers reports whether b keeps OVOS from running in: its type is
// listed, or its skill.
func covers(b Blacklist, in *bridge.Intent) bool {
	_, typ := slices.BinarySearch(b.Intents, in.Type)
	_, skill := slices.BinarySearch(b.Skills, in.SkillID)
	return (in.Type != "" && typ) || (in.SkillID != "" && skill)
}

// known is an intent the bus has announced: in a dry run's answer, an
// intent registration (register_intent, padatious:register_intent) or the
// intent message of a real run.
type known struct {
	typ, name, skill string
}

// maxKnown bounds the intents remembered for expanding wildcards; beyond it
// new ones are not remembered (a bus that announces that many is not an
// assistant's).
const maxKnown = 8192

// maxKnownName bounds the names of a known intent, in bytes.
const maxKnownName = 1024

// expansion is the full blacklist of a snapshot and the known intents of
// one generation, computed once for every utterance that unlocks nothing.
type expansion struct {
	snap *snapshot
	gen  uint64
	bl   Blacklist
}

// rule is one protected pattern.
type rule struct {
	pattern string
	hash    string
	created time.Time
	literal bool // no wildcard
	chars   int  // characters other than '*'
	stars   int
}

// New loads the patterns (under ctx) and returns the gate. dry is required;
// fails may be nil. It starts nothing: Run reloads the patterns periodically.
func New(ctx context.Context, cfg Config, st Store, dry DryRun, fails Failures) (*Gate, error) {
	if st == nil || dry == nil {
		return nil, errors.New("intentgate: a store and a dry run are required")
	}
	if cfg.Timeout < 0 || cfg.MaxVerify < 0 {
		return nil, errors.New("intentgate: negative Timeout or MaxVerify")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxVerify == 0 {
		cfg.MaxVerify = DefaultMaxVerify
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gate{
		cfg: cfg, st: st, dry: dry, fails: fails, log: cfg.Logger,
		sem:   make(chan struct{}, cfg.MaxVerify),
		known: make(map[known]struct{}),
	}
	g.snap.Store(&snapshot{})
	if err := g.Refresh(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Run reloads the patterns every cfg.RefreshEvery until ctx ends, then
// returns nil; with a negative RefreshEvery it returns at once.
func (g *Gate) Run(ctx context.Context) error {
	if g.cfg.RefreshEvery < 0 {
		return nil
	}
	t := time.NewTicker(g.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := g.Refresh(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("protected intents not reloaded", "err", err)
			}
		}
	}
}

// Refresh reloads the patterns from the store (the command line may have
// changed them). On error the current patterns stay in force.
func (g *Gate) Refresh(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.reloadLocked(ctx)
	return err
}

func (g *Gate) reloadLocked(ctx context.Context) (*snapshot, error) {
	list, err := g.st.ProtectedIntents(ctx)
	if err != nil {
		return nil, fmt.Errorf("intentgate: load patterns: %w", err)
	}
	s := &snapshot{rules: make([]rule, 0, len(list))}
	for _, p := range list {
		// A pattern the store holds is enforced even if it would not pass
		// ValidPattern now: protecting too much is the safe mistake.
		s.rules = append(s.rules, rule{
			pattern: p.Pattern, hash: p.PasswordHash, created: p.CreatedAt,
			literal: !strings.Contains(p.Pattern, "*"),
			chars:   len(p.Pattern) - strings.Count(p.Pattern, "*"),
			stars:   strings.Count(p.Pattern, "*"),
		})
	}
	g.snap.Store(s)
	return s, nil
}

// List returns the protected patterns, sorted, without their hashes.
func (g *Gate) List(ctx context.Context) ([]api.ProtectedIntent, error) {
	g.mu.Lock()
	s, err := g.reloadLocked(ctx)
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]api.ProtectedIntent, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, api.ProtectedIntent{Pattern: r.pattern, CreatedAt: r.created})
	}
	slices.SortFunc(out, func(a, b api.ProtectedIntent) int { return cmp.Compare(a.Pattern, b.Pattern) })
	return out, nil
}

// Protect sets pattern's password (adding the pattern, or replacing its
// password). The password is stored only as an Argon2id hash. An invalid
// pattern, an empty password or one longer than MaxPasswordLen bytes is
// EINVALID.
func (g *Gate) Protect(ctx context.Context, pattern string, password api.Secret) (api.ProtectedIntent, error) {
	if err := ValidPattern(pattern); err != nil {
		return api.ProtectedIntent{}, err
	}
	switch {
	case password == "":
		return api.ProtectedIntent{}, api.Errorf(api.EINVALID, "empty password")
	case len(password) > MaxPasswordLen:
		return api.ProtectedIntent{}, api.Errorf(api.EINVALID, "password longer than %d bytes", MaxPasswordLen)
	}
	hash, err := keys.Hash(password.Reveal())
	if err != nil {
		return api.ProtectedIntent{}, fmt.Errorf("intentgate: hash password: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.st.Protect(ctx, pattern, hash); err != nil {
		return api.ProtectedIntent{}, fmt.Errorf("intentgate: protect %q: %w", pattern, err)
	}
	s, err := g.reloadLocked(ctx)
	if err != nil {
		return api.ProtectedIntent{}, err
	}
	g.log.Info("intent protected", "pattern", pattern)
	for _, r := range s.rules {
		if r.pattern == pattern {
			return api.ProtectedIntent{Pattern: r.pattern, CreatedAt: r.created}, nil
		}
	}
	return api.ProtectedIntent{}, fmt.Errorf("intentgate: pattern %q missing after protect", pattern)
}

// Unprotect removes pattern (ENOTFOUND when it is not protected).
func (g *Gate) Unprotect(ctx context.Context, pattern string) error {
	if pattern == "" {
		return api.Errorf(api.EINVALID, "empty intent pattern")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.st.Unprotect(ctx, pattern); err != nil {
		return fmt.Errorf("intentgate: unprotect %q: %w", pattern, err)
	}
	if _, err := g.reloadLocked(ctx); err != nil {
		return err
	}
	g.log.Info("intent unprotected", "pattern", pattern)
	return nil
}

// Check decides whether u may go on the bus, and returns what its session
// may not use: the blacklist to put in the session that goes on the bus.
//
// With no pattern protected it returns an empty blacklist at once, without
// a dry run. Otherwise it asks the dry run which intent would handle u. When
// the intent (its type "skill:Intent", its name or its skill id) matches
// protected patterns, the most specific of them decides (a pattern without
// wildcard before any with one, then the most characters other than '*',
// then the fewest '*'): its password is required (EPASSWORDREQUIRED without
// one, EPASSWORDINVALID for a wrong one, which also counts as a failure of
// addr); the error's Intent names the intent. With the right password u goes
// through, with every pattern that does not match this intent blacklisted.
// When nothing protected matches, u goes through with every pattern
// blacklisted.
//
// The exception is an answer: when the dry run says that a follow-up
// question of the session waits (bridge.Intent.Answer), u would be taken as
// its answer, whatever it matches, and needs no password, provided the
// blacklist covers the protected intent it matches, so that it can never
// start it (should the question be over by the time u arrives).
//
// The blacklist holds every protected pattern as OVOS understands it (see
// Blacklist): "skill:Intent" patterns as intents, patterns without '*' or
// ':' and "skill:*" as skills, and wildcards expanded against the intents
// the bus has announced (Announce, and every dry run's answer): the whole
// skill when the pattern matches its id, else each intent it matches.
//
// When the dry run fails (the bus is down or silent), u is refused with
// EUNAVAILABLE and a Retry-After, unless Config.FailOpen, in which case it
// goes through with every pattern blacklisted.
func (g *Gate) Check(ctx context.Context, u bridge.Utterance, password api.Secret, addr netip.Addr) (Blacklist, error) {
	s := g.snap.Load()
	if len(s.rules) == 0 {
		return Blacklist{}, nil
	}
	g.dryRuns.Add(1)
	dctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	in, err := g.dry.Intent(dctx, u)
	cancel()
	if err != nil {
		return g.dryRunFailed(ctx, s, u, err)
	}
	if in == nil {
		return g.blacklist(s), nil
	}
	g.learn(known{typ: in.Type, name: in.Name, skill: in.SkillID})
	r, ok := s.match(in)
	if !ok {
		return g.blacklist(s), nil
	}
	name := intentName(in)
	if in.Answer {
		if bl := g.blacklist(s); covers(bl, in) {
			return bl, nil
		}
	}
	if password == "" {
		g.required.Add(1)
		return Blacklist{}, &api.Error{Code: api.EPASSWORDREQUIRED, Intent: name,
			Detail: fmt.Sprintf("the intent %s is protected: send its password", name)}
	}
	// Counted before it is checked (issue: 40 guesses sent at once were all
	// checked, and banned the address 8 times over).
	if g.fails != nil {
		ok, err := g.fails.Attempt(ctx, addr)
		if err != nil {
			// Shared counters out of reach: never a guess checked uncounted.
			return Blacklist{}, err
		}
		if !ok {
			g.refused.Add(1)
			g.log.Warn("intent password refused unchecked: too many attempts from the address", "intent", name, "client", u.ClientID, "addr", addr)
			return Blacklist{}, &api.Error{Code: api.ERATELIMITED, Intent: name, RetryAfter: retryAfter,
				Detail: "too many intent password attempts from this address; try again later"}
		}
	}
	good := false
	if len(password) <= MaxPasswordLen {
		if err = g.slowDown(ctx, u.ClientID); err == nil {
			good, err = g.verify(ctx, r.hash, password)
		}
	}
	if g.fails != nil {
		g.fails.Release(ctx, addr, err == nil && !good, "intent-password")
		if good {
			g.fails.LoginSucceeded(throttleKey(u.ClientID))
		}
	}
	if err != nil {
		return Blacklist{}, err
	}
	if !good {
		g.invalid.Add(1)
		g.log.Warn("wrong intent password", "intent", name, "pattern", r.pattern, "client", u.ClientID, "addr", addr)
		return Blacklist{}, &api.Error{Code: api.EPASSWORDINVALID, Intent: name,
			Detail: fmt.Sprintf("wrong password for the intent %s", name)}
	}
	g.unlocked.Add(1)
	return expand(s.rules, g.knownIntents(), func(p string) bool { return matchesIntent(p, in) }), nil
}

// Announce learns the intents a bus frame announces, for expanding
// wildcards into the blacklist: register_intent and
// padatious:register_intent (data.name "skill_id:IntentName"), and an
// intent message "skill_id:IntentName" whose context names that skill. It
// is quick, never blocks on the bus, and ignores anything else: subscribe
// it to the bus link.
func (g *Gate) Announce(f *api.Frame) {
	if f == nil {
		return
	}
	switch f.Type {
	case typeRegisterIntent, typePadatiousRegister:
		var name string
		if busframe.Member(f.Data, "name") != nil {
			_ = json.Unmarshal(busframe.Member(f.Data, "name"), &name)
		}
		if skill, intent, ok := strings.Cut(name, ":"); ok && skill != "" && intent != "" {
			g.learn(known{typ: name, name: name, skill: skill})
		}
	default:
		skill, intent, ok := strings.Cut(f.Type, ":")
		if !ok || skill == "" || intent == "" {
			return
		}
		var ctxSkill string
		if raw := busframe.Member(f.Context, "skill_id"); raw != nil {
			_ = json.Unmarshal(raw, &ctxSkill)
		}
		if ctxSkill == skill {
			g.learn(known{typ: f.Type, name: f.Type, skill: skill})
		}
	}
}

// Bus message types that register intents (ovos-workshop, at skill load).
const (
	typeRegisterIntent    = "register_intent"
	typePadatiousRegister = "padatious:register_intent"
)

// learn remembers an announced intent (bounded, see maxKnown). Names
// longer than maxKnownName are no intent of a real skill: ignored.
func (g *Gate) learn(k known) {
	if (k.typ == "" && k.skill == "") || len(k.typ) > maxKnownName || len(k.name) > maxKnownName || len(k.skill) > maxKnownName {
		return
	}
	g.knownMu.Lock()
	defer g.knownMu.Unlock()
	if _, ok := g.known[k]; ok || len(g.known) >= maxKnown {
		return
	}
	g.known[k] = struct{}{}
	g.knownGen.Add(1)
}

// knownIntents returns the announced intents, in no particular order.
func (g *Gate) knownIntents() []known {
	g.knownMu.Lock()
	defer g.knownMu.Unlock()
	out := make([]known, 0, len(g.known))
	for k := range g.known {
		out = append(out, k)
	}
	return out
}

// blacklist is every pattern of s, expanded: cached until the patterns or
// the known intents change.
func (g *Gate) blacklist(s *snapshot) Blacklist {
	gen := g.knownGen.Load()
	if e := g.full.Load(); e != nil && e.snap == s && e.gen == gen {
		return clone(e.bl)
	}
	bl := expand(s.rules, g.knownIntents(), nil)
	g.full.Store(&expansion{snap: s, gen: gen, bl: bl})
	return clone(bl)
}

func clone(b Blacklist) Blacklist {
	return Blacklist{Intents: slices.Clone(b.Intents), Skills: slices.Clone(b.Skills)}
}

// expand turns patterns into what an OVOS session can list, skipping those
// for which skip is true: "skill:Intent" is an intent; a pattern without '*'
// and ':' is a skill id, and "skill:*" a whole skill; and every pattern
// covers each announced intent whose skill id it matches (the whole skill),
// else whose type or name it matches (that intent).
func expand(rules []rule, ks []known, skip func(pattern string) bool) Blacklist {
	intents, skills := map[string]bool{}, map[string]bool{}
	for _, r := range rules {
		p := r.pattern
		if skip != nil && skip(p) {
			continue
		}
		switch {
		case literalLike(p):
			intents[p] = true
		case !strings.ContainsAny(p, "*:"):
			skills[p] = true
		default:
			if skill, ok := strings.CutSuffix(p, ":*"); ok && skill != "" && !strings.Contains(skill, "*") {
				skills[skill] = true
			}
		}
		for _, k := range ks {
			switch {
			case k.skill != "" && Match(p, k.skill):
				skills[k.skill] = true
			case k.typ != "" && (Match(p, k.typ) || (k.name != "" && Match(p, k.name))):
				intents[k.typ] = true
			}
		}
	}
	bl := Blacklist{}
	for i := range intents {
		bl.Intents = append(bl.Intents, i)
	}
	for sk := range skills {
		bl.Skills = append(bl.Skills, sk)
	}
	slices.Sort(bl.Intents)
	slices.Sort(bl.Skills)
	return bl
}

// slowDown counts a password attempt of the client and waits as a login
// of a client that keeps failing waits, whatever the address.
func (g *Gate) slowDown(ctx context.Context, clientID string) error {
	if g.fails == nil {
		return nil
	}
	d := g.fails.AttemptDelay(throttleKey(clientID))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("intentgate: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// dryRunFailed decides what a failed dry run means for u.
func (g *Gate) dryRunFailed(ctx context.Context, s *snapshot, u bridge.Utterance, err error) (Blacklist, error) {
	if cerr := ctx.Err(); cerr != nil {
		return Blacklist{}, fmt.Errorf("intentgate: dry run: %w", cerr)
	}
	if api.ErrorCode(err) == api.EINVALID {
		return Blacklist{}, err
	}
	g.dryRunFailures.Add(1)
	if g.cfg.FailOpen {
		g.failedOpen.Add(1)
		g.log.Warn("intent dry run failed; letting the utterance through (fail open)", "client", u.ClientID, "err", err)
		return g.blacklist(s), nil
	}
	g.log.Warn("intent dry run failed; utterance refused (fail closed)", "client", u.ClientID, "err", err)
	wait := retryAfter
	var e *api.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		wait = e.RetryAfter
	}
	return Blacklist{}, &api.Error{Code: api.EUNAVAILABLE, RetryAfter: wait, Cause: err,
		Detail: "the assistant could not say which intent would handle this utterance, and some intents are protected; try again later"}
}

// verify checks password against hash, at most MaxVerify at a time. A hash
// that cannot be read fails closed, as an internal error.
func (g *Gate) verify(ctx context.Context, hash string, password api.Secret) (bool, error) {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("intentgate: verify: %w", ctx.Err())
	}
	defer func() { <-g.sem }()
	ok, err := keys.Verify(hash, password.Reveal())
	if err != nil {
		return false, fmt.Errorf("intentgate: stored password hash unusable: %w", err)
	}
	return ok, nil
}

// Stats returns the counters.
func (g *Gate) Stats() Stats {
	return Stats{
		DryRuns:          g.dryRuns.Load(),
		DryRunFailures:   g.dryRunFailures.Load(),
		FailedOpen:       g.failedOpen.Load(),
		PasswordRequired: g.required.Load(),
		PasswordInvalid:  g.invalid.Load(),
		PasswordRefused:  g.refused.Load(),
		Unlocked:         g.unlocked.Load(),
	}
}

// match returns the most specific rule matching in.
func (s *snapshot) match(in *bridge.Intent) (rule, bool) {
	var best rule
	found := false
	for _, r := range s.rules {
		if !matchesIntent(r.pattern, in) {
			continue
		}
		if !found || moreSpecific(r, best) {
			best, found = r, true
		}
	}
	return best, found
}

// moreSpecific orders matching rules: exact before wildcard, then more
// literal characters, then fewer stars, then by pattern (so that the choice
// never depends on load order).
func moreSpecific(a, b rule) bool {
	if a.literal != b.literal {
		return a.literal
	}
	if a.chars != b.chars {
		return a.chars > b.chars
	}
	if a.stars != b.stars {
		return a.stars < b.stars
	}
	return a.pattern < b.pattern
}

// matchesIntent reports whether pattern matches the intent's type, name or
// skill id.
func matchesIntent(pattern string, in *bridge.Intent) bool {
	for _, n := range []string{in.Type, in.Name, in.SkillID} {
		if n != "" && Match(pattern, n) {
			return true
		}
	}
	return false
}

// maxNameLen bounds the intent name put in errors and logs.
const maxNameLen = 200

// intentName is how errors name the intent: its type "skill:Intent" when it
// has one. The name comes from the bus, so it is cut to maxNameLen
// printable characters before it reaches a log or a client.
func intentName(in *bridge.Intent) string {
	n := in.SkillID
	switch {
	case in.Type != "":
		n = in.Type
	case in.Name != "":
		n = in.Name
	}
	n = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, n)
	if utf8.RuneCountInString(n) > maxNameLen {
		n = string([]rune(n)[:maxNameLen])
	}
	return n
}
