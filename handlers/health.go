package handlers

import (
	"net/http"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
)

type healthBody struct {
	Status string         `json:"status"`
	Reason string         `json:"reason,omitempty"`
	Buses  []api.BusState `json:"buses,omitempty"`
	Redis  *api.PartState `json:"redis,omitempty"`
}

// notReady is /readyz's 503: the problem, every bus with its state, and
// the shared state's (Redis) when replicas share one.
type notReady struct {
	api.Problem
	Buses []api.BusState `json:"buses"`
	Redis *api.PartState `json:"redis,omitempty"`
}

// SharedReadiness is Readiness that also depends on the state replicas
// share (Redis): SharedState says how it was when Ready last looked.
type SharedReadiness interface {
	Readiness
	SharedState() api.PartState
}

// handleHealthz answers 200 while the process runs.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
}

// handleReadyz answers 200 while at least one bus link is up (and the
// shared state is reachable, when replicas share one), else 503 with the
// reason; both name every part with its state.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ok, reason := s.deps.Ready.Ready()
	states := s.deps.Ready.States()
	var shared *api.PartState
	if sr, is := s.deps.Ready.(SharedReadiness); is {
		st := sr.SharedState()
		shared = &st
	}
	if !ok {
		problem.Write(w, r.WithContext(problem.WithShape(r.Context(), func(p api.Problem, _ error) any {
			return notReady{Problem: p, Buses: states, Redis: shared}
		})), &api.Error{Code: api.EUNAVAILABLE, Detail: "not ready: " + reason})
		return nil
	}
	return writeJSON(w, http.StatusOK, healthBody{Status: "ready", Buses: states, Redis: shared})
}

// handleListBuses lists the assistants' buses for the admin (read-only).
func (s *Server) handleListBuses(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.deps.Ready.Infos())
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
