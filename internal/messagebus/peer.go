package messagebus

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// peer is one websocket connected to the bus: its reader is the HTTP
// handler's goroutine, its only writer is writeLoop (gorilla/websocket's
// concurrency rule).
type peer struct {
	conn *websocket.Conn
	send chan outMsg
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

func newPeer(conn *websocket.Conn, queue int) *peer {
	return &peer{
		conn:       conn,
		send:       make(chan outMsg, queue),
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
	alive := func() error { return conn.SetReadDeadline(time.Now().Add(pongWait)) }
	_ = alive()
	conn.SetPongHandler(func(string) error { return alive() })
	// The writer answers pings, not the reader (gorilla's default): a reader
	// that writes can deadlock against a peer doing the same over the
	// unbuffered net.Pipe of DialContext, and must never wait on a slow
	// peer's socket. One pending pong is enough.
	conn.SetPingHandler(func(data string) error {
		select {
		case p.pong <- data:
		default:
		}
		return alive()
	})
	for {
		typ, data, err := conn.ReadMessage()
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
	for {
		select {
		case m := <-p.send:
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(m.typ, m.data); err != nil {
				_ = conn.Close()
				return
			}
		case <-ping.C:
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				_ = conn.Close()
				return
			}
		case data := <-p.pong:
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
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
