package store

import (
	"context"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
)

func TestBlacklist(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	for _, e := range []api.BlacklistEntry{
		{CIDR: "203.0.113.7/24", Reason: "scanner"},
		{CIDR: "198.51.100.9", Reason: "brute force", Source: api.BlacklistAuto, ExpiresAt: &future},
		{CIDR: "2001:db8::1", Reason: "old", ExpiresAt: &past},
	} {
		if err := s.AddBlacklist(ctx, e); err != nil {
			t.Fatalf("AddBlacklist(%s): %v", e.CIDR, err)
		}
	}
	list, err := s.Blacklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.BlacklistEntry{}
	for _, e := range list {
		got[e.CIDR] = e
	}
	if len(got) != 2 {
		t.Fatalf("Blacklist = %+v, want 2 unexpired entries", list)
	}
	if e, ok := got["203.0.113.0/24"]; !ok || e.Source != api.BlacklistAdmin || e.ExpiresAt != nil || e.Reason != "scanner" {
		t.Errorf("range entry = %+v (want canonical cidr, source admin, no expiry)", e)
	}
	if e, ok := got["198.51.100.9/32"]; !ok || e.Source != api.BlacklistAuto || e.ExpiresAt == nil ||
		!e.ExpiresAt.Equal(future.Truncate(time.Millisecond)) {
		t.Errorf("host entry = %+v (want /32, source auto, expiry kept)", e)
	}

	// Upsert: the same range in another spelling replaces the entry.
	if err := s.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "203.0.113.200/24", Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Blacklist(ctx)
	if len(list) != 2 {
		t.Fatalf("upsert made %d entries, want 2", len(list))
	}
	for _, e := range list {
		if e.CIDR == "203.0.113.0/24" && e.Reason != "again" {
			t.Errorf("upsert kept reason %q", e.Reason)
		}
	}

	if err := s.RemoveBlacklist(ctx, "198.51.100.9"); err != nil {
		t.Fatalf("remove by bare address: %v", err)
	}
	wantCode(t, s.RemoveBlacklist(ctx, "198.51.100.9/32"), api.ENOTFOUND)
	wantCode(t, s.RemoveBlacklist(ctx, "not an address"), api.EINVALID)
}

func TestBlacklistInvalid(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tests := []struct {
		name string
		e    api.BlacklistEntry
	}{
		{"not an address", api.BlacklistEntry{CIDR: "example.com"}},
		{"bad prefix length", api.BlacklistEntry{CIDR: "10.0.0.0/33"}},
		{"zone", api.BlacklistEntry{CIDR: "fe80::1%eth0"}},
		{"unknown source", api.BlacklistEntry{CIDR: "10.0.0.1", Source: "magic"}},
		{"control in reason", api.BlacklistEntry{CIDR: "10.0.0.1", Reason: "a\nb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.AddBlacklist(ctx, tt.e), api.EINVALID)
		})
	}
}

func TestProtectedIntents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.Protect(ctx, "weather.skill:*", "hash-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Protect(ctx, "alarm.skill:SetAlarm", "hash-b"); err != nil {
		t.Fatal(err)
	}
	first, _ := s.ProtectedIntents(ctx)
	if err := s.Protect(ctx, "weather.skill:*", "hash-c"); err != nil {
		t.Fatal(err)
	}
	list, err := s.ProtectedIntents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Pattern != "alarm.skill:SetAlarm" || list[1].Pattern != "weather.skill:*" {
		t.Fatalf("ProtectedIntents = %+v, want 2 sorted by pattern", list)
	}
	if list[1].PasswordHash != "hash-c" || !list[1].CreatedAt.Equal(first[1].CreatedAt) {
		t.Errorf("upsert: %+v (want new hash, original creation time)", list[1])
	}
	if err := s.Unprotect(ctx, "weather.skill:*"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Unprotect(ctx, "weather.skill:*"), api.ENOTFOUND)
	wantCode(t, s.Protect(ctx, "", "h"), api.EINVALID)
	wantCode(t, s.Protect(ctx, "a\x00b", "h"), api.EINVALID)
	wantCode(t, s.Protect(ctx, "ok", ""), api.EINVALID)
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.Revoke(ctx, "a", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !s.Revoked("a") || s.Revoked("b") {
		t.Fatal("Revoked does not match what was revoked")
	}
	// A shorter second revocation does not shorten the first.
	if err := s.Revoke(ctx, "a", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !s.Revoked("a") {
		t.Fatal("revocation shortened")
	}
	wantCode(t, s.Revoke(ctx, "", time.Now()), api.EINVALID)
}

// TestBlacklistMappedSpelling: ranges are kept in one normal form (an
// IPv4-mapped spelling is folded to IPv4), and a row left in a mapped
// spelling by an older version is removed by that spelling.
func TestBlacklistMappedSpelling(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.AddBlacklist(ctx, api.BlacklistEntry{CIDR: "::ffff:203.0.113.0/120"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO blacklist (cidr, reason, source, created_at) VALUES ('::ffff:198.51.100.7/128', '', 'admin', 0)`); err != nil {
		t.Fatal(err)
	}
	list, err := s.Blacklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].CIDR != "::ffff:198.51.100.7/128" || list[1].CIDR != "203.0.113.0/24" {
		t.Fatalf("Blacklist = %+v, want the old mapped row and 203.0.113.0/24", list)
	}
	if err := s.RemoveBlacklist(ctx, "::ffff:198.51.100.7/128"); err != nil {
		t.Fatalf("remove the old mapped row: %v", err)
	}
	if err := s.RemoveBlacklist(ctx, "::ffff:203.0.113.0/120"); err != nil {
		t.Fatalf("remove by a mapped spelling: %v", err)
	}
	if list, _ := s.Blacklist(ctx); len(list) != 0 {
		t.Fatalf("Blacklist = %+v after removal, want none", list)
	}
}
