package busclient

import (
	"hash/maphash"
	"time"
)

// Echo-filter bounds: how many sent frames are remembered, and for how long.
// The bus echoes a frame within milliseconds; a minute is generous, and 4096
// frames is four times the default writer queue.
const (
	echoMaxEntries = 4096
	echoTTL        = time.Minute
)

// echoFilter remembers the frames this client wrote on one link so that the
// reader can drop their echoes.
//
// Why: the messagebus relays every frame to every peer, the sender included
// (docs/bus.md, "Transport"), and the envelope has no message id, so the only
// reliable way to recognise our own frame is by its exact bytes. The filter
// keeps a 64-bit hash of each payload (seeded per filter with hash/maphash, so
// a peer cannot craft collisions) in a map of counts plus a FIFO for
// eviction. On receipt an identical payload consumes one entry and is dropped;
// another peer's frame, even one with the same type and data, differs in its
// bytes (context, source, member order) and is delivered.
//
// If another peer sends byte-identical JSON while ours is in flight, one copy
// is delivered instead of two; the copies are indistinguishable anyway.
// Entries expire after echoTTL and the FIFO holds at most echoMaxEntries, so a
// bus that does not echo cannot make the filter grow or swallow frames
// forever. A filter belongs to one link: echoes never cross a reconnect.
//
// It is used by exactly two goroutines (the link's writer adds, its reader
// consumes), so callers serialise access with a mutex (see link).
type echoFilter struct {
	seed maphash.Seed
	base time.Time // monotonic origin of echoEntry.at
	max  int
	ttl  time.Duration
	// live counts, per hash, the remembered frames whose echo has not come.
	live map[uint64]int
	// consumed counts, per hash, the entries still in the FIFO whose echo
	// already came. Echoes arrive in send order, so the consumed entries of a
	// hash are always its oldest ones, the first to leave the FIFO.
	consumed map[uint64]int
	fifo     []echoEntry // ring buffer of capacity max
	head, n  int
}

type echoEntry struct {
	hash uint64
	at   time.Duration // since echoFilter.base
}

func newEchoFilter(max int, ttl time.Duration) *echoFilter {
	return &echoFilter{
		seed:     maphash.MakeSeed(),
		base:     time.Now(),
		max:      max,
		ttl:      ttl,
		live:     make(map[uint64]int),
		consumed: make(map[uint64]int),
	}
}

// add remembers one payload about to be written.
func (e *echoFilter) add(payload []byte, now time.Time) {
	e.expire(now)
	if e.n == e.max {
		e.evict()
	}
	if e.fifo == nil {
		e.fifo = make([]echoEntry, e.max) // only once this link sends
	}
	h := maphash.Bytes(e.seed, payload)
	e.fifo[(e.head+e.n)%e.max] = echoEntry{hash: h, at: now.Sub(e.base)}
	e.n++
	e.live[h]++
}

// consume reports whether payload is the echo of a remembered frame, and if
// so forgets one instance of it.
func (e *echoFilter) consume(payload []byte, now time.Time) bool {
	e.expire(now)
	if e.n == 0 {
		return false
	}
	h := maphash.Bytes(e.seed, payload)
	c := e.live[h]
	if c == 0 {
		return false
	}
	if c == 1 {
		delete(e.live, h)
	} else {
		e.live[h] = c - 1
	}
	e.consumed[h]++
	return true
}

// pending returns how many remembered frames still wait for their echo.
func (e *echoFilter) pending() int {
	n := 0
	for _, c := range e.live {
		n += c
	}
	return n
}

func (e *echoFilter) expire(now time.Time) {
	at := now.Sub(e.base)
	for e.n > 0 && at-e.fifo[e.head].at >= e.ttl {
		e.evict()
	}
}

// evict drops the oldest FIFO entry: an already-echoed instance of its hash if
// there is one, else a live one.
func (e *echoFilter) evict() {
	h := e.fifo[e.head].hash
	e.fifo[e.head] = echoEntry{}
	e.head = (e.head + 1) % e.max
	e.n--
	if c := e.consumed[h]; c > 0 {
		if c == 1 {
			delete(e.consumed, h)
		} else {
			e.consumed[h] = c - 1
		}
		return
	}
	if c := e.live[h]; c <= 1 {
		delete(e.live, h)
	} else {
		e.live[h] = c - 1
	}
}
