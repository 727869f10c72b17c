package handlers

import (
	"net/http"
	"net/netip"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
	"github.com/ovosgw/gateway/middleware"
)

// pathParam returns a URL-escaped path parameter, unescaped: a CIDR such as
// 203.0.113.0%2F24 or an intent pattern with ':' and '*' travels escaped.
func pathParam(r *http.Request, name string) (string, error) {
	v, err := url.PathUnescape(chi.URLParam(r, name))
	if err != nil || v == "" {
		return "", api.Errorf(api.EINVALID, "bad %s in the path", name)
	}
	return v, nil
}

func (s *Server) handleListBlacklist(w http.ResponseWriter, r *http.Request) error {
	list, err := s.deps.Blacklist.List(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.BlacklistEntry{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleAddBlacklist(w http.ResponseWriter, r *http.Request) error {
	var req api.BlacklistRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if addr := middleware.ClientAddr(r); !req.Confirm && covers(req.CIDR, addr) {
		return api.Errorf(api.ECONFLICT, "%s covers your own address %s: you would be blocked from everything but the health checks and the admin routes (send confirm: true to add it anyway)", req.CIDR, addr)
	}
	e, err := s.deps.Blacklist.Add(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) handleRemoveBlacklist(w http.ResponseWriter, r *http.Request) error {
	entry, err := pathParam(r, "entry")
	if err != nil {
		return err
	}
	if err := s.deps.Blacklist.Remove(r.Context(), entry); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleListProtected(w http.ResponseWriter, r *http.Request) error {
	list, err := s.deps.ProtectedIntents.List(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.ProtectedIntent{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleProtect(w http.ResponseWriter, r *http.Request) error {
	pattern, err := pathParam(r, "pattern")
	if err != nil {
		return err
	}
	var req api.ProtectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Password == "" {
		return api.Errorf(api.EINVALID, "password is required")
	}
	p, err := s.deps.ProtectedIntents.Protect(r.Context(), pattern, req.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleUnprotect(w http.ResponseWriter, r *http.Request) error {
	pattern, err := pathParam(r, "pattern")
	if err != nil {
		return err
	}
	if err := s.deps.ProtectedIntents.Unprotect(r.Context(), pattern); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// covers reports whether the range r (or one address) contains addr; an
// entry that does not parse is left to the blacklist to refuse.
func covers(r string, addr netip.Addr) bool {
	p, err := cidr.Parse(r)
	return err == nil && addr.IsValid() && p.Contains(addr.Unmap().WithZone(""))
}
