package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/middleware"
)

// handleLogin creates a session: a token in the body and, for the browser,
// the same token in an HttpOnly, SameSite=Strict cookie scoped to /v1/ (the
// stream reads it; state-changing routes never accept it alone).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req api.SessionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ClientID == "" || req.AccessKey == "" {
		return api.Errorf(api.EINVALID, "client_id and access_key are required")
	}
	// A refused login is counted and held against the address by the
	// sessions themselves (they know it is one).
	resp, err := s.deps.Sessions.Login(r.Context(), req, middleware.ClientAddr(r))
	if err != nil {
		return err
	}
	s.setSessionCookie(w, resp)
	return writeJSON(w, http.StatusCreated, resp)
}

// setSessionCookie gives the browser the session's token as an HttpOnly,
// SameSite=Strict cookie scoped to /v1/, expiring with the token.
func (s *Server) setSessionCookie(w http.ResponseWriter, resp api.SessionResponse) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    resp.Token.Reveal(),
		Path:     "/v1/",
		Expires:  resp.ExpiresAt,
		MaxAge:   int(time.Until(resp.ExpiresAt) / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
}

// handleRefresh gives the session a new token valid for a full TTL and
// revokes the one it was asked with (Sessions.Refresh): the console calls it
// when the page loads, to resume the session its cookie names without ever
// keeping the token in web storage, and again before the token expires.
// It takes a Bearer token, or the session cookie from the gateway's own
// origin only (refreshCookieIdentity).
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	id, err := s.refreshIdentity(r)
	if err != nil {
		if s.cfg.AuthFailed != nil && api.ErrorCode(err) == api.EUNAUTHORIZED {
			s.cfg.AuthFailed(r, err)
		}
		return err
	}
	ctx := middleware.SettleIdentity(r.Context(), id)
	resp, err := s.deps.Sessions.Refresh(ctx, id)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, resp)
	return writeJSON(w, http.StatusOK, resp)
}

// refreshIdentity authenticates a refresh: a Bearer token, else the session
// cookie. The cookie is SameSite=Strict, so no other site's page sends it;
// a refresh by cookie must also come from the gateway's own origin
// (Sec-Fetch-Site, or Origin where a browser sends no Sec-Fetch-Site), so
// that a page on a sibling host of the same site cannot rotate a session's
// token under the console's feet. Clients without a browser send their
// token.
func (s *Server) refreshIdentity(r *http.Request) (api.Identity, error) {
	if tok, ok := middleware.BearerToken(r); ok {
		return s.deps.Sessions.VerifySession(r.Context(), tok)
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return api.Identity{}, api.Errorf(api.EUNAUTHORIZED, "a Bearer token or the session cookie is required")
	}
	if !sameOrigin(r) {
		return api.Identity{}, api.Errorf(api.EFORBIDDEN, "a refresh by session cookie must come from the gateway's own pages")
	}
	return s.deps.Sessions.VerifySession(r.Context(), c.Value)
}

// sameOrigin says whether a browser sent r from a page of r's own origin:
// Sec-Fetch-Site says so where the browser sends it (it cannot be set by a
// page), else the Origin header must name r's host.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
		o := r.Header.Get("Origin")
		if o == "" || o == "null" {
			return false
		}
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	default:
		return false
	}
}

// handleLogout revokes the session's token at once and ends its streams.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	id, _ := api.IdentityFrom(r.Context())
	if err := s.deps.Sessions.Logout(r.Context(), id); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/v1/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTicket issues a single-use stream ticket.
func (s *Server) handleTicket(w http.ResponseWriter, r *http.Request) error {
	id, _ := api.IdentityFrom(r.Context())
	t, err := s.deps.Sessions.Ticket(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}
