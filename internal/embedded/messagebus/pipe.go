package messagebus

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer is how many bytes one direction of an in-memory connection
// holds before its writer waits, like a socket's send buffer.
const pipeBuffer = 256 << 10

// bufferedPipe is net.Pipe with a buffer in each direction: a write returns
// once its bytes are in the buffer, not when the other end has read them.
// net.Pipe makes every write a rendezvous of two goroutines, so a bus
// writer relaying a burst waited for its reader once per frame (twice with
// the websocket header), and a reader got one frame per read; here a writer
// runs ahead by up to pipeBuffer bytes and a reader takes what has gathered.
func bufferedPipe() (net.Conn, net.Conn) {
	ab, ba := newPipeStream(pipeBuffer), newPipeStream(pipeBuffer)
	a := &pipeConn{r: ba, w: ab, done: make(chan struct{}), rd: newPipeDeadline(), wd: newPipeDeadline()}
	b := &pipeConn{r: ab, w: ba, done: make(chan struct{}), rd: newPipeDeadline(), wd: newPipeDeadline()}
	return a, b
}

// pipeStream is one direction: bytes written by one end, read by the other.
type pipeStream struct {
	mu     sync.Mutex
	buf    []byte // unread bytes are buf[off:]
	off    int
	max    int
	closed bool          // either end closed: writes fail, reads drain then EOF
	data   chan struct{} // signalled when bytes arrive or the stream closes
	space  chan struct{} // signalled when bytes are read or the stream closes
}

func newPipeStream(max int) *pipeStream {
	return &pipeStream{max: max, data: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *pipeStream) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	signal(s.data)
	signal(s.space)
}

// read copies buffered bytes into p; ok is false when there are none yet.
func (s *pipeStream) read(p []byte) (n int, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off < len(s.buf) {
		n = copy(p, s.buf[s.off:])
		s.off += n
		if s.off == len(s.buf) {
			s.buf, s.off = s.buf[:0], 0
			if cap(s.buf) > s.max {
				s.buf = nil // a burst grew it past the usual: let it go
			}
		}
		signal(s.space)
		return n, true, nil
	}
	if s.closed {
		return 0, true, io.EOF
	}
	return 0, false, nil
}

// write appends what fits of p; n is how much.
func (s *pipeStream) write(p []byte) (n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, io.ErrClosedPipe
	}
	free := s.max - (len(s.buf) - s.off)
	if free <= 0 {
		return 0, nil
	}
	n = min(free, len(p))
	if s.off > 0 && len(s.buf)+n > cap(s.buf) {
		s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
		s.off = 0
	}
	s.buf = append(s.buf, p[:n]...)
	signal(s.data)
	return n, nil
}

// pipeConn is one end of a bufferedPipe.
type pipeConn struct {
	r, w     *pipeStream
	done     chan struct{} // closed by Close: this end's calls fail
	doneOnce sync.Once
	rd, wd   *pipeDeadline
}

func (c *pipeConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-c.done:
			return 0, io.ErrClosedPipe
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		if n, ok, err := c.r.read(p); ok {
			return n, err
		}
		select {
		case <-c.r.data:
		case <-c.done:
		case <-c.rd.wait():
		}
	}
}

func (c *pipeConn) Write(p []byte) (int, error) {
	written := 0
	for {
		select {
		case <-c.done:
			return written, io.ErrClosedPipe
		case <-c.wd.wait():
			return written, os.ErrDeadlineExceeded
		default:
		}
		n, err := c.w.write(p[written:])
		written += n
		if err != nil || written == len(p) {
			return written, err
		}
		if n > 0 {
			continue
		}
		select {
		case <-c.w.space:
		case <-c.done:
		case <-c.wd.wait():
		}
	}
}

// Close ends both directions: the other end reads what was written before,
// then io.EOF, and its writes fail.
func (c *pipeConn) Close() error {
	c.doneOnce.Do(func() {
		close(c.done)
		c.r.close()
		c.w.close()
	})
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return memAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr { return memAddr{} }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *pipeConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// pipeDeadline is a deadline whose passing closes a channel, as net.Pipe's
// (its recipe: a timer that closes cancel, replaced on every set).
type pipeDeadline struct {
	mu     sync.Mutex
	at     time.Time // the deadline set last
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func newPipeDeadline() *pipeDeadline { return &pipeDeadline{cancel: make(chan struct{})} }

// set moves the deadline to t; the zero time means none.
func (d *pipeDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Equal(d.at) && (t.IsZero() || d.timer != nil || isClosed(d.cancel)) {
		// gorilla/websocket sets the deadline it keeps before every
		// frame: the same one again changes nothing.
		return
	}
	d.at = t
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired and is closing cancel: wait for it
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *pipeDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
