package redisstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/redistest"
	"github.com/ovosgw/gateway/internal/tokens"
)

// newTokens is one replica's tokens over the shared Redis state.
func newTokens(t *testing.T, srv *redistest.Server) *tokens.Tokens {
	t.Helper()
	s := open(t, srv)
	tk, err := tokens.New(tokens.Config{
		Secret:  []byte(strings.Repeat("s", tokens.MinSecretLen)),
		Tickets: s.Tickets(4),
	}, s.Revocations())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// A logout on one replica refuses the session's tokens on every other, at
// once (the revocation is read through each replica's client-side cache,
// which Redis invalidates).
func TestRevocationsAreShared(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newTokens(t, srv), newTokens(t, srv)
	tok, c, err := a.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := a.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Both replicas have verified (and cached) the token before the logout.
	for _, tk := range []*tokens.Tokens{a, b} {
		if _, err := tk.Verify(tok.Reveal()); err != nil {
			t.Fatalf("a fresh token is refused: %v", err)
		}
	}
	if err := a.Revoke(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok.Reveal()); tokens.Reason(err) != tokens.ReasonRevoked {
		t.Fatalf("the replica that logged out still takes the token: %v", err)
	}
	gatewaytest.Eventually(t, "the other replica to refuse the revoked token", func() bool {
		_, err := b.Verify(tok.Reveal())
		return tokens.Reason(err) == tokens.ReasonRevoked
	})
	if _, err := b.Verify(other.Reveal()); err != nil {
		t.Fatalf("another session was refused: %v", err)
	}
}

// A ticket issued on one replica is redeemed on another, once, even when
// several replicas redeem it at the same moment; a client's outstanding
// tickets are bounded across replicas.
func TestTicketsAreSingleUseAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	replicas := []*tokens.Tokens{newTokens(t, srv), newTokens(t, srv), newTokens(t, srv)}
	_, c, err := replicas[0].Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		ticket, _, err := replicas[round%3].IssueTicket(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replicas[(round+1)%3].PeekTicket(ticket.Reveal()); err != nil {
			t.Fatalf("peek on another replica: %v", err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := replicas[i%3].RedeemTicket(ticket.Reveal())
				if err == nil {
					if got.SessionID != c.SessionID {
						t.Errorf("the ticket stood for %+v", got)
					}
					wins.Add(1)
				} else if api.ErrorCode(err) != api.EUNAUTHORIZED {
					t.Errorf("a losing redemption: %v", err)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: the ticket was redeemed %d times", round, n)
		}
	}

	// Four outstanding tickets at most, whichever replica issues them; a
	// redemption frees a slot.
	var first api.Secret
	for i := range 4 {
		tk, _, err := replicas[i%3].IssueTicket(c)
		if err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
		if i == 0 {
			first = tk
		}
	}
	if _, _, err := replicas[2].IssueTicket(c); api.ErrorCode(err) != api.ERATELIMITED {
		t.Fatalf("a fifth outstanding ticket: %v", err)
	}
	if _, err := replicas[1].RedeemTicket(first.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := replicas[2].IssueTicket(c); err != nil {
		t.Fatalf("the slot a redemption freed: %v", err)
	}
	// A logout ends the tickets the session obtained.
	tk, _, err := replicas[0].IssueTicket(tokens.Claims{ClientID: "porch", SessionID: "s-porch", ID: "j-porch", ExpiresAt: c.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	if err := replicas[1].Revoke(context.Background(), tokens.Claims{ClientID: "porch", SessionID: "s-porch", ID: "j-porch", ExpiresAt: c.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, "the revoked session's ticket to be refused", func() bool {
		_, err := replicas[2].PeekTicket(tk.Reveal())
		return tokens.Reason(err) == tokens.ReasonRevoked
	})
}

// With Redis down, a token is never let through unchecked, nor a ticket
// issued or redeemed: each is 503 (EUNAVAILABLE), not a 401 that would
// count towards a ban; once Redis is back they work again.
func TestTokensWithRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	a := newTokens(t, srv)
	tok, c, err := a.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	ticket, _, err := a.IssueTicket(c)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// A token never checked before: no cached answer to fall back on.
	fresh, fc, err := a.Issue("porch", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(fresh.Reveal()); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("a token checked with Redis down: %v", err)
	}
	if _, _, err := a.IssueTicket(fc); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("a ticket issued with Redis down: %v", err)
	}
	if _, err := a.RedeemTicket(ticket.Reveal()); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Fatalf("a ticket redeemed with Redis down: %v", err)
	}
	srv.Restart(t)
	gatewaytest.Eventually(t, "tokens to verify again", func() bool {
		_, err1 := a.Verify(fresh.Reveal())
		_, err2 := a.Verify(tok.Reveal())
		return err1 == nil && err2 == nil
	})
	if _, err := a.RedeemTicket(ticket.Reveal()); err != nil {
		t.Fatalf("the ticket kept across the restart: %v", err)
	}
}
