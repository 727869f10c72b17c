package tokens

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/keys"
)

// Stream tickets: a browser's EventSource cannot send an Authorization
// header, and a token in a URL ends up in logs and history, so a client
// trades its token for a short-lived single-use ticket to put in the URL.
const (
	TicketTTL           = 60 * time.Second
	TicketPrefix        = "gwt_"
	maxTickets          = 10000
	maxTicketsPerClient = 32
	maxTicketLen        = 128
	ticketPruneEvery    = 10 * time.Second
)

// tickets holds the outstanding tickets, keyed by the SHA-256 of the ticket
// so that the map (a heap dump, say) holds nothing that can be redeemed.
type tickets struct {
	mu        sync.Mutex
	byHash    map[[sha256.Size]byte]ticket
	perClient map[string]int
	lastPrune time.Time
}

type ticket struct {
	claims  Claims
	expires time.Time
}

func (ts *tickets) init() {
	ts.byHash = map[[sha256.Size]byte]ticket{}
	ts.perClient = map[string]int{}
}

// IssueTicket returns a single-use ticket standing for the session c, and
// how long it is valid: TicketTTL, or less when the token expires sooner.
// It fails with EUNAUTHORIZED for an expired or revoked session,
// ERATELIMITED when the client has too many outstanding tickets, and
// EUNAVAILABLE when the gateway has.
func (t *Tokens) IssueTicket(c Claims) (api.Secret, time.Duration, error) {
	now := t.cfg.Now()
	switch {
	case c.ID == "" || c.ClientID == "":
		return "", 0, unauthorized(detailInvalid)
	case !now.Before(c.ExpiresAt):
		return "", 0, unauthorized(detailExpired)
	case t.revoked(c):
		return "", 0, unauthorized(detailRevoked)
	}
	expires := now.Add(TicketTTL)
	if c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt
	}
	secret, err := keys.NewToken(TicketPrefix)
	if err != nil {
		return "", 0, err
	}

	ts := &t.tickets
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if now.Sub(ts.lastPrune) >= ticketPruneEvery || len(ts.byHash) >= maxTickets {
		ts.pruneLocked(now)
	}
	if len(ts.byHash) >= maxTickets {
		return "", 0, &api.Error{Code: api.EUNAVAILABLE, Detail: "too many outstanding stream tickets", RetryAfter: TicketTTL}
	}
	if ts.perClient[c.ClientID] >= maxTicketsPerClient {
		return "", 0, &api.Error{Code: api.ERATELIMITED, Detail: "too many outstanding stream tickets for this client", RetryAfter: TicketTTL}
	}
	ts.byHash[sha256.Sum256([]byte(secret))] = ticket{claims: c, expires: expires}
	ts.perClient[c.ClientID]++
	return secret, expires.Sub(now), nil
}

// RedeemTicket returns the session a ticket stands for and forgets the
// ticket: a second use fails. An unknown or expired ticket, or one whose
// session was revoked meanwhile, is EUNAUTHORIZED.
func (t *Tokens) RedeemTicket(s string) (Claims, error) {
	return t.ticket(s, true)
}

// PeekTicket checks a ticket as RedeemTicket does, and returns the session
// it stands for, but leaves it unspent.
func (t *Tokens) PeekTicket(s string) (Claims, error) {
	return t.ticket(s, false)
}

// ticket looks a ticket up, spending it when spend is set (the lookup and
// the removal under one lock, so that of two uses at once one wins).
func (t *Tokens) ticket(s string, spend bool) (Claims, error) {
	if s == "" || len(s) > maxTicketLen {
		return Claims{}, unauthorized(detailTicket)
	}
	h := sha256.Sum256([]byte(s))
	ts := &t.tickets
	ts.mu.Lock()
	tk, ok := ts.byHash[h]
	if ok && spend {
		ts.removeLocked(h, tk)
	}
	ts.mu.Unlock()
	now := t.cfg.Now()
	switch {
	case !ok || !now.Before(tk.expires):
		return Claims{}, unauthorized(detailTicket)
	case t.revoked(tk.claims):
		return Claims{}, unauthorized(detailRevoked)
	}
	return tk.claims, nil
}

func (ts *tickets) removeLocked(h [sha256.Size]byte, tk ticket) {
	delete(ts.byHash, h)
	if n := ts.perClient[tk.claims.ClientID] - 1; n > 0 {
		ts.perClient[tk.claims.ClientID] = n
	} else {
		delete(ts.perClient, tk.claims.ClientID)
	}
}

func (ts *tickets) pruneLocked(now time.Time) {
	for h, tk := range ts.byHash {
		if !now.Before(tk.expires) {
			ts.removeLocked(h, tk)
		}
	}
	ts.lastPrune = now
}
