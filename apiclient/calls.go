package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Say puts an utterance on the assistant's bus (POST /v1/utterances) and
// returns once the gateway accepted it (202); the replies arrive on the
// client's stream, tagged with the returned id. A protected intent is a 403
// *Error: see PasswordIntent, and send req.Password.
func (c *Client) Say(ctx context.Context, req api.UtteranceRequest) (api.UtteranceAccepted, error) {
	var out api.UtteranceAccepted
	if err := c.call(ctx, http.MethodPost, "/v1/utterances", nil, req, &out, http.StatusAccepted, c.cfg.RequestTimeout); err != nil {
		return api.UtteranceAccepted{}, err
	}
	return out, nil
}

// SayAndWait says an utterance and waits up to wait for its handling to end
// (POST /v1/utterances?wait=): the answer holds the status and what the
// assistant said. Status "accepted" means the wait ran out first.
func (c *Client) SayAndWait(ctx context.Context, req api.UtteranceRequest, wait time.Duration) (api.UtteranceResult, error) {
	if wait <= 0 {
		return api.UtteranceResult{}, errors.New("apiclient: SayAndWait needs a positive wait")
	}
	var out api.UtteranceResult
	q := url.Values{"wait": {wait.String()}}
	if err := c.call(ctx, http.MethodPost, "/v1/utterances", q, req, &out, http.StatusOK, c.cfg.RequestTimeout+wait); err != nil {
		return api.UtteranceResult{}, err
	}
	return out, nil
}

// Me returns the client's profile (GET /v1/clients/me).
func (c *Client) Me(ctx context.Context) (api.ClientProfile, error) {
	var out api.ClientProfile
	err := c.call(ctx, http.MethodGet, "/v1/clients/me", nil, nil, &out, http.StatusOK, c.cfg.RequestTimeout)
	return out, err
}

// SetNames sets the client's own name and aliases (PUT /v1/clients/me/names);
// an alias taken by another client is a 409 *Error.
func (c *Client) SetNames(ctx context.Context, req api.NamesRequest) (api.ClientProfile, error) {
	var out api.ClientProfile
	err := c.call(ctx, http.MethodPut, "/v1/clients/me/names", nil, req, &out, http.StatusOK, c.cfg.RequestTimeout)
	return out, err
}

// Ticket returns a single-use stream ticket valid for 60 s
// (POST /v1/sessions/current/ticket), for an EventSource that cannot send a
// header.
func (c *Client) Ticket(ctx context.Context) (api.TicketResponse, error) {
	var out api.TicketResponse
	err := c.call(ctx, http.MethodPost, "/v1/sessions/current/ticket", nil, nil, &out, http.StatusCreated, c.cfg.RequestTimeout)
	return out, err
}

// Logout revokes the current token (DELETE /v1/sessions/current), which also
// ends the session's streams; with no session it does nothing. The next call
// that needs a token logs in again.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	err := c.send(ctx, http.MethodDelete, "/v1/sessions/current", s.resp.Token, nil, nil, nil, http.StatusNoContent)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		return nil // already expired or revoked
	}
	if err != nil {
		return fmt.Errorf("apiclient: log out: %w", err)
	}
	return nil
}
