package busclient

import (
	"sync"
	"sync/atomic"
)

// listeners is a copy-on-write list of callbacks: added and removed under a
// lock, read without one, so that the reader goroutine, which reads the list
// for every frame, never waits on Subscribe.
type listeners[F any] struct {
	mu     sync.Mutex
	list   atomic.Pointer[[]listener[F]]
	nextID uint64
}

type listener[F any] struct {
	id uint64
	fn F
}

// add appends fn and returns the function that removes it (once; a call
// being made at that moment may still reach fn).
func (ls *listeners[F]) add(fn F) (cancel func()) {
	ls.mu.Lock()
	ls.nextID++
	id := ls.nextID
	old := ls.load()
	next := make([]listener[F], len(old), len(old)+1)
	copy(next, old)
	next = append(next, listener[F]{id: id, fn: fn})
	ls.list.Store(&next)
	ls.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ls.mu.Lock()
			defer ls.mu.Unlock()
			old := ls.load()
			next := make([]listener[F], 0, len(old))
			for _, l := range old {
				if l.id != id {
					next = append(next, l)
				}
			}
			ls.list.Store(&next)
		})
	}
}

// load returns the current list (nil before the first add); do not modify
// it.
func (ls *listeners[F]) load() []listener[F] {
	if p := ls.list.Load(); p != nil {
		return *p
	}
	return nil
}
