package messagebus

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/internal/wsconn"
)

// peer is one websocket connected to the bus: its reader is the HTTP
// handler's goroutine, its only writer is writeLoop (gorilla/websocket's
// concurrency rule).
type peer struct {
	conn *websocket.Conn
	send *sendQueue
	// quit, closed once, tells the writer to send a close frame and stop.
	quit     chan struct{}
	quitOnce sync.Once
	// readerDone is closed when the reader has stopped.
	readerDone chan struct{}
	// writerDone is closed when the writer has stopped.
	writerDone chan struct{}
	// pong carries the payload of a ping to the writer, which answers it.
	pong chan string
}

// outMsg is one frame to write: the relayed bytes are shared by all peers and
// never modified.
type outMsg struct {
	typ  int
	data []byte
}

func newPeer(conn *websocket.Conn, queue int, qbytes int64) *peer {
	return &peer{
		conn:       conn,
		send:       newSendQueue(queue, qbytes),
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		pong:       make(chan string, 1),
	}
}

func (p *peer) shutdown() { p.quitOnce.Do(func() { close(p.quit) }) }

// readLoop relays every data frame the peer sends until it fails.
func (b *Bus) readLoop(p *peer) error {
	defer close(p.readerDone)
	conn := p.conn
	conn.SetReadLimit(b.maxSize)
	pongWait := 2 * b.ping
	rd := wsconn.Deadline{Set: conn.SetReadDeadline, Wait: pongWait}
	alive := rd.Extend
	_ = alive()
	conn.SetPongHandler(func(string) error { return alive() })
	// The writer answers pings, not the reader (gorilla's default): a reader
	// that writes can deadlock against a peer doing the same once both
	// directions' buffers are full, and must never wait on a slow peer's
	// socket. One pending pong is enough.
	conn.SetPingHandler(func(data string) error {
		select {
		case p.pong <- data:
		default:
		}
		return alive()
	})
	var r wsconn.Reader
	for {
		typ, data, err := r.Read(conn)
		if err != nil {
			return err
		}
		_ = alive()
		// Relayed verbatim, JSON or not, like ovos-messagebus: the bus
		// does not judge what its peers say.
		b.relay(outMsg{typ: typ, data: data})
	}
}

// writeLoop writes the peer's queue and pings, and on quit a close frame
// (1001, going away) followed by a bounded wait for the peer's answer.
func (b *Bus) writeLoop(p *peer) {
	defer close(p.writerDone)
	conn := p.conn
	ping := time.NewTicker(b.ping)
	defer ping.Stop()
	wd := wsconn.Deadline{Set: conn.SetWriteDeadline, Wait: writeWait}
	var batch []outMsg
	for {
		select {
		case <-p.send.ready:
			batch = p.send.take(batch)
			for i, m := range batch {
				_ = wd.Extend()
				err := conn.WriteMessage(m.typ, m.data)
				batch[i] = outMsg{} // the frames are shared: do not keep them
				if err != nil {
					_ = conn.Close()
					return
				}
			}
			if cap(batch) > shrinkAbove {
				batch = nil
			}
		case <-ping.C:
			_ = wd.Extend()
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				_ = conn.Close()
				return
			}
		case data := <-p.pong:
			_ = wd.Extend()
			if err := conn.WriteMessage(websocket.PongMessage, []byte(data)); err != nil {
				_ = conn.Close()
				return
			}
		case <-p.quit:
			_ = conn.SetWriteDeadline(time.Now().Add(closeGrace))
			_ = conn.WriteMessage(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
			t := time.NewTimer(closeGrace)
			select {
			case <-p.readerDone:
			case <-t.C:
			}
			t.Stop()
			_ = conn.Close()
			return
		}
	}
}

// sendQueue is a peer's queue of frames to write, bounded in frames and in
// bytes. Unlike a buffered channel it takes memory only as it fills, so its
// bounds can be set for bursts without reserving them for every peer; and
// the writer takes all that is queued at once.
type sendQueue struct {
	mu       sync.Mutex
	frames   []outMsg
	bytes    int64
	max      int
	maxBytes int64
	// ready holds a token while frames wait.
	ready chan struct{}
}

// shrinkAbove is the capacity beyond which an emptied queue lets its
// storage go, so that a burst does not pin memory for good.
const shrinkAbove = 1024

func newSendQueue(max int, maxBytes int64) *sendQueue {
	return &sendQueue{max: max, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push queues m, or reports false when that would pass a bound.
func (q *sendQueue) push(m outMsg) bool {
	q.mu.Lock()
	if len(q.frames) >= q.max || q.bytes+int64(len(m.data)) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, m)
	q.bytes += int64(len(m.data))
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take moves every queued frame into buf (reused) and returns it.
func (q *sendQueue) take(buf []outMsg) []outMsg {
	q.mu.Lock()
	defer q.mu.Unlock()
	buf = append(buf[:0], q.frames...)
	clear(q.frames)
	if cap(q.frames) > shrinkAbove {
		q.frames = nil
	} else {
		q.frames = q.frames[:0]
	}
	q.bytes = 0
	return buf
}
