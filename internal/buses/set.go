package buses

import (
	"errors"
	"strconv"
	"strings"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
)

// Link is one bus link as a Set reads it: the bus client.
type Link interface {
	Connected() bool
	Status() busclient.Status
	Stats() busclient.Stats
}

// Set is the configured buses and their links, in configured order. It is
// safe for concurrent use.
type Set struct {
	keys  []string
	urls  []string // without user information
	links []Link
	// inFlight, when set, counts the utterances in flight on a bus.
	inFlight func(pos int) int64
}

// NewSet returns the set of links, one per URL, in the same order. The URLs
// are those ParseList returned (the embedded bus passes its own).
func NewSet(urls []string, links []Link) (*Set, error) {
	if len(urls) == 0 || len(urls) != len(links) {
		return nil, errors.New("buses: one link per URL, at least one")
	}
	s := &Set{links: links}
	for _, u := range urls {
		k, err := Key(u)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
		s.urls = append(s.urls, Redact(u))
	}
	return s, nil
}

// CountInFlight makes BusInfo report each bus's utterances in flight, as f
// counts them (the bridge's BusStats). Call it before the set is used.
func (s *Set) CountInFlight(f func(pos int) int64) { s.inFlight = f }

// Len is the number of buses.
func (s *Set) Len() int { return len(s.links) }

// Label names the bus at pos in logs and metrics: its position in the list,
// from "1". It is never anything a client sent, so a metric labelled with it
// has as many series as there are buses.
func Label(pos int) string { return strconv.Itoa(pos + 1) }

// Pick is the position of the bus the session's next message goes to: the
// first bus of the session's order whose link is up, or -1 when none is.
// A session therefore returns to its first choice as soon as that bus is
// back.
func (s *Set) Pick(sessionID string) int {
	if len(s.links) == 1 {
		if s.links[0].Connected() {
			return 0
		}
		return -1
	}
	return Pick(s.keys, sessionID, func(i int) bool { return s.links[i].Connected() })
}

// Order is the session's order of the buses, first choice first.
func (s *Set) Order(sessionID string) []int { return Order(s.keys, sessionID) }

// States lists every bus with its state, in configured order.
func (s *Set) States() []api.BusState {
	out := make([]api.BusState, len(s.links))
	for i, l := range s.links {
		out[i] = api.BusState{Bus: Label(i), State: state(l.Connected())}
	}
	return out
}

// Infos lists every bus as the admin sees it, in configured order.
func (s *Set) Infos() []api.BusInfo {
	out := make([]api.BusInfo, len(s.links))
	for i, l := range s.links {
		st := l.Status()
		info := api.BusInfo{
			BusState:   api.BusState{Bus: Label(i), State: state(st.Connected)},
			URL:        s.urls[i],
			Reconnects: l.Stats().Reconnects,
			LastError:  st.LastError,
		}
		if !st.Since.IsZero() {
			since := st.Since.UTC()
			info.Since = &since
		}
		if s.inFlight != nil {
			info.InFlight = s.inFlight(i)
		}
		out[i] = info
	}
	return out
}

// Ready is true while at least one bus is up; else the reason names every
// bus and its last failure.
func (s *Set) Ready() (bool, string) {
	var down []string
	for i, l := range s.links {
		st := l.Status()
		if st.Connected {
			return true, ""
		}
		reason := "bus link down"
		if len(s.links) > 1 {
			reason = "bus " + Label(i) + " link down"
		}
		if st.LastError != "" {
			reason += ": " + st.LastError
		}
		down = append(down, reason)
	}
	return false, strings.Join(down, "; ")
}

func state(up bool) string {
	if up {
		return api.BusUp
	}
	return api.BusDown
}
