package sessions

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/tokens"
)

// refusals records what Sessions tells its Bans and Refusals.
type refusals struct {
	mu      sync.Mutex
	counted []string
	banned  []string // "reason@addr"
}

func (r *refusals) Failed(_ context.Context, addr netip.Addr, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.banned = append(r.banned, reason+"@"+addr.String())
	return false
}

func (r *refusals) count(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = append(r.counted, reason)
}

// take returns what was recorded since the last take.
func (r *refusals) take() (counted, banned []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counted, banned, r.counted, r.banned = r.counted, r.banned, nil, nil
	return counted, banned
}

// TestRefusedDecidesWhatCounts: the sessions, not the wiring, decide what a
// refused credential counts for. Every refusal is counted by its reason; a
// failed login, a wrong client key, a wrong admin token and a forged or
// garbled token count towards a ban of the address, while a session that
// simply ended (expired, revoked, its client deleted or re-keyed) does not.
func TestRefusedDecidesWhatCounts(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{}
	tk, err := tokens.New(tokens.Config{Secret: []byte(strings.Repeat("s", tokens.MinSecretLen)), TTL: time.Hour, Now: clk.now}, st)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := clients.New(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, err := reg.Create(ctx, api.CreateClientRequest{ID: "kitchen"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &refusals{}
	s, err := New(Config{AdminTokenHash: sha256.Sum256([]byte(adminToken)), Bans: rec, Refusals: rec.count}, tk, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string, wantCounted []string, wantBanned ...string) {
		t.Helper()
		counted, banned := rec.take()
		if !slices.Equal(counted, wantCounted) || !slices.Equal(banned, wantBanned) {
			t.Errorf("%s: counted %q, held against %q; want %q and %q", name, counted, banned, wantCounted, wantBanned)
		}
	}

	if _, err := s.Login(ctx, api.SessionRequest{ClientID: "kitchen", AccessKey: "gwk_wrong"}, testAddr); err == nil {
		t.Fatal("a wrong key logged in")
	}
	want("failed login", []string{ReasonLogin}, ReasonLogin+"@"+testAddr.String())
	good, err := s.Login(ctx, api.SessionRequest{ClientID: "kitchen", AccessKey: created.AccessKey}, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	want("login", nil)

	refuse := func(err error) {
		t.Helper()
		if err == nil {
			t.Fatal("a credential was not refused")
		}
		s.Refused(ctx, testAddr, err)
	}
	_, err = s.VerifyKey(ctx, "kitchen:gwk_wrong", testAddr)
	refuse(err)
	want("wrong client key", []string{ReasonClientKey}, ReasonClientKey+"@"+testAddr.String())
	refuse(api.Errorf(api.EFORBIDDEN, "this route needs the admin token"))
	want("wrong admin token", []string{ReasonAdminToken}, ReasonAdminToken+"@"+testAddr.String())
	_, err = s.VerifySession(ctx, "not-a-token")
	refuse(err)
	want("garbled token", []string{"token-" + tokens.ReasonMalformed}, "token-"+tokens.ReasonMalformed+"@"+testAddr.String())
	refuse(ErrClientGone)
	want("client gone", []string{ReasonClientGone})
	refuse(ErrKeyChanged)
	want("key changed", []string{ReasonKeyChanged})

	clk.advance(2 * time.Hour)
	_, err = s.VerifySession(ctx, good.Token.Reveal())
	refuse(err)
	want("expired token", []string{"token-" + tokens.ReasonExpired})
}
