package handlers

import (
	"net/http"

	"github.com/ovosgw/gateway/api"
)

type healthBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// handleHealthz answers 200 while the process runs.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
}

// handleReadyz answers 200 while the bus link is up, else 503 with the reason.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ok, reason := s.deps.Ready.Ready()
	if !ok {
		return &api.Error{Code: api.EUNAVAILABLE, Detail: "not ready: " + reason}
	}
	return writeJSON(w, http.StatusOK, healthBody{Status: "ready"})
}

// handleOpenAPI serves this API's OpenAPI document.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	if len(s.cfg.OpenAPI) == 0 {
		return api.Errorf(api.ENOTFOUND, "no OpenAPI document")
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(s.cfg.OpenAPI)
	return nil
}
