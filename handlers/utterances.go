package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/middleware"
)

// Limits on what a client may say.
const (
	// IntentPasswordHeader may carry a protected intent's password instead of
	// the body's "password" member.
	IntentPasswordHeader = api.IntentPasswordHeader
)

// handleUtterance puts an utterance on the bus: 202 at once, or with ?wait=
// 200 with what the assistant said once handling ends.
func (s *Server) handleUtterance(w http.ResponseWriter, r *http.Request) error {
	wait, err := s.parseWait(r)
	if err != nil {
		return err
	}
	var req api.UtteranceRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	req.Utterance = strings.TrimSpace(req.Utterance)
	if err := api.CheckUtterance(req); err != nil {
		return err
	}
	if req.Password == "" {
		req.Password = api.Secret(r.Header.Get(IntentPasswordHeader))
	}
	id, _ := api.IdentityFrom(r.Context())
	res, err := s.deps.Utterances.Say(r.Context(), id, middleware.ClientAddr(r), req, wait)
	if err != nil {
		return sessionGone(err)
	}
	if wait <= 0 {
		return writeJSON(w, http.StatusAccepted, api.UtteranceAccepted{
			ID: res.ID, ClientID: res.ClientID, SessionID: res.SessionID, Status: api.StatusAccepted,
		})
	}
	if res.Speech == nil {
		res.Speech = []api.Speech{}
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) parseWait(r *http.Request) (time.Duration, error) {
	q := r.URL.Query()
	if !q.Has("wait") {
		return 0, nil
	}
	d, err := waitDuration(q.Get("wait"))
	if err != nil || d <= 0 || d > s.cfg.MaxWait {
		return 0, api.Errorf(api.EINVALID, "wait must be a number of seconds or a duration such as 10 or 10s, above 0 and at most %s", api.ShortDuration(s.cfg.MaxWait))
	}
	return d, nil
}

// waitDuration reads ?wait=: a Go duration ("10s", "1m30s") or bare
// seconds ("10", "2.5"), as curl users type it.
func waitDuration(v string) (time.Duration, error) {
	if v != "" && strings.Trim(v, "0123456789.") == "" && strings.Count(v, ".") <= 1 {
		v += "s"
	}
	return time.ParseDuration(v)
}
