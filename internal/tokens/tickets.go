package tokens

import (
	"context"
	"crypto/sha256"
	"errors"
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
	MaxTicketsPerClient = 32
	maxTicketLen        = 128
	ticketPruneEvery    = 10 * time.Second
)

// TicketStore keeps the outstanding stream tickets by the SHA-256 of each
// (never the ticket itself, so that what it holds cannot be redeemed). The
// default lives in the process; a shared one (redisstore.Tickets) lets any
// replica redeem a ticket another issued, once.
type TicketStore interface {
	// Put keeps c under hash until expires. It refuses with ERATELIMITED
	// when the client has too many outstanding tickets, and EUNAVAILABLE
	// when the store is full or out of reach.
	Put(ctx context.Context, hash [sha256.Size]byte, c Claims, expires time.Time) error
	// Get returns the claims and expiry of the ticket under hash, ok false
	// when there is none; spend removes it in the same step, so that of two
	// uses at once exactly one finds it.
	Get(ctx context.Context, hash [sha256.Size]byte, spend bool) (c Claims, expires time.Time, ok bool, err error)
}

// ticketTimeout bounds a call to the TicketStore.
const ticketTimeout = 2 * time.Second

// tickets is the TicketStore of one process.
type tickets struct {
	now       func() time.Time
	mu        sync.Mutex
	byHash    map[[sha256.Size]byte]ticket
	perClient map[string]int
	lastPrune time.Time
}

type ticket struct {
	claims  Claims
	expires time.Time
}

func newTickets(now func() time.Time) *tickets {
	return &tickets{now: now, byHash: map[[sha256.Size]byte]ticket{}, perClient: map[string]int{}}
}

// Put implements TicketStore.
func (ts *tickets) Put(_ context.Context, hash [sha256.Size]byte, c Claims, expires time.Time) error {
	now := ts.now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if now.Sub(ts.lastPrune) >= ticketPruneEvery || len(ts.byHash) >= maxTickets {
		ts.pruneLocked(now)
	}
	if len(ts.byHash) >= maxTickets {
		return &api.Error{Code: api.EUNAVAILABLE, Detail: "too many outstanding stream tickets", RetryAfter: TicketTTL}
	}
	if ts.perClient[c.ClientID] >= MaxTicketsPerClient {
		return &api.Error{Code: api.ERATELIMITED, Detail: "too many outstanding stream tickets for this client", RetryAfter: TicketTTL}
	}
	ts.byHash[hash] = ticket{claims: c, expires: expires}
	ts.perClient[c.ClientID]++
	return nil
}

// Get implements TicketStore: the lookup and the removal under one lock.
func (ts *tickets) Get(_ context.Context, hash [sha256.Size]byte, spend bool) (Claims, time.Time, bool, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tk, ok := ts.byHash[hash]
	if ok && spend {
		ts.removeLocked(hash, tk)
	}
	return tk.claims, tk.expires, ok, nil
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
	}
	if err := t.checkRevoked(c); err != nil {
		return "", 0, err
	}
	expires := now.Add(TicketTTL)
	if c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt
	}
	secret, err := keys.NewToken(TicketPrefix)
	if err != nil {
		return "", 0, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), ticketTimeout)
	defer cancel()
	if err := t.tickets.Put(ctx, sha256.Sum256([]byte(secret)), c, expires); err != nil {
		return "", 0, ticketStoreErr(err)
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), ticketTimeout)
	defer cancel()
	claims, expires, ok, err := t.tickets.Get(ctx, sha256.Sum256([]byte(s)), spend)
	if err != nil {
		return Claims{}, ticketStoreErr(err)
	}
	now := t.cfg.Now()
	switch {
	case !ok || !now.Before(expires):
		return Claims{}, unauthorized(detailTicket)
	}
	if err := t.checkRevoked(claims); err != nil {
		return Claims{}, err
	}
	return claims, nil
}

// ticketStoreErr passes the store's refusals (api errors) on, and turns
// any other failure into EUNAVAILABLE: a ticket is never let through.
func ticketStoreErr(err error) error {
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	return &api.Error{Code: api.EUNAVAILABLE, Detail: "the gateway's shared state is unreachable; try again shortly", RetryAfter: unavailableRetry}
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
