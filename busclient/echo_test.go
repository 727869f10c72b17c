package busclient

import (
	"bytes"
	"testing"
	"time"
)

// echoModel is the obvious, slow version of echoFilter: a FIFO of payloads,
// each marked once its echo came.
type echoModel struct {
	max     int
	entries []modelEntry
}

type modelEntry struct {
	payload  []byte
	at       time.Time
	consumed bool
}

func (m *echoModel) expire(now time.Time, ttl time.Duration) {
	for len(m.entries) > 0 && now.Sub(m.entries[0].at) >= ttl {
		m.entries = m.entries[1:]
	}
}

func (m *echoModel) add(p []byte, now time.Time, ttl time.Duration) {
	m.expire(now, ttl)
	if len(m.entries) == m.max {
		m.entries = m.entries[1:]
	}
	m.entries = append(m.entries, modelEntry{payload: bytes.Clone(p), at: now})
}

func (m *echoModel) consume(p []byte, now time.Time, ttl time.Duration) bool {
	m.expire(now, ttl)
	for i := range m.entries {
		if !m.entries[i].consumed && bytes.Equal(m.entries[i].payload, p) {
			m.entries[i].consumed = true
			return true
		}
	}
	return false
}

func (m *echoModel) pending() int {
	n := 0
	for _, e := range m.entries {
		if !e.consumed {
			n++
		}
	}
	return n
}

func TestEchoFilter(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		max  int
		// ops: "+x" adds x, "-x" consumes x expecting true, "?x" expecting
		// false, ">" advances the clock past the TTL.
		ops []string
	}{
		{"echo consumed once", 8, []string{"+a", "-a", "?a"}},
		{"two sends, two echoes", 8, []string{"+a", "+a", "-a", "-a", "?a"}},
		{"other payload delivered", 8, []string{"+a", "?b", "-a"}},
		{"nothing sent", 8, []string{"?a"}},
		{"oldest evicted when full", 2, []string{"+a", "+b", "+c", "?a", "-b", "-c"}},
		{"eviction keeps unconsumed duplicate", 3, []string{"+a", "+a", "-a", "+b", "+c", "-a"}},
		{"eviction drops consumed first", 2, []string{"+a", "-a", "+a", "+b", "-a", "?a"}},
		{"expired", 8, []string{"+a", ">", "?a"}},
		{"expired then fresh", 8, []string{"+a", ">", "+a", "-a", "?a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEchoFilter(tc.max, time.Minute)
			at := now
			for i, op := range tc.ops {
				p := []byte(op[1:])
				switch op[0] {
				case '+':
					f.add(p, at)
				case '-', '?':
					if got, want := f.consume(p, at), op[0] == '-'; got != want {
						t.Fatalf("op %d %q: consume = %v", i, op, got)
					}
				case '>':
					at = at.Add(time.Minute)
				}
				at = at.Add(time.Millisecond)
			}
		})
	}
}

// FuzzEchoFilter drives the filter and the model with the same random
// operations: they must agree on every answer, and the filter must stay
// bounded.
func FuzzEchoFilter(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 2, 1, 3, 3, 3, 200, 0})
	f.Add([]byte("aaaa\x80\x81\x82\x83bbbb"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const max, ttl = 4, time.Minute
		fl := newEchoFilter(max, ttl)
		m := &echoModel{max: max}
		at := fl.base
		for i, op := range ops {
			p := []byte{op & 0x07} // few distinct payloads: many duplicates
			switch {
			case op&0xc0 == 0xc0:
				at = at.Add(ttl / 3)
			case op&0x80 != 0:
				if got, want := fl.consume(p, at), m.consume(p, at, ttl); got != want {
					t.Fatalf("op %d: consume(%v) = %v, model says %v", i, p, got, want)
				}
			default:
				fl.add(p, at)
				m.add(p, at, ttl)
			}
			if fl.n > max || fl.pending() > fl.n {
				t.Fatalf("op %d: filter holds %d entries, %d pending", i, fl.n, fl.pending())
			}
		}
		fl.expire(at)
		m.expire(at, ttl)
		if fl.pending() != m.pending() || fl.n != len(m.entries) {
			t.Fatalf("filter %d/%d, model %d/%d", fl.pending(), fl.n, m.pending(), len(m.entries))
		}
	})
}
