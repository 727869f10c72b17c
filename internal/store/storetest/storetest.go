// Package storetest is the conformance suite of the blacklist's and the
// protected intents' stores (blacklist.Store, intentgate.Store): the SQLite
// file of one process and the Redis of several replicas run it unchanged,
// so that the admin API and the command line cannot tell which one runs.
// It is imported by tests only.
package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/store"
)

// Blacklist is what a blacklist store does (blacklist.Store).
type Blacklist interface {
	AddBlacklist(ctx context.Context, e api.BlacklistEntry) error
	Blacklist(ctx context.Context) ([]api.BlacklistEntry, error)
	RemoveBlacklist(ctx context.Context, cidr string) error
}

// Intents is what a store of protected intents does (intentgate.Store).
type Intents interface {
	Protect(ctx context.Context, pattern, passwordHash string) error
	ProtectedIntents(ctx context.Context) ([]store.ProtectedIntent, error)
	Unprotect(ctx context.Context, pattern string) error
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := api.ErrorCode(err); got != code {
		t.Fatalf("error %v (code %q), want %q", err, got, code)
	}
}

// RunBlacklist checks two handles on one fresh, empty blacklist store.
func RunBlacklist(t *testing.T, open func(t *testing.T) (a, b Blacklist)) {
	ctx := context.Background()
	a, b := open(t)
	list := func(s Blacklist) []api.BlacklistEntry {
		t.Helper()
		l, err := s.Blacklist(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := list(b); l == nil || len(l) != 0 {
		t.Fatalf("a fresh store lists %v, want an empty list", l)
	}
	// Normal form, defaults, and the other handle sees it.
	if err := a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "203.0.113.7/24", Reason: "  scanner  "}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "2001:db8::1", Reason: "bot", Source: api.BlacklistAuto, ExpiresAt: &later}); err != nil {
		t.Fatal(err)
	}
	byCIDR := func(l []api.BlacklistEntry) map[string]api.BlacklistEntry {
		m := map[string]api.BlacklistEntry{}
		for _, e := range l {
			m[e.CIDR] = e
		}
		return m
	}
	l := list(b)
	m := byCIDR(l)
	if e := m["203.0.113.0/24"]; len(l) != 2 || e.Source != api.BlacklistAdmin || e.Reason != "scanner" || e.CreatedAt.IsZero() {
		t.Fatalf("listed %+v", l)
	}
	if e := m["2001:db8::1/128"]; e.Source != api.BlacklistAuto || e.ExpiresAt == nil || e.ExpiresAt.Sub(later).Abs() > time.Millisecond {
		t.Fatalf("listed %+v", l)
	}
	// The same range in another spelling replaces the entry.
	if err := b.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "203.0.113.99/24", Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	l = list(a)
	if e := byCIDR(l)["203.0.113.0/24"]; len(l) != 2 || e.Reason != "again" {
		t.Fatalf("after a replace: %+v", l)
	}
	// Oldest first.
	old := time.Now().Add(-time.Hour)
	if err := a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "192.0.2.128/25", CreatedAt: old}); err != nil {
		t.Fatal(err)
	}
	if l := list(b); len(l) != 3 || l[0].CIDR != "192.0.2.128/25" {
		t.Fatalf("not oldest first: %+v", l)
	}
	if err := a.RemoveBlacklist(ctx, "192.0.2.128/25"); err != nil {
		t.Fatal(err)
	}
	// An expired entry is not listed.
	past := time.Now().Add(-time.Second)
	if err := a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "198.51.100.0/24", ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	for _, e := range list(b) {
		if e.CIDR == "198.51.100.0/24" {
			t.Fatal("an expired entry is listed")
		}
	}
	// Refusals.
	wantCode(t, a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "not a range"}), api.EINVALID)
	wantCode(t, a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "192.0.2.0/24", Source: "mystery"}), api.EINVALID)
	wantCode(t, a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "192.0.2.0/24", Reason: strings.Repeat("x", store.MaxReasonLen+1)}), api.EINVALID)
	wantCode(t, a.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "192.0.2.0/24", Reason: "bell\a"}), api.EINVALID)
	// Removal in another spelling, once.
	if err := b.RemoveBlacklist(ctx, "203.0.113.1/24"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.RemoveBlacklist(ctx, "203.0.113.0/24"), api.ENOTFOUND)
	wantCode(t, a.RemoveBlacklist(ctx, "nonsense"), api.EINVALID)
	if l := list(a); len(l) != 1 || l[0].CIDR != "2001:db8::1/128" {
		t.Fatalf("after the removal: %+v", l)
	}
}

// RunIntents checks two handles on one fresh, empty store of protected
// intents.
func RunIntents(t *testing.T, open func(t *testing.T) (a, b Intents)) {
	ctx := context.Background()
	a, b := open(t)
	list := func(s Intents) []store.ProtectedIntent {
		t.Helper()
		l, err := s.ProtectedIntents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := list(b); l == nil || len(l) != 0 {
		t.Fatalf("a fresh store lists %v, want an empty list", l)
	}
	for _, p := range []string{"joke.skill:*", "alarm.skill:SetAlarm"} {
		if err := a.Protect(ctx, p, "hash-of-"+p); err != nil {
			t.Fatal(err)
		}
	}
	l := list(b)
	if len(l) != 2 || l[0].Pattern != "alarm.skill:SetAlarm" || l[1].Pattern != "joke.skill:*" || l[1].PasswordHash != "hash-of-joke.skill:*" || l[1].CreatedAt.IsZero() {
		t.Fatalf("listed %+v", l)
	}
	created := l[1].CreatedAt
	// A new password keeps the pattern's creation time.
	if err := b.Protect(ctx, "joke.skill:*", "new-hash"); err != nil {
		t.Fatal(err)
	}
	l = list(a)
	if len(l) != 2 || l[1].PasswordHash != "new-hash" || !l[1].CreatedAt.Equal(created) {
		t.Fatalf("after a new password: %+v (created %v)", l, created)
	}
	wantCode(t, a.Protect(ctx, "", "h"), api.EINVALID)
	wantCode(t, a.Protect(ctx, "x:y", ""), api.EINVALID)
	wantCode(t, a.Protect(ctx, "x\n:y", "h"), api.EINVALID)
	wantCode(t, a.Protect(ctx, strings.Repeat("p", store.MaxPatternLen+1), "h"), api.EINVALID)
	if err := b.Unprotect(ctx, "joke.skill:*"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.Unprotect(ctx, "joke.skill:*"), api.ENOTFOUND)
	if l := list(a); len(l) != 1 || l[0].Pattern != "alarm.skill:SetAlarm" {
		t.Fatalf("after unprotect: %+v", l)
	}
}
