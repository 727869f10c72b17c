// Package clientstest is the conformance suite of the client registry's
// store (clients.Store): every implementation, the SQLite file of one
// process and the Redis of several replicas, runs it and must pass it
// unchanged, so that the registry, the logins and the command line cannot
// tell which one runs. It is imported by tests only.
package clientstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/store"
)

// Open returns two handles on one fresh, empty registry, as two processes
// (the server and the command line) or two replicas would hold it. Each
// call is a registry of its own; the handles are closed when t ends.
type Open func(t *testing.T) (first, second clients.Store)

// Run runs every case of the suite as a subtest of t, each on a registry
// of its own.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, a, b clients.Store)
	}{
		{"CRUD", testCRUD},
		{"CreateConflicts", testCreateConflicts},
		{"SetNames", testSetNames},
		{"SetKey", testSetKey},
		{"ResolveSeesANewClientAtOnce", testResolveSeesANewClientAtOnce},
		{"ChangesReachTheOtherHandle", testChangesReachTheOtherHandle},
		{"KeyVersionsNeverRepeat", testKeyVersionsNeverRepeat},
		{"ConcurrentCreatesOneWins", testConcurrentCreatesOneWins},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.run(t, a, b)
		})
	}
}

// wantCode fails unless err is an *api.Error with code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want api.Error %s", err, code)
	}
}

func equal(a, b store.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Aliases, b.Aliases) &&
		a.KeyHash == b.KeyHash && a.KeyVersion == b.KeyVersion && a.CreatedAt.Equal(b.CreatedAt)
}

func mustCreate(t testing.TB, s clients.Store, c store.Client) store.Client {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient(%s): %v", c.ID, err)
	}
	got, err := s.Client(ctx, c.ID)
	if err != nil {
		t.Fatalf("Client(%s) after creation: %v", c.ID, err)
	}
	return got
}

func testCRUD(t *testing.T, s, _ clients.Store) {
	ctx := context.Background()
	created := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	c := mustCreate(t, s, store.Client{
		ID: "kitchen", Name: "  Kitchen speaker ", Aliases: []string{"k", " cook ", "k", "kitchen"},
		KeyHash: "hash-1", CreatedAt: created,
	})
	if c.KeyVersion <= 0 {
		t.Fatalf("key version %d", c.KeyVersion)
	}
	want := store.Client{ID: "kitchen", Name: "Kitchen speaker", Aliases: []string{"k", "cook"}, KeyHash: "hash-1", KeyVersion: c.KeyVersion, CreatedAt: created}
	if !equal(c, want) {
		t.Fatalf("Client = %+v, want %+v", c, want)
	}
	a := mustCreate(t, s, store.Client{ID: "attic", KeyHash: "hash-2"})
	if a.Name != "attic" || a.Aliases == nil || len(a.Aliases) != 0 || a.CreatedAt.IsZero() {
		t.Fatalf("defaults: %+v (want name = id, empty non-nil aliases, a creation time)", a)
	}
	if a.KeyVersion == c.KeyVersion {
		t.Fatalf("two clients share key version %d", a.KeyVersion)
	}

	// Callers get copies: changing one does not change the store.
	c.Aliases[0] = "mutated"
	if again, _ := s.Client(ctx, "kitchen"); again.Aliases[0] != "k" {
		t.Fatal("a caller changed the store's record")
	}
	for _, name := range []string{"kitchen", "k", "cook"} {
		if r, err := s.ResolveClient(ctx, name); err != nil || r.ID != "kitchen" {
			t.Errorf("ResolveClient(%q) = %q, %v", name, r.ID, err)
		}
	}
	_, err := s.ResolveClient(ctx, "nobody")
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
	if !equal(list[1], want) {
		t.Fatalf("Clients()[1] = %+v, want %+v", list[1], want)
	}

	if err := s.DeleteClient(ctx, "kitchen"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Client(ctx, "kitchen")
	wantCode(t, err, api.ENOTFOUND)
	_, err = s.ResolveClient(ctx, "cook")
	wantCode(t, err, api.ENOTFOUND)
	wantCode(t, s.DeleteClient(ctx, "kitchen"), api.ENOTFOUND)
	// The deleted client's names are free again.
	if err := s.CreateClient(ctx, store.Client{ID: "k", Aliases: []string{"cook"}, KeyHash: "h"}); err != nil {
		t.Fatalf("names of a deleted client still taken: %v", err)
	}
}

func testCreateConflicts(t *testing.T, s, _ clients.Store) {
	ctx := context.Background()
	mustCreate(t, s, store.Client{ID: "alpha", Aliases: []string{"first"}, KeyHash: "h"})
	for _, tc := range []struct {
		name string
		c    store.Client
		code string
	}{
		{"same id", store.Client{ID: "alpha", KeyHash: "h"}, api.ECONFLICT},
		{"id is an existing alias", store.Client{ID: "first", KeyHash: "h"}, api.ECONFLICT},
		{"alias is an existing id", store.Client{ID: "beta", Aliases: []string{"alpha"}, KeyHash: "h"}, api.ECONFLICT},
		{"alias is an existing alias", store.Client{ID: "beta", Aliases: []string{"first"}, KeyHash: "h"}, api.ECONFLICT},
		{"bad id", store.Client{ID: "Beta", KeyHash: "h"}, api.EINVALID},
		{"empty id", store.Client{ID: "", KeyHash: "h"}, api.EINVALID},
		{"bad alias", store.Client{ID: "beta", Aliases: []string{"has space"}, KeyHash: "h"}, api.EINVALID},
		{"control in name", store.Client{ID: "beta", Name: "a\x1b[31mb", KeyHash: "h"}, api.EINVALID},
		{"no key hash", store.Client{ID: "beta"}, api.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s.CreateClient(ctx, tc.c), tc.code)
		})
	}
	// Nothing of the refused clients was written.
	if _, err := s.ResolveClient(ctx, "beta"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("a refused client was stored: %v", err)
	}
	if list, _ := s.Clients(ctx); len(list) != 1 {
		t.Fatalf("%d clients, want 1", len(list))
	}
	if c, _ := s.Client(ctx, "alpha"); !slices.Equal(c.Aliases, []string{"first"}) {
		t.Fatalf("a refused client changed another: %+v", c)
	}
}

func testSetNames(t *testing.T, s, _ clients.Store) {
	ctx := context.Background()
	mustCreate(t, s, store.Client{ID: "one", Aliases: []string{"uno"}, KeyHash: "h"})
	mustCreate(t, s, store.Client{ID: "two", Aliases: []string{"dos"}, KeyHash: "h"})

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
	for _, tc := range []struct {
		name    string
		id      string
		aliases []string
		code    string
	}{
		{"alias is another client's id", "one", []string{"two"}, api.ECONFLICT},
		{"alias is another client's alias", "one", []string{"dos"}, api.ECONFLICT},
		{"unknown client", "three", nil, api.ENOTFOUND},
		{"invalid alias", "one", []string{"UPPER"}, api.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SetNames(ctx, tc.id, "x", tc.aliases)
			wantCode(t, err, tc.code)
		})
	}
	// A refused change leaves the old names in place.
	if c, _ := s.Client(ctx, "one"); c.Name != "Number One" || !slices.Equal(c.Aliases, []string{"eins", "uno"}) {
		t.Fatalf("a refused SetNames changed the client: %+v", c)
	}
	if _, err := s.ResolveClient(ctx, "three"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("SetNames of an unknown client created it: %v", err)
	}
	// Dropping an alias frees it for others; an empty name falls back to the id.
	if got, err := s.SetNames(ctx, "one", "", nil); err != nil || got.Name != "one" || len(got.Aliases) != 0 {
		t.Fatalf("SetNames(empty) = %+v, %v", got, err)
	}
	if _, err := s.ResolveClient(ctx, "eins"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("a dropped alias still resolves: %v", err)
	}
	if _, err := s.SetNames(ctx, "two", "", []string{"uno"}); err != nil {
		t.Fatalf("freed alias not available: %v", err)
	}
	if r, err := s.ResolveClient(ctx, "uno"); err != nil || r.ID != "two" {
		t.Fatalf("ResolveClient(uno) = %+v, %v", r, err)
	}
}

func testSetKey(t *testing.T, s, _ clients.Store) {
	ctx := context.Background()
	old := mustCreate(t, s, store.Client{ID: "dev", KeyHash: "old"})
	c, err := s.SetKey(ctx, "dev", "new")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyHash != "new" || c.KeyVersion <= old.KeyVersion {
		t.Fatalf("SetKey = %+v, want hash new, a version above %d", c, old.KeyVersion)
	}
	v2 := c.KeyVersion
	if c, err = s.SetKey(ctx, "dev", "newer"); err != nil || c.KeyVersion <= v2 {
		t.Fatalf("second SetKey = %+v, %v; want a version above %d", c, err, v2)
	}
	if got, _ := s.Client(ctx, "dev"); got.KeyVersion != c.KeyVersion || got.KeyHash != "newer" || !got.CreatedAt.Equal(old.CreatedAt) {
		t.Fatalf("Client after SetKey: %+v", got)
	}
	_, err = s.SetKey(ctx, "ghost", "h")
	wantCode(t, err, api.ENOTFOUND)
	if _, err := s.Client(ctx, "ghost"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("SetKey of an unknown client created it: %v", err)
	}
	_, err = s.SetKey(ctx, "dev", "")
	wantCode(t, err, api.EINVALID)
}

// A client created through one handle (the command line, another replica)
// logs in through the other right away.
func testResolveSeesANewClientAtOnce(t *testing.T, a, b clients.Store) {
	ctx := context.Background()
	// b looks first, so that whatever it keeps knows the names as unknown.
	for _, name := range []string{"porch", "front"} {
		if _, err := b.ResolveClient(ctx, name); api.ErrorCode(err) != api.ENOTFOUND {
			t.Fatalf("ResolveClient(%s) before creation: %v", name, err)
		}
	}
	if _, err := b.Client(ctx, "porch"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("Client(porch) before creation: %v", err)
	}
	mustCreate(t, a, store.Client{ID: "porch", Name: "Porch", Aliases: []string{"front"}, KeyHash: "h"})
	for _, name := range []string{"porch", "front"} {
		if c, err := b.ResolveClient(ctx, name); err != nil || c.ID != "porch" || c.KeyHash != "h" {
			t.Fatalf("ResolveClient(%s) = %+v, %v", name, c, err)
		}
	}
}

// Changes made through one handle reach the other (within the store's
// refresh, which may not be at once).
func testChangesReachTheOtherHandle(t *testing.T, a, b clients.Store) {
	ctx := context.Background()
	c := mustCreate(t, a, store.Client{ID: "hall", Aliases: []string{"lobby"}, KeyHash: "h1"})
	gatewaytest.Eventually(t, "the other handle to see the client", func() bool {
		got, err := b.Client(ctx, "hall")
		return err == nil && equal(got, c)
	})
	rekeyed, err := a.SetKey(ctx, "hall", "h2")
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, "the other handle to see the new key", func() bool {
		got, err := b.Client(ctx, "hall")
		return err == nil && got.KeyHash == "h2" && got.KeyVersion == rekeyed.KeyVersion
	})
	if _, err := a.SetNames(ctx, "hall", "Hallway", []string{"corridor"}); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, "the other handle to see the new names", func() bool {
		got, err := b.Client(ctx, "hall")
		_, gone := b.ResolveClient(ctx, "lobby")
		return err == nil && got.Name == "Hallway" && slices.Equal(got.Aliases, []string{"corridor"}) &&
			api.ErrorCode(gone) == api.ENOTFOUND
	})
	if err := a.DeleteClient(ctx, "hall"); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, "the other handle to see the client gone", func() bool {
		_, err := b.Client(ctx, "hall")
		list, lerr := b.Clients(ctx)
		return api.ErrorCode(err) == api.ENOTFOUND && lerr == nil && len(list) == 0
	})
}

// A client deleted and created again under the same id, through either
// handle, never gets a key version one of its earlier keys had, so a token
// naming an old version cannot pass for the new client.
func testKeyVersionsNeverRepeat(t *testing.T, a, b clients.Store) {
	ctx := context.Background()
	seen := map[int64]bool{}
	record := func(c store.Client) {
		t.Helper()
		if seen[c.KeyVersion] {
			t.Fatalf("key version %d given twice", c.KeyVersion)
		}
		seen[c.KeyVersion] = true
	}
	for i, s := range []clients.Store{a, b, a} {
		record(mustCreate(t, s, store.Client{ID: "hall", KeyHash: "h"}))
		c, err := s.SetKey(ctx, "hall", "h2")
		if err != nil {
			t.Fatal(i, err)
		}
		record(c)
		if err := s.DeleteClient(ctx, "hall"); err != nil {
			t.Fatal(i, err)
		}
	}
}

// Creations racing through both handles for one id, or for one alias, end
// with exactly one client holding it; every other attempt is refused with
// ECONFLICT and leaves nothing behind.
func testConcurrentCreatesOneWins(t *testing.T, a, b clients.Store) {
	ctx := context.Background()
	const n = 8
	type result struct {
		id  string
		err error
	}
	race := func(build func(i int) store.Client) []result {
		var wg sync.WaitGroup
		out := make([]result, n)
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			c := build(i)
			wg.Go(func() { out[i] = result{c.ID, s.CreateClient(ctx, c)} })
		}
		wg.Wait()
		return out
	}
	winners := func(rs []result) []string {
		t.Helper()
		var won []string
		for _, r := range rs {
			switch code := api.ErrorCode(r.err); {
			case r.err == nil:
				won = append(won, r.id)
			case code != api.ECONFLICT:
				t.Fatalf("a losing creation failed with %v, want a conflict", r.err)
			}
		}
		return won
	}

	// One id.
	if won := winners(race(func(i int) store.Client {
		return store.Client{ID: "same", Aliases: []string{fmt.Sprintf("alias-%d", i)}, KeyHash: "h"}
	})); len(won) != 1 {
		t.Fatalf("%d creations of one id succeeded", len(won))
	}
	c, err := a.ResolveClient(ctx, "same")
	if err != nil || len(c.Aliases) != 1 {
		t.Fatalf("the winner: %+v, %v", c, err)
	}
	for i := range n {
		alias := fmt.Sprintf("alias-%d", i)
		r, err := b.ResolveClient(ctx, alias)
		if alias == c.Aliases[0] {
			if err != nil || r.ID != "same" {
				t.Fatalf("the winner's alias %s: %+v, %v", alias, r, err)
			}
		} else if api.ErrorCode(err) != api.ENOTFOUND {
			t.Fatalf("a loser's alias %s was kept: %+v, %v", alias, r, err)
		}
	}

	// One alias, several ids.
	won := winners(race(func(i int) store.Client {
		return store.Client{ID: fmt.Sprintf("dev-%d", i), Aliases: []string{"shared"}, KeyHash: "h"}
	}))
	if len(won) != 1 {
		t.Fatalf("%d creations with one alias succeeded: %v", len(won), won)
	}
	if r, err := a.ResolveClient(ctx, "shared"); err != nil || r.ID != won[0] {
		t.Fatalf("the alias resolves to %+v, %v; want %s", r, err, won[0])
	}
	gatewaytest.Eventually(t, "both handles to list the two winners", func() bool {
		la, erra := a.Clients(ctx)
		lb, errb := b.Clients(ctx)
		return erra == nil && errb == nil && len(la) == 2 && len(lb) == 2
	})
}
