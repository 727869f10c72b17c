package handlers

import (
	"net/http"
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
	resp, err := s.deps.Sessions.Login(r.Context(), req, middleware.ClientAddr(r))
	if err != nil {
		if s.cfg.AuthFailed != nil && api.ErrorCode(err) == api.EUNAUTHORIZED {
			s.cfg.AuthFailed(r, err)
		}
		return err
	}
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
	return writeJSON(w, http.StatusCreated, resp)
}

// handleLogout revokes the session's token at once and ends its streams.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	id, _ := middleware.IdentityFrom(r.Context())
	if err := s.deps.Sessions.Logout(r.Context(), id); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/v1/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTicket issues a single-use stream ticket.
func (s *Server) handleTicket(w http.ResponseWriter, r *http.Request) error {
	id, _ := middleware.IdentityFrom(r.Context())
	t, err := s.deps.Sessions.Ticket(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}
