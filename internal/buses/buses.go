// Package buses spreads sessions over several assistants' messagebuses: it
// reads the list of bus URLs, orders the buses for each session by
// rendezvous hashing of its session id, and picks the first bus of that
// order whose link is up.
//
// Rendezvous (highest random weight) hashing scores every bus for a session
// by a hash of the bus's key and the session id, and ranks the buses by
// score. A session keeps its bus as long as that bus is configured and up;
// adding a bus moves only the sessions that now rank it first, removing one
// moves only the sessions it had. Every gateway given the same list (in any
// order) ranks a session's buses the same, without sharing any state.
package buses

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ParseList reads GATEWAY_BUS_URL's comma-separated list of bus URLs. Every
// entry must be a ws:// or wss:// URL with a host, and no two entries may
// name the same bus. The errors name the entry by its position and, with any
// user information removed, its URL.
func ParseList(list string) ([]string, error) {
	entries := strings.Split(list, ",")
	seen := make(map[string]int, len(entries))
	out := make([]string, 0, len(entries))
	var errs []error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		pos := i + 1
		if e == "" {
			errs = append(errs, fmt.Errorf("GATEWAY_BUS_URL: entry %d is empty", pos))
			continue
		}
		key, err := Key(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("GATEWAY_BUS_URL: entry %d (%s): %w", pos, Redact(e), err))
			continue
		}
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("GATEWAY_BUS_URL: entry %d (%s) names the same bus as entry %d", pos, Redact(e), first))
			continue
		}
		seen[key] = pos
		out = append(out, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Key is the bus a URL names, as rendezvous hashing knows it: scheme, host
// in lower case, port (the scheme's default when none is given) and path.
// User information is left out, so neither a password nor a changed one
// moves sessions.
func Key(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "ws" && scheme != "wss" {
		return "", errors.New("not a ws:// or wss:// URL")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("no host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[scheme]
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", errors.New("bad port")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path, nil
}

// Redact is raw without its user information, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// Score is bus key's rendezvous weight for a session: the bus with the
// highest score is the session's first choice.
func Score(key, sessionID string) uint64 {
	// FNV-1a over key, a zero byte and the session id.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h *= prime // the zero byte
	for i := 0; i < len(sessionID); i++ {
		h = (h ^ uint64(sessionID[i])) * prime
	}
	return mix(h)
}

// mix is SplitMix64's finaliser: FNV's low bits alone spread poorly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Order is the session's order of the buses with the given keys: their
// positions in keys, first choice first.
func Order(keys []string, sessionID string) []int {
	type ranked struct {
		pos   int
		score uint64
	}
	r := make([]ranked, len(keys))
	for i, k := range keys {
		r[i] = ranked{i, Score(k, sessionID)}
	}
	// Few buses: an insertion sort, highest score first; ties (never seen
	// with 64-bit scores) go to the key that sorts first.
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && better(r[j].score, keys[r[j].pos], r[j-1].score, keys[r[j-1].pos]); j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	out := make([]int, len(r))
	for i, x := range r {
		out[i] = x.pos
	}
	return out
}

func better(s1 uint64, k1 string, s2 uint64, k2 string) bool {
	return s1 > s2 || (s1 == s2 && k1 < k2)
}

// Pick is the position of the first bus in the session's order for which up
// is true, or -1 when none is. It allocates nothing.
func Pick(keys []string, sessionID string, up func(pos int) bool) int {
	best, bestScore := -1, uint64(0)
	for i, k := range keys {
		if !up(i) {
			continue
		}
		if s := Score(k, sessionID); best < 0 || better(s, k, bestScore, keys[best]) {
			best, bestScore = i, s
		}
	}
	return best
}
