// Package wsconn holds what the bus client and the embedded bus do the same
// way on a gorilla/websocket connection: moving its deadlines lazily, and
// reading a message into a buffer of its own size.
package wsconn

import (
	"bytes"
	"time"

	"github.com/gorilla/websocket"
)

// Deadline moves a connection deadline forward lazily. Every frame would
// move it by a few microseconds, and each move costs a timer update (over an
// in-memory pipe, a new timer), so it is moved only once the time it was
// last set has aged by more than a sixteenth of the wait: it is then never
// more than that fraction early. It belongs to one goroutine (or to
// whoever holds the lock its writes are under).
type Deadline struct {
	Set  func(time.Time) error // SetReadDeadline or SetWriteDeadline
	Wait time.Duration
	at   time.Time // when it was last set
}

// Extend makes the deadline about Wait from now.
func (d *Deadline) Extend() error {
	now := time.Now()
	if !d.at.IsZero() && now.Sub(d.at) < d.Wait/16 {
		return nil
	}
	d.at = now
	return d.Set(now.Add(d.Wait))
}

// keepBelow is the largest buffer a Reader keeps between messages; a larger
// message's buffer is let go once it is copied out.
const keepBelow = 64 << 10

// Reader reads whole messages like websocket.Conn.ReadMessage, but gathers
// each in a buffer it keeps and returns an exactly sized copy: ReadMessage's
// io.ReadAll grows a new slice several times for every message, which was a
// third of the gateway's allocations under load. It belongs to the
// connection's reader goroutine.
type Reader struct {
	buf bytes.Buffer
}

// Read returns the next message's type and bytes (its own: the caller may
// keep them).
func (r *Reader) Read(conn *websocket.Conn) (int, []byte, error) {
	typ, view, err := r.Next(conn)
	if err != nil {
		return typ, nil, err
	}
	return typ, Own(view), nil
}

// Next returns the next message's type and a view of its bytes, valid only
// until the next call: for a reader that looks at a message before deciding
// to keep it (Own makes it the caller's).
func (r *Reader) Next(conn *websocket.Conn) (int, []byte, error) {
	if r.buf.Cap() > keepBelow {
		r.buf = bytes.Buffer{} // the last message was large: let its buffer go
	}
	typ, mr, err := conn.NextReader()
	if err != nil {
		return typ, nil, err
	}
	r.buf.Reset()
	if _, err := r.buf.ReadFrom(mr); err != nil {
		return typ, nil, err
	}
	return typ, r.buf.Bytes(), nil
}

// Own returns a copy of a view that Next returned, exactly its size.
func Own(view []byte) []byte {
	if len(view) == 0 {
		return []byte{}
	}
	return bytes.Clone(view)
}
