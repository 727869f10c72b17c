package tokens

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ovosgw/gateway/api"
)

// newRealClock makes Tokens on time.Now, which synctest fakes.
func newRealClock(t *testing.T) *Tokens {
	t.Helper()
	tk, err := New(Config{Secret: testSecret}, &memRevocations{})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTicketSingleUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := newRealClock(t)
		_, c, err := tk.Issue("kitchen", 1)
		if err != nil {
			t.Fatal(err)
		}
		ticket, ttl, err := tk.IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		if ttl != TicketTTL || !strings.HasPrefix(ticket.Reveal(), TicketPrefix) {
			t.Fatalf("ticket ttl %v, prefix ok %v", ttl, strings.HasPrefix(ticket.Reveal(), TicketPrefix))
		}
		// A look leaves it unspent.
		for range 2 {
			if got, err := tk.PeekTicket(ticket.Reveal()); err != nil || got != c {
				t.Fatalf("PeekTicket = %+v, %v", got, err)
			}
		}
		got, err := tk.RedeemTicket(ticket.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if got != c {
			t.Fatalf("ticket stands for %+v, want %+v", got, c)
		}
		// Replaying a ticket (from a log or a proxy) must fail.
		_, err = tk.RedeemTicket(ticket.Reveal())
		wantUnauthorized(t, err, ReasonInvalid)
		_, err = tk.PeekTicket(ticket.Reveal())
		wantUnauthorized(t, err, ReasonInvalid)
		_, err = tk.RedeemTicket("gwt_unknown")
		wantUnauthorized(t, err, ReasonInvalid)
		_, err = tk.RedeemTicket("")
		wantUnauthorized(t, err, ReasonInvalid)
	})
}

func TestTicketExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := newRealClock(t)
		_, c, err := tk.Issue("kitchen", 1)
		if err != nil {
			t.Fatal(err)
		}
		early, _, err := tk.IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		late, _, err := tk.IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(TicketTTL - time.Second)
		if _, err := tk.RedeemTicket(early.Reveal()); err != nil {
			t.Fatalf("ticket refused before its expiry: %v", err)
		}
		time.Sleep(time.Second)
		_, err = tk.RedeemTicket(late.Reveal())
		wantUnauthorized(t, err, ReasonInvalid)
	})
}

func TestTicketBoundedByToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk, err := New(Config{Secret: testSecret, TTL: 30 * time.Second}, &memRevocations{})
		if err != nil {
			t.Fatal(err)
		}
		_, c, err := tk.Issue("kitchen", 1)
		if err != nil {
			t.Fatal(err)
		}
		// A ticket does not outlive the session it stands for.
		_, ttl, err := tk.IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		if ttl > 30*time.Second {
			t.Fatalf("ticket ttl %v outlives the 30 s token", ttl)
		}
		time.Sleep(31 * time.Second)
		_, _, err = tk.IssueTicket(c)
		wantUnauthorized(t, err, ReasonExpired)
	})
}

func TestTicketAfterLogout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := newRealClock(t)
		_, c, err := tk.Issue("kitchen", 1)
		if err != nil {
			t.Fatal(err)
		}
		ticket, _, err := tk.IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Revoke(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		// A ticket obtained before logout must not open a stream after it.
		_, err = tk.RedeemTicket(ticket.Reveal())
		wantUnauthorized(t, err, ReasonRevoked)
		_, _, err = tk.IssueTicket(c)
		wantUnauthorized(t, err, ReasonRevoked)
	})
}

func TestTicketLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := newRealClock(t)
		_, c, err := tk.Issue("greedy", 1)
		if err != nil {
			t.Fatal(err)
		}
		_, other, err := tk.Issue("modest", 1)
		if err != nil {
			t.Fatal(err)
		}
		var first api.Secret
		for i := range MaxTicketsPerClient {
			s, _, err := tk.IssueTicket(c)
			if err != nil {
				t.Fatalf("ticket %d: %v", i, err)
			}
			if i == 0 {
				first = s
			}
		}
		// One client cannot hoard tickets...
		_, _, err = tk.IssueTicket(c)
		if api.ErrorCode(err) != api.ERATELIMITED {
			t.Fatalf("ticket beyond the per-client limit: %v", err)
		}
		// ...nor starve other clients.
		if _, _, err := tk.IssueTicket(other); err != nil {
			t.Fatalf("other client refused: %v", err)
		}
		// Redeeming frees a slot; so does expiry (pruning).
		if _, err := tk.RedeemTicket(first.Reveal()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tk.IssueTicket(c); err != nil {
			t.Fatalf("slot not freed by redeeming: %v", err)
		}
		time.Sleep(TicketTTL)
		if _, _, err := tk.IssueTicket(c); err != nil {
			t.Fatalf("expired tickets not pruned: %v", err)
		}
		mem := tk.tickets.(*tickets)
		mem.mu.Lock()
		n := len(mem.byHash)
		mem.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d tickets held after pruning, want 1", n)
		}
	})
}

// TestTicketStoredHashed checks that the ticket map is keyed by the ticket's
// SHA-256, not the ticket, so a memory dump yields nothing to redeem.
func TestTicketStoredHashed(t *testing.T) {
	tk := newRealClock(t)
	_, c, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := tk.IssueTicket(c)
	if err != nil {
		t.Fatal(err)
	}
	mem := tk.tickets.(*tickets)
	mem.mu.Lock()
	defer mem.mu.Unlock()
	if len(mem.byHash) != 1 {
		t.Fatalf("%d tickets held, want 1", len(mem.byHash))
	}
	if _, ok := mem.byHash[sha256.Sum256([]byte(s.Reveal()))]; !ok {
		t.Fatal("ticket not keyed by its SHA-256")
	}
}
