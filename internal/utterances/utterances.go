// Package utterances is what happens when a client speaks: the gate for
// protected intents runs first, then the bus bridge emits the utterance, and
// with a wait the result is collected.
package utterances

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/bridge"
)

// Names looks up a client's display name, which goes on the bus as
// context.client_name.
type Names interface {
	Profile(ctx context.Context, id string) (api.ClientProfile, error)
}

// Gate decides whether an utterance may reach the bus: it returns what to
// list in the session's blacklisted_intents and blacklisted_skills, or an
// *api.Error (password-required, password-invalid, unavailable). A nil Gate
// lets everything through.
type Gate interface {
	Check(ctx context.Context, u bridge.Utterance, password api.Secret, addr netip.Addr) (bridge.Blacklist, error)
}

// Bridge is the bus bridge.
type Bridge interface {
	Send(ctx context.Context, u bridge.Utterance, collect bool) (*bridge.Pending, error)
}

// Service implements POST /v1/utterances.
type Service struct {
	names  Names
	gate   Gate
	bridge Bridge
	lang   string
}

// New builds the service; gate may be nil. defaultLang is used when the
// client names none.
func New(names Names, gate Gate, b Bridge, defaultLang string) (*Service, error) {
	if names == nil || b == nil {
		return nil, errors.New("utterances: names and bridge are required")
	}
	if defaultLang == "" {
		defaultLang = api.DefaultLang
	}
	return &Service{names: names, gate: gate, bridge: b, lang: defaultLang}, nil
}

// Say puts the client's utterance on the bus. With wait > 0 it returns what
// the assistant said once handling ends, it asks a follow-up question, or the
// wait runs out (status "accepted": the done event still comes on the stream).
func (s *Service) Say(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest, wait time.Duration) (api.UtteranceResult, error) {
	pending, err := s.send(ctx, id, addr, r, wait > 0)
	if err != nil {
		return api.UtteranceResult{}, err
	}
	res := api.UtteranceResult{ID: pending.ID(), ClientID: id.ClientID, SessionID: id.SessionID, Status: api.StatusAccepted}
	if wait <= 0 {
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out := pending.Wait(wctx)
	out.ID, out.ClientID, out.SessionID = res.ID, res.ClientID, res.SessionID
	return out, nil
}

// Start puts the client's utterance on the bus exactly as Say does, and
// returns it while the assistant handles it, collecting what it says: the
// dialects (OpenAI's chat completions, Home Assistant's conversation API)
// follow it with Pending.Progress or Pending.Wait.
func (s *Service) Start(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest) (*bridge.Pending, error) {
	return s.send(ctx, id, addr, r, true)
}

// send is the one path of every utterance: the client's name, the intent
// gate, then the bridge.
func (s *Service) send(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest, collect bool) (*bridge.Pending, error) {
	if id.ClientID == "" || id.SessionID == "" {
		return nil, api.Errorf(api.EFORBIDDEN, "only a client session can speak")
	}
	p, err := s.names.Profile(ctx, id.ClientID)
	if err != nil {
		return nil, err
	}
	lang := r.Lang
	if lang == "" {
		lang = s.lang
	}
	u := bridge.Utterance{ClientID: id.ClientID, ClientName: p.Name, SessionID: id.SessionID, Text: r.Utterance, Lang: lang}
	if s.gate != nil {
		bl, err := s.gate.Check(ctx, u, r.Password, addr)
		if err != nil {
			return nil, err
		}
		u.BlacklistedIntents, u.BlacklistedSkills = bl.Intents, bl.Skills
	}
	return s.bridge.Send(ctx, u, collect)
}

// ConversationSession is the OVOS session id of a named conversation of a
// client: the same for the same client, kind and name, different for any
// other client (so that one client can never name another's session), and
// telling nothing of the name on the bus. kind keeps the namespaces of
// different dialects apart ("openai" for the OpenAI user field, "hass" for
// Home Assistant's conversation_id).
func ConversationSession(clientID, kind, name string) string {
	h := sha256.New()
	for _, part := range []string{"ovos-gateway conversation", clientID, kind, name} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return "conv-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
