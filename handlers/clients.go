package handlers

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
)

// sessionGone turns "no such client" for the caller's own session into a
// 401: the client was deleted after its token was checked.
func sessionGone(err error) error {
	if api.ErrorCode(err) == api.ENOTFOUND {
		return api.Errorf(api.EUNAUTHORIZED, "the client no longer exists")
	}
	return err
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	id, _ := api.IdentityFrom(r.Context())
	p, err := s.deps.Clients.Profile(r.Context(), id.ClientID)
	if err != nil {
		return sessionGone(err)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleSetNames(w http.ResponseWriter, r *http.Request) error {
	var req api.NamesRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id, _ := api.IdentityFrom(r.Context())
	p, err := s.deps.Clients.SetNames(r.Context(), id.ClientID, req)
	if err != nil {
		return sessionGone(err)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleListClients(w http.ResponseWriter, r *http.Request) error {
	list, err := s.deps.Clients.List(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.AdminClient{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleCreateClient(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateClientRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := s.deps.Clients.Create(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/admin/clients/"+c.ID)
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) handleRenameClient(w http.ResponseWriter, r *http.Request) error {
	var req api.NamesRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := s.deps.Clients.Rename(r.Context(), chi.URLParam(r, "id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleDeleteClient(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Clients.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleRotateKey(w http.ResponseWriter, r *http.Request) error {
	c, err := s.deps.Clients.RotateKey(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}
