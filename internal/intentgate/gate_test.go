package intentgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/busframe"
	"github.com/ovosgw/gateway/internal/store"
)

// The real services fit the seams.
var (
	_ Store    = (*store.Store)(nil)
	_ DryRun   = (*bridge.Bridge)(nil)
	_ Failures = (*bans.Bans)(nil)
)

// dryRun answers from a table keyed by utterance text. "hang" waits until
// its context ends; "down" fails as the bridge does with the link down;
// "bad" fails as the bridge does for an invalid utterance.
type dryRun struct {
	intents map[string]*bridge.Intent
	calls   atomic.Int64
}

func (d *dryRun) Intent(ctx context.Context, u bridge.Utterance) (*bridge.Intent, error) {
	d.calls.Add(1)
	switch u.Text {
	case "hang":
		<-ctx.Done()
		return nil, &api.Error{Code: api.EUNAVAILABLE, Detail: "no answer", RetryAfter: 7 * time.Second}
	case "down":
		return nil, &api.Error{Code: api.EUNAVAILABLE, Detail: "bus down", RetryAfter: 5 * time.Second}
	case "bad":
		return nil, api.Errorf(api.EINVALID, "utterance without a session of its own")
	}
	text, answer := strings.CutPrefix(u.Text, "answer: ")
	in := d.intents[text]
	if in == nil {
		return nil, nil
	}
	c := *in
	c.Answer = answer // "answer: ..." while a follow-up question waits
	return &c, nil
}

type fixture struct {
	path string
	st   *store.Store
	dry  *dryRun
	bans *bans.Bans
	bl   *blacklist.Blacklist
	gate *Gate
}

var intents = map[string]*bridge.Intent{
	"what time is it": {Name: "CurrentTimeIntent", Type: "date-time.openvoiceos:CurrentTimeIntent", SkillID: "date-time.openvoiceos"},
	"unlock the door": {Name: "UnlockIntent", Type: "home.skill:UnlockIntent", SkillID: "home.skill"},
	"lock the door":   {Name: "LockIntent", Type: "home.skill:LockIntent", SkillID: "home.skill"},
	"open the safe":   {Name: "OpenIntent", Type: "safe.skill:OpenIntent", SkillID: "safe.skill"},
	"tell me a joke":  {Name: "ovos.skills.fallback.jokes.skill.request", SkillID: "jokes.skill"},
	"padatious":       {Name: "pad.skill:what.is.intent", Type: "pad.skill:what.is.intent", SkillID: "pad.skill"},
	"hello":           {Name: "HelloIntent", Type: "hello.skill:HelloIntent", SkillID: "hello.skill"},
	"mystery":         {Name: "ovos.skills.fallback.mystery"},
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newFixture builds a gate on a real SQLite store with real bans, the
// patterns protected with the given passwords.
func newFixture(t *testing.T, cfg Config, protect map[string]string) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.db")
	st := openStore(t, path)
	bl, err := blacklist.New(context.Background(), blacklist.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bans.New(bans.Config{}, bl)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = -1
	}
	dry := &dryRun{intents: intents}
	g, err := New(t.Context(), cfg, st, dry, b)
	if err != nil {
		t.Fatal(err)
	}
	for p, pw := range protect {
		if _, err := g.Protect(context.Background(), p, api.Secret(pw)); err != nil {
			t.Fatalf("Protect(%q): %v", p, err)
		}
	}
	return &fixture{path: path, st: st, dry: dry, bans: b, bl: bl, gate: g}
}

var client = netip.MustParseAddr("203.0.113.5")

func utterance(text string) bridge.Utterance {
	return bridge.Utterance{ClientID: "kitchen", SessionID: "s1", Text: text, Lang: "en-us"}
}

// TestNothingProtectedNoDryRun: without protected patterns the gate asks
// the bus nothing (it must cost nothing on the usual path).
func TestNothingProtectedNoDryRun(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	for _, text := range []string{"unlock the door", "hang", "down"} {
		bl, err := f.gate.Check(context.Background(), utterance(text), "", client)
		if err != nil || bl.Intents != nil || bl.Skills != nil {
			t.Errorf("Check(%q) = %v, %v; want nil, nil", text, bl, err)
		}
	}
	if n := f.dry.calls.Load(); n != 0 {
		t.Errorf("%d dry runs with nothing protected", n)
	}
	// Once a pattern goes away again, the dry runs stop too.
	if _, err := f.gate.Protect(context.Background(), "home.skill:UnlockIntent", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.Unprotect(context.Background(), "home.skill:UnlockIntent"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.gate.Check(context.Background(), utterance("unlock the door"), "", client); err != nil {
		t.Fatal(err)
	}
	if n := f.dry.calls.Load(); n != 0 {
		t.Errorf("%d dry runs after the last pattern was removed", n)
	}
}

func TestCheck(t *testing.T) {
	protect := map[string]string{
		"home.skill:UnlockIntent": "open-sesame",
		"safe.skill":              "safe-pw",       // a skill id
		"jokes.*":                 "jokes-pw",      // a wildcard on the skill id of a fallback
		"pad.skill:what.*":        "pad-pw",        // a wildcard crossing '.'
		"date-time.openvoiceos:X": "never-matches", // literal, listed as blacklisted
	}
	allBlacklisted := []string{"date-time.openvoiceos:X", "home.skill:UnlockIntent"}
	// The cases run in order on one gate, which learns the intents of the
	// dry runs' answers: the wildcards cover more as it goes.
	tests := []struct {
		name        string
		text        string
		password    api.Secret
		code        string // "" means allowed
		intent      string // the intent named by the error
		blacklisted []string
		skills      []string
		failures    uint64 // failures counted against the address
	}{
		{name: "unprotected intent", text: "what time is it", blacklisted: allBlacklisted, skills: []string{"safe.skill"}},
		{name: "no intent matches", text: "gibberish", blacklisted: allBlacklisted, skills: []string{"safe.skill"}},
		{name: "unprotected intent, password ignored", text: "lock the door", password: "whatever", blacklisted: allBlacklisted, skills: []string{"safe.skill"}},
		{name: "literal, no password", text: "unlock the door", code: api.EPASSWORDREQUIRED, intent: "home.skill:UnlockIntent"},
		// A wrong password is refused and counts as a failed attempt of
		// the address (towards a ban).
		{name: "literal, wrong password", text: "unlock the door", password: "guess", code: api.EPASSWORDINVALID, intent: "home.skill:UnlockIntent", failures: 1},
		{name: "literal, another pattern's password", text: "unlock the door", password: "safe-pw", code: api.EPASSWORDINVALID, intent: "home.skill:UnlockIntent", failures: 1},
		{name: "literal, over-long password", text: "unlock the door", password: api.Secret(strings.Repeat("x", MaxPasswordLen+1)), code: api.EPASSWORDINVALID, intent: "home.skill:UnlockIntent", failures: 1},
		// The right password lets it through; the other patterns stay
		// blacklisted in case OVOS's real run differs.
		{name: "literal, right password", text: "unlock the door", password: "open-sesame", blacklisted: []string{"date-time.openvoiceos:X"}, skills: []string{"safe.skill"}},
		{name: "skill id, no password", text: "open the safe", code: api.EPASSWORDREQUIRED, intent: "safe.skill:OpenIntent"},
		{name: "skill id, right password", text: "open the safe", password: "safe-pw", blacklisted: allBlacklisted},
		{name: "fallback by skill id wildcard", text: "tell me a joke", code: api.EPASSWORDREQUIRED, intent: "ovos.skills.fallback.jokes.skill.request"},
		{name: "fallback, right password", text: "tell me a joke", password: "jokes-pw", blacklisted: allBlacklisted, skills: []string{"safe.skill"}},
		{name: "wildcard across dots", text: "padatious", password: "bad", code: api.EPASSWORDINVALID, intent: "pad.skill:what.is.intent", failures: 1},
		{name: "wildcard, right password", text: "padatious", password: "pad-pw", blacklisted: allBlacklisted, skills: []string{"jokes.skill", "safe.skill"}},
		// Every wildcard now covers what the bus announced: the jokes skill
		// whole (the pattern matches its id), the padatious intent alone.
		{name: "wildcards expanded", text: "what time is it", blacklisted: []string{"date-time.openvoiceos:X", "home.skill:UnlockIntent", "pad.skill:what.is.intent"}, skills: []string{"jokes.skill", "safe.skill"}},
	}
	// One fixture for all cases: hashing the passwords is the slow part.
	f := newFixture(t, Config{}, protect)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.bans.Stats().Failures
			bl, err := f.gate.Check(context.Background(), utterance(tt.text), tt.password, client)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Check = %v, want allowed", err)
				}
				if fmt.Sprint(bl.Intents) != fmt.Sprint(tt.blacklisted) || fmt.Sprint(bl.Skills) != fmt.Sprint(tt.skills) {
					t.Errorf("blacklisted = %q, want intents %q, skills %q", bl, tt.blacklisted, tt.skills)
				}
			} else {
				var e *api.Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("Check = %v, %v; want %s", bl, err, tt.code)
				}
				if e.Intent != tt.intent {
					t.Errorf("error names intent %q, want %q", e.Intent, tt.intent)
				}
				if tt.password != "" && strings.Contains(e.Error(), tt.password.Reveal()) {
					t.Error("the error shows the password")
				}
			}
			if got := f.bans.Stats().Failures - before; got != tt.failures {
				t.Errorf("failures counted = %d, want %d", got, tt.failures)
			}
		})
	}
}

// TestWrongPasswordsBan: enough wrong intent passwords ban the address.
func TestWrongPasswordsBan(t *testing.T) {
	f := newFixture(t, Config{}, map[string]string{"home.skill:UnlockIntent": "open-sesame"})
	for range bans.DefaultAfter {
		f.gate.Check(context.Background(), utterance("unlock the door"), "guess", client)
	}
	if !f.bl.Blocked(client) {
		t.Error("address not banned after repeated wrong intent passwords")
	}
}

// TestConcurrentWrongPasswords: wrong passwords sent at once are counted
// before they are checked (issue 17, item 1): of 40, at most After are
// checked, the rest are refused unchecked, and the address is banned once.
func TestConcurrentWrongPasswords(t *testing.T) {
	f := newFixture(t, Config{}, map[string]string{"home.skill:UnlockIntent": "open-sesame"})
	const burst = 40
	codes := make(chan string, burst)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := f.gate.Check(context.Background(), utterance("unlock the door"), api.Secret(fmt.Sprintf("guess-%d", i)), client)
			codes <- api.ErrorCode(err)
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[string]int{}
	for c := range codes {
		got[c]++
	}
	if got[api.EPASSWORDINVALID] != bans.DefaultAfter || got[api.ERATELIMITED] != burst-bans.DefaultAfter {
		t.Errorf("answers %v, want %d %s and the rest %s", got, bans.DefaultAfter, api.EPASSWORDINVALID, api.ERATELIMITED)
	}
	if s := f.bans.Stats(); s.Failures != bans.DefaultAfter || s.Bans != 1 {
		t.Errorf("bans counted %d failures and made %d bans, want %d and 1", s.Failures, s.Bans, bans.DefaultAfter)
	}
	if s := f.gate.Stats(); s.PasswordInvalid != bans.DefaultAfter || s.PasswordRefused != burst-bans.DefaultAfter {
		t.Errorf("gate stats %+v", s)
	}
	if !f.bl.Blocked(client) {
		t.Error("address not banned")
	}
}

// TestMostSpecificPattern: when several patterns match, the most specific
// one's password is needed; a broad pattern's password does not open an
// intent that has its own.
func TestMostSpecificPattern(t *testing.T) {
	tests := []struct {
		name     string
		protect  map[string]string
		text     string
		password api.Secret
		ok       bool
	}{
		{"literal beats star", map[string]string{"*": "master", "home.skill:UnlockIntent": "door"}, "unlock the door", "door", true},
		{"star's password refused where a literal applies", map[string]string{"*": "master", "home.skill:UnlockIntent": "door"}, "unlock the door", "master", false},
		{"star applies elsewhere", map[string]string{"*": "master", "home.skill:UnlockIntent": "door"}, "lock the door", "master", true},
		{"longer wildcard beats shorter", map[string]string{"home.*": "broad", "home.skill:Unlock*": "narrow"}, "unlock the door", "narrow", true},
		{"shorter wildcard refused", map[string]string{"home.*": "broad", "home.skill:Unlock*": "narrow"}, "unlock the door", "broad", false},
		{"literal skill id beats wildcard type", map[string]string{"home.skill": "skill", "home.skill:*Intent": "typed"}, "unlock the door", "skill", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{}, tt.protect)
			_, err := f.gate.Check(context.Background(), utterance(tt.text), tt.password, client)
			if (err == nil) != tt.ok {
				t.Errorf("Check = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestDryRunFails: a protected configuration refuses an utterance when the
// bus cannot say which intent would match (fail closed), and lets it through
// with the blacklist when configured to fail open.
func TestDryRunFails(t *testing.T) {
	protect := map[string]string{"home.skill:UnlockIntent": "pw"}
	t.Run("closed", func(t *testing.T) {
		f := newFixture(t, Config{}, protect)
		for _, text := range []string{"down", "hang"} {
			var bl Blacklist
			var err error
			synctest.Test(t, func(t *testing.T) {
				// "hang" never answers: the gate's own timeout ends it, on
				// synctest's clock.
				bl, err = f.gate.Check(context.Background(), utterance(text), "pw", client)
			})
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.EUNAVAILABLE || e.RetryAfter <= 0 || bl.Intents != nil || bl.Skills != nil {
				t.Errorf("%s: Check = %v, %v; want EUNAVAILABLE with Retry-After", text, bl, err)
			}
		}
		if s := f.gate.Stats(); s.DryRunFailures != 2 || s.FailedOpen != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("open", func(t *testing.T) {
		f := newFixture(t, Config{FailOpen: true}, protect)
		for _, text := range []string{"down", "hang"} {
			var bl Blacklist
			var err error
			synctest.Test(t, func(t *testing.T) {
				bl, err = f.gate.Check(context.Background(), utterance(text), "", client)
			})
			if err != nil || fmt.Sprint(bl.Intents) != "[home.skill:UnlockIntent]" || bl.Skills != nil {
				t.Errorf("%s: Check = %v, %v; want allowed with the blacklist", text, bl, err)
			}
		}
		if s := f.gate.Stats(); s.FailedOpen != 2 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("invalid utterance passes its error", func(t *testing.T) {
		f := newFixture(t, Config{FailOpen: true}, protect)
		_, err := f.gate.Check(context.Background(), utterance("bad"), "", client)
		if api.ErrorCode(err) != api.EINVALID {
			t.Errorf("Check = %v, want EINVALID", err)
		}
	})
	t.Run("caller gone", func(t *testing.T) {
		f := newFixture(t, Config{FailOpen: true}, protect)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.gate.Check(ctx, utterance("hang"), "", client); !errors.Is(err, context.Canceled) {
			t.Errorf("Check = %v, want context.Canceled (not a fail-open pass)", err)
		}
	})
}

func TestProtect(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{}, nil)
	p, err := f.gate.Protect(ctx, "home.skill:UnlockIntent", "first")
	if err != nil {
		t.Fatal(err)
	}
	if p.Pattern != "home.skill:UnlockIntent" || p.CreatedAt.IsZero() {
		t.Errorf("Protect = %+v", p)
	}
	// Only a hash is stored.
	stored, err := f.st.ProtectedIntents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || !strings.HasPrefix(stored[0].PasswordHash, "$argon2id$") || strings.Contains(stored[0].PasswordHash, "first") {
		t.Fatalf("stored = %+v, want one argon2id hash", stored)
	}
	// Re-protecting changes the password and keeps the creation time.
	p2, err := f.gate.Protect(ctx, "home.skill:UnlockIntent", "second")
	if err != nil {
		t.Fatal(err)
	}
	if !p2.CreatedAt.Equal(p.CreatedAt) {
		t.Errorf("CreatedAt changed: %v -> %v", p.CreatedAt, p2.CreatedAt)
	}
	if _, err := f.gate.Check(ctx, utterance("unlock the door"), "first", client); api.ErrorCode(err) != api.EPASSWORDINVALID {
		t.Errorf("old password: %v, want EPASSWORDINVALID", err)
	}
	if _, err := f.gate.Check(ctx, utterance("unlock the door"), "second", client); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := f.gate.Protect(ctx, "safe.skill", "x"); err != nil {
		t.Fatal(err)
	}
	list, err := f.gate.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Pattern != "home.skill:UnlockIntent" || list[1].Pattern != "safe.skill" {
		t.Errorf("List = %+v", list)
	}
	if err := f.gate.Unprotect(ctx, "safe.skill"); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.Unprotect(ctx, "safe.skill"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Errorf("second Unprotect = %v, want ENOTFOUND", err)
	}
	if err := f.gate.Unprotect(ctx, ""); api.ErrorCode(err) != api.EINVALID {
		t.Errorf("Unprotect(\"\") = %v, want EINVALID", err)
	}
}

func TestProtectInvalid(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	tests := []struct {
		name     string
		pattern  string
		password api.Secret
	}{
		{"empty pattern", "", "pw"},
		{"space in pattern", "home skill", "pw"},
		{"control in pattern", "home\x00", "pw"},
		{"long pattern", strings.Repeat("x", MaxPatternLen+1), "pw"},
		{"empty password", "home.skill", ""},
		{"long password", "home.skill", api.Secret(strings.Repeat("p", MaxPasswordLen+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.gate.Protect(context.Background(), tt.pattern, tt.password)
			if api.ErrorCode(err) != api.EINVALID {
				t.Errorf("Protect = %v, want EINVALID", err)
			}
			if tt.password != "" && strings.Contains(fmt.Sprint(err), tt.password.Reveal()) {
				t.Error("the error shows the password")
			}
		})
	}
	if list, _ := f.gate.List(context.Background()); len(list) != 0 {
		t.Errorf("refused patterns stored: %+v", list)
	}
}

// TestOtherProcess: a pattern protected by the command line (another handle
// on the same file) is enforced after Refresh, and by the periodic reload.
func TestOtherProcess(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{}, nil)
	cli, err := New(t.Context(), Config{RefreshEvery: -1}, openStore(t, f.path), &dryRun{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Protect(ctx, "home.skill:UnlockIntent", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.gate.Check(ctx, utterance("unlock the door"), "", client); err != nil {
		t.Fatalf("before Refresh: %v (test assumption broken)", err)
	}
	if err := f.gate.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.gate.Check(ctx, utterance("unlock the door"), "", client); api.ErrorCode(err) != api.EPASSWORDREQUIRED {
		t.Errorf("after Refresh: %v, want EPASSWORDREQUIRED", err)
	}

	// The periodic reload, on synctest's clock.
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		g, err := New(ctx, Config{RefreshEvery: time.Minute}, openStore(t, f.path), &dryRun{intents: intents}, nil)
		if err != nil {
			t.Fatal(err)
		}
		go g.Run(ctx)
		if _, err := cli.Protect(ctx, "safe.skill", "pw"); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Check(ctx, utterance("open the safe"), "", client); err != nil {
			t.Fatalf("before the reload: %v (test assumption broken)", err)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if _, err := g.Check(ctx, utterance("open the safe"), "", client); api.ErrorCode(err) != api.EPASSWORDREQUIRED {
			t.Errorf("after the periodic reload: %v, want EPASSWORDREQUIRED", err)
		}
	})
}

// TestCorruptHashFailsClosed: a hash that cannot be read refuses the
// utterance instead of letting it through.
func TestCorruptHashFailsClosed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{}, nil)
	if err := f.st.Protect(ctx, "home.skill:UnlockIntent", "not-a-hash"); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := f.gate.Check(ctx, utterance("unlock the door"), "anything", client)
	if err == nil || api.ErrorCode(err) != api.EINTERNAL {
		t.Errorf("Check = %v, want an internal error", err)
	}
}

func TestIntentNameSanitised(t *testing.T) {
	f := newFixture(t, Config{}, map[string]string{"evil*": "pw"})
	f.dry.intents = map[string]*bridge.Intent{"x": {Type: "evil:\x1b[31m" + strings.Repeat("a", 500)}}
	_, err := f.gate.Check(context.Background(), utterance("x"), "", client)
	var e *api.Error
	if !errors.As(err, &e) || strings.ContainsRune(e.Intent, 0x1b) || len(e.Intent) > maxNameLen {
		t.Errorf("error intent = %q", e.Intent)
	}
}

func TestNewValidates(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "g.db"))
	if _, err := New(t.Context(), Config{}, nil, &dryRun{}, nil); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := New(t.Context(), Config{}, st, nil, nil); err == nil {
		t.Error("New without a dry run succeeded")
	}
	if _, err := New(t.Context(), Config{Timeout: -1}, st, &dryRun{}, nil); err == nil {
		t.Error("New with a negative timeout succeeded")
	}
}

// BenchmarkCheckNothingProtected is the cost every utterance pays when no
// intent is protected.
func BenchmarkCheckNothingProtected(b *testing.B) {
	st := openStore(b, filepath.Join(b.TempDir(), "g.db"))
	g, err := New(b.Context(), Config{RefreshEvery: -1}, st, &dryRun{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	u := utterance("hello")
	b.ReportAllocs()
	for b.Loop() {
		g.Check(context.Background(), u, "", client)
	}
}

// TestAnswerNeedsNoPassword: while a follow-up question of the session
// waits, an utterance that would match a protected intent is taken as the
// answer: it goes through without a password, with a blacklist that keeps
// the protected intent from running should the question be over; when the
// blacklist cannot name the intent, the password is required as ever.
func TestAnswerNeedsNoPassword(t *testing.T) {
	f := newFixture(t, Config{}, map[string]string{"jokes.*": "jokes-pw", "home.skill:UnlockIntent": "door", "*mystery*": "m"})
	ctx := context.Background()
	for _, text := range []string{"tell me a joke", "unlock the door", "mystery"} {
		if _, err := f.gate.Check(ctx, utterance(text), "", client); api.ErrorCode(err) != api.EPASSWORDREQUIRED {
			t.Fatalf("%q outside a question: %v, want password required", text, err)
		}
	}
	bl, err := f.gate.Check(ctx, utterance("answer: tell me a joke"), "", client)
	if err != nil || !slices.Contains(bl.Skills, "jokes.skill") {
		t.Fatalf("an answer matching a protected skill: %+v, %v; want allowed with jokes.skill blacklisted", bl, err)
	}
	bl, err = f.gate.Check(ctx, utterance("answer: unlock the door"), "", client)
	if err != nil || !slices.Contains(bl.Intents, "home.skill:UnlockIntent") {
		t.Fatalf("an answer matching a protected intent: %+v, %v; want allowed with it blacklisted", bl, err)
	}
	// A fallback named without a skill id: no blacklist can name it.
	if _, err := f.gate.Check(ctx, utterance("answer: mystery"), "", client); api.ErrorCode(err) != api.EPASSWORDREQUIRED {
		t.Fatalf("an answer the blacklist cannot cover: %v, want password required", err)
	}
}

// TestBlacklistFromRecordedWire: what a real OVOS announces on the wire
// (the recorded transcripts) expands the wildcards: the intent message of a
// real run and a dry run's answer naming a fallback skill.
func TestBlacklistFromRecordedWire(t *testing.T) {
	f := newFixture(t, Config{}, map[string]string{
		"hello-intent.*":   "a", // a wildcard over a skill id: the whole skill
		"*:Hello*":         "b", // a wildcard over intent types: the intent
		"*fallback.peers*": "c",
		"weather.skill":    "d", // a skill id, as it is
		"timer.skill:*":    "e", // a whole skill, as it says
	})
	ctx := context.Background()
	bl, err := f.gate.Check(ctx, utterance("gibberish"), "", client)
	if err != nil || fmt.Sprint(bl.Intents) != "[]" || fmt.Sprint(bl.Skills) != "[timer.skill weather.skill]" {
		t.Fatalf("before anything was announced: %+v, %v", bl, err)
	}
	// A real run of hello-intent.peers:HelloIntent, as recorded.
	for _, fr := range recordedFrames(t, "intent-handled.jsonl") {
		f.gate.Announce(fr)
	}
	bl, _ = f.gate.Check(ctx, utterance("gibberish"), "", client)
	if fmt.Sprint(bl.Intents) != "[hello-intent.peers:HelloIntent]" || fmt.Sprint(bl.Skills) != "[hello-intent.peers timer.skill weather.skill]" {
		t.Fatalf("after a real run: %+v", bl)
	}
	// A dry run answered by the real fallback skill, through a real bridge.
	replies := recordedFrames(t, "intent-get-fallback.jsonl")
	br, err := bridge.New(bridge.Config{}, replayBus{replies}, nopPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), Config{RefreshEvery: -1}, f.st, br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Check(ctx, utterance("hello there"), "", client); api.ErrorCode(err) != api.EPASSWORDREQUIRED {
		t.Fatalf("the fallback skill is protected: %v", err)
	}
	bl, _ = g.Check(ctx, utterance("hello there"), "c", client)
	if slices.Contains(bl.Skills, "hello-fallback.peers") {
		t.Fatalf("unlocked, yet blacklisted: %+v", bl)
	}
	bl, _ = g.Check(ctx, utterance("gibberish"), "", client)
	if fmt.Sprint(bl.Skills) != "[hello-fallback.peers timer.skill weather.skill]" {
		t.Fatalf("after the dry run: %+v, want the fallback skill blacklisted", bl)
	}
}

// recordedFrames are the received frames of a transcript in testdata.
func recordedFrames(t *testing.T, name string) []*api.Frame {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "ovos-wire", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Frame
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var l struct {
			Dir   string          `json:"dir"`
			Frame json.RawMessage `json:"frame"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Dir != "recv" {
			continue
		}
		f, err := busframe.Parse(l.Frame)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// replayBus answers a dry run of "hello there" with the recorded reply, and
// any other with no intent.
type replayBus struct{ frames []*api.Frame }

func (replayBus) Send(context.Context, api.Message) error { return nil }
func (replayBus) Connected() bool                         { return true }
func (r replayBus) Request(ctx context.Context, m api.Message, match func(*api.Frame) bool) (*api.Frame, error) {
	var c struct {
		Source string `json:"source"`
	}
	_ = json.Unmarshal(m.Context, &c)
	var d struct {
		Utterance string `json:"utterance"`
	}
	_ = json.Unmarshal(m.Data, &d)
	if d.Utterance != "hello there" {
		return busframe.Parse([]byte(`{"type":"intent.service.intent.reply","data":{"intent":null},"context":{"destination":"` + c.Source + `"}}`))
	}
	for _, f := range r.frames {
		if f.Type == api.TypeIntentReply {
			// The recorded reply names the recorder; ours names the
			// sender, as the assistant's swap does.
			raw := strings.Replace(string(f.Raw), `"destination":"go-gateway"`, `"destination":"`+c.Source+`"`, 1)
			g, err := busframe.Parse([]byte(raw))
			if err != nil {
				return nil, err
			}
			if match(g) {
				return g, nil
			}
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, api.Event) uint64 { return 0 }
