package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
)

func TestClientCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	if err := s.CreateClient(ctx, Client{
		ID: "kitchen", Name: "  Kitchen speaker ", Aliases: []string{"k", " cook ", "k", "kitchen"},
		KeyHash: "hash-1", CreatedAt: created,
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, Client{ID: "attic", KeyHash: "hash-2"}); err != nil {
		t.Fatal(err)
	}

	c, err := s.Client(ctx, "kitchen")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyVersion <= 0 {
		t.Fatalf("key version %d", c.KeyVersion)
	}
	want := Client{ID: "kitchen", Name: "Kitchen speaker", Aliases: []string{"k", "cook"}, KeyHash: "hash-1", KeyVersion: c.KeyVersion, CreatedAt: created}
	if !equalClient(c, want) {
		t.Fatalf("Client = %+v, want %+v", c, want)
	}
	a, err := s.Client(ctx, "attic")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "attic" || a.Aliases == nil || len(a.Aliases) != 0 || a.CreatedAt.IsZero() {
		t.Fatalf("defaults: %+v (want name = id, empty non-nil aliases, a creation time)", a)
	}

	// Callers get copies: changing one does not change the store.
	c.Aliases[0] = "mutated"
	if again, _ := s.Client(ctx, "kitchen"); again.Aliases[0] != "k" {
		t.Fatal("caller mutated the cache")
	}

	for _, name := range []string{"kitchen", "k", "cook"} {
		r, err := s.ResolveClient(ctx, name)
		if err != nil || r.ID != "kitchen" {
			t.Errorf("ResolveClient(%q) = %q, %v", name, r.ID, err)
		}
	}
	_, err = s.ResolveClient(ctx, "nobody")
	wantCode(t, err, api.ENOTFOUND)
	_, err = s.Client(ctx, "k") // an alias is not an id
	wantCode(t, err, api.ENOTFOUND)

	list, err := s.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"attic", "kitchen"}) {
		t.Fatalf("Clients ids = %v, want sorted [attic kitchen]", ids)
	}

	if err := s.DeleteClient(ctx, "kitchen"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Client(ctx, "kitchen")
	wantCode(t, err, api.ENOTFOUND)
	wantCode(t, s.DeleteClient(ctx, "kitchen"), api.ENOTFOUND)
	// The deleted client's names are free again.
	if err := s.CreateClient(ctx, Client{ID: "k", Aliases: []string{"cook"}, KeyHash: "h"}); err != nil {
		t.Fatalf("names of a deleted client still taken: %v", err)
	}
}

func equalClient(a, b Client) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Aliases, b.Aliases) &&
		a.KeyHash == b.KeyHash && a.KeyVersion == b.KeyVersion && a.CreatedAt.Equal(b.CreatedAt)
}

func TestCreateClientConflicts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.CreateClient(ctx, Client{ID: "alpha", Aliases: []string{"first"}, KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    Client
		code string
	}{
		{"same id", Client{ID: "alpha", KeyHash: "h"}, api.ECONFLICT},
		{"id is an existing alias", Client{ID: "first", KeyHash: "h"}, api.ECONFLICT},
		{"alias is an existing id", Client{ID: "beta", Aliases: []string{"alpha"}, KeyHash: "h"}, api.ECONFLICT},
		{"alias is an existing alias", Client{ID: "beta", Aliases: []string{"first"}, KeyHash: "h"}, api.ECONFLICT},
		{"bad id", Client{ID: "Beta", KeyHash: "h"}, api.EINVALID},
		{"empty id", Client{ID: "", KeyHash: "h"}, api.EINVALID},
		{"bad alias", Client{ID: "beta", Aliases: []string{"has space"}, KeyHash: "h"}, api.EINVALID},
		{"control in name", Client{ID: "beta", Name: "a\x1b[31mb", KeyHash: "h"}, api.EINVALID},
		{"no key hash", Client{ID: "beta"}, api.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.CreateClient(ctx, tt.c), tt.code)
		})
	}
	// Nothing of the refused clients was written.
	if _, err := s.ResolveClient(ctx, "beta"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("a refused client was stored: %v", err)
	}
	list, _ := s.Clients(ctx)
	if len(list) != 1 {
		t.Fatalf("%d clients, want 1", len(list))
	}
}

func TestSetNames(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, c := range []Client{
		{ID: "one", Aliases: []string{"uno"}, KeyHash: "h"},
		{ID: "two", Aliases: []string{"dos"}, KeyHash: "h"},
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	got, err := s.SetNames(ctx, "one", "Number One", []string{"eins", "uno", "one"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Number One" || !slices.Equal(got.Aliases, []string{"eins", "uno"}) {
		t.Fatalf("SetNames = %+v", got)
	}
	if r, err := s.ResolveClient(ctx, "eins"); err != nil || r.ID != "one" {
		t.Fatalf("new alias does not resolve: %v", err)
	}

	tests := []struct {
		name    string
		id      string
		aliases []string
		code    string
	}{
		{"alias is another client's id", "one", []string{"two"}, api.ECONFLICT},
		{"alias is another client's alias", "one", []string{"dos"}, api.ECONFLICT},
		{"unknown client", "three", nil, api.ENOTFOUND},
		{"invalid alias", "one", []string{"UPPER"}, api.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.SetNames(ctx, tt.id, "x", tt.aliases)
			wantCode(t, err, tt.code)
		})
	}
	// A refused change leaves the old names in place.
	c, _ := s.Client(ctx, "one")
	if c.Name != "Number One" || !slices.Equal(c.Aliases, []string{"eins", "uno"}) {
		t.Fatalf("a refused SetNames changed the client: %+v", c)
	}

	// Dropping an alias frees it for others; an empty name falls back to the id.
	if got, err := s.SetNames(ctx, "one", "", nil); err != nil || got.Name != "one" || len(got.Aliases) != 0 {
		t.Fatalf("SetNames(empty) = %+v, %v", got, err)
	}
	if _, err := s.SetNames(ctx, "two", "", []string{"uno"}); err != nil {
		t.Fatalf("freed alias not available: %v", err)
	}
}

func TestSetKey(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.CreateClient(ctx, Client{ID: "dev", KeyHash: "old"}); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Client(ctx, "dev")
	c, err := s.SetKey(ctx, "dev", "new")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyHash != "new" || c.KeyVersion <= old.KeyVersion {
		t.Fatalf("SetKey = %+v, want hash new, a version above %d", c, old.KeyVersion)
	}
	v2 := c.KeyVersion
	c, _ = s.SetKey(ctx, "dev", "newer")
	if c.KeyVersion <= v2 {
		t.Fatalf("second SetKey version = %d, want above %d", c.KeyVersion, v2)
	}
	if got, _ := s.Client(ctx, "dev"); got.KeyVersion != c.KeyVersion || got.KeyHash != "newer" {
		t.Fatalf("cache after SetKey: %+v", got)
	}
	_, err = s.SetKey(ctx, "ghost", "h")
	wantCode(t, err, api.ENOTFOUND)
	_, err = s.SetKey(ctx, "dev", "")
	wantCode(t, err, api.EINVALID)
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"kitchen-speaker_2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Kitchen", false},
		{"has space", false},
		{"dot.ted", false},
		{"slash/", false},
		{"ümlaut", false},
		{"new\nline", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeNames(t *testing.T) {
	tests := []struct {
		name        string
		inName      string
		inAliases   []string
		wantName    string
		wantAliases []string
		wantErr     bool
	}{
		{"trims", "  Living room ", []string{" lr ", "den"}, "Living room", []string{"lr", "den"}, false},
		{"empty allowed", "", nil, "", []string{}, false},
		{"dedupes keeping order", "x", []string{"b", "a", "b", "", "a"}, "x", []string{"b", "a"}, false},
		{"unicode name", "Küche 🍳", nil, "Küche 🍳", []string{}, false},
		{"100 characters", strings.Repeat("é", 100), nil, strings.Repeat("é", 100), []string{}, false},
		{"101 characters", strings.Repeat("é", 101), nil, "", nil, true},
		{"newline", "a\nb", nil, "", nil, true},
		{"escape", "a\x1bb", nil, "", nil, true},
		{"invalid utf-8", "a\xffb", nil, "", nil, true},
		{"bad alias", "x", []string{"Bad"}, "", nil, true},
		{"16 aliases", "x", manyAliases(16), "x", manyAliases(16), false},
		{"17 aliases", "x", manyAliases(17), "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, aliases, err := NormalizeNames(tt.inName, tt.inAliases)
			if tt.wantErr {
				wantCode(t, err, api.EINVALID)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.wantName || !slices.Equal(aliases, tt.wantAliases) || aliases == nil {
				t.Fatalf("got %q %q, want %q %q", name, aliases, tt.wantName, tt.wantAliases)
			}
		})
	}
}

func manyAliases(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "a" + strings.Repeat("x", i)
	}
	return out
}

// FuzzNormalizeNames feeds names and aliases as a client may send them: no
// panic, and whatever is accepted is within the documented limits.
func FuzzNormalizeNames(f *testing.F) {
	f.Add("Kitchen", "k,cook")
	f.Add(" \t", ",,")
	f.Add("a\x00b", "UP")
	f.Add("\u202eevil", "a,a,a")
	f.Fuzz(func(t *testing.T, name, aliases string) {
		n, as, err := NormalizeNames(name, strings.Split(aliases, ","))
		if err != nil {
			if api.ErrorCode(err) != api.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if !utf8.ValidString(n) || utf8.RuneCountInString(n) > MaxNameLen || n != strings.TrimSpace(n) {
			t.Fatalf("accepted name %q", n)
		}
		for _, r := range n {
			if !unicode.IsPrint(r) {
				t.Fatalf("accepted non-printable %U in name", r)
			}
		}
		if len(as) > MaxAliases {
			t.Fatalf("accepted %d aliases", len(as))
		}
		seen := map[string]bool{}
		for _, a := range as {
			if !ValidID(a) || seen[a] {
				t.Fatalf("accepted alias %q (dup %v)", a, seen[a])
			}
			seen[a] = true
		}
	})
}

// TestResolveSeesAClientAddedElsewhereAtOnce: a client added by the command
// line (another process) logs in right away, without waiting for the
// periodic refresh.
func TestResolveSeesAClientAddedElsewhereAtOnce(t *testing.T) {
	server, path := newStore(t)
	ctx := context.Background()
	if _, err := server.Clients(ctx); err != nil { // a fresh check: the next periodic one is 250ms away
		t.Fatal(err)
	}
	cli := open(t, path)
	if err := cli.CreateClient(ctx, Client{ID: "porch", Name: "Porch", KeyHash: "h", KeyVersion: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c, err := server.ResolveClient(ctx, "porch")
	if err != nil || c.ID != "porch" {
		t.Fatalf("ResolveClient = %+v, %v", c, err)
	}
}

// TestKeyVersionsNeverRepeat: a client deleted and created again under the
// same id, from either process, never gets a key version that one of its
// earlier keys had, so a token naming an old version cannot pass for the
// new client (issue 12, item 3).
func TestKeyVersionsNeverRepeat(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	other := open(t, path)
	seen := map[int64]bool{}
	record := func(c Client) {
		t.Helper()
		if seen[c.KeyVersion] {
			t.Fatalf("key version %d given twice", c.KeyVersion)
		}
		seen[c.KeyVersion] = true
	}
	for i, st := range []*Store{s, other, s} {
		if err := st.CreateClient(ctx, Client{ID: "hall", KeyHash: "h"}); err != nil {
			t.Fatal(i, err)
		}
		c, err := st.Client(ctx, "hall")
		if err != nil {
			t.Fatal(err)
		}
		record(c)
		if c, err = st.SetKey(ctx, "hall", "h2"); err != nil {
			t.Fatal(err)
		}
		record(c)
		if err := st.DeleteClient(ctx, "hall"); err != nil {
			t.Fatal(err)
		}
	}
}
