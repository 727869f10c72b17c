package busclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ovosgw/gateway/internal/busframe"
	"github.com/ovosgw/gateway/internal/wsconn"
)

// link is one websocket connection to the bus, with its writer queue and echo
// filter.
type link struct {
	conn *websocket.Conn
	send chan outFrame
	// done is closed by the writer when it stops taking frames; it has
	// answered every frame it took. writeErr, set before, says why.
	done     chan struct{}
	writeErr error
	// stop tells the writer to stop; graceful (set before stop closes)
	// asks it to send a close frame first.
	stop     chan struct{}
	graceful bool
	// pong carries the payload of a ping to the writer, which answers it.
	pong chan string
	// wmu makes writes one at a time (gorilla/websocket allows one writer):
	// the writer goroutine's, and those Send makes itself when nothing is
	// queued (see Client.sendRaw). wd is the write deadline, under wmu.
	wmu sync.Mutex
	wd  wsconn.Deadline

	echoMu sync.Mutex
	echo   *echoFilter
}

// outFrame is one frame handed to the writer; res (buffered) gets the result.
type outFrame struct {
	ctx  context.Context
	data []byte
	res  chan error
}

// serve runs one connection until it fails or ctx ends, and returns the
// cause (nil after a clean shutdown).
func (c *Client) serve(ctx context.Context, conn *websocket.Conn) error {
	l := &link{
		conn: conn,
		send: make(chan outFrame, c.cfg.SendQueue),
		done: make(chan struct{}),
		stop: make(chan struct{}),
		pong: make(chan string, 1),
		echo: newEchoFilter(echoMaxEntries, echoTTL),
	}
	l.wd = wsconn.Deadline{Set: conn.SetWriteDeadline, Wait: writeWait}
	c.linkUp(l)

	readDone := make(chan error, 1)
	go func() { readDone <- c.readLoop(l) }()
	go c.writeLoop(l)

	var cause error
	readOver, writeOver := false, false
	select {
	case cause = <-readDone:
		readOver = true
	case <-l.done:
		writeOver = true
		cause = fmt.Errorf("write: %w", l.writeErr)
	case <-ctx.Done():
	}
	// From here Send no longer finds this link.
	c.mu.Lock()
	c.link = nil
	c.since = time.Now()
	if cause != nil {
		c.lastError = c.url.scrub(cause)
	}
	c.mu.Unlock()

	switch {
	case !readOver && !writeOver:
		// Clean close (RFC 6455 §7.1.2): the writer sends a close frame and
		// the bus answers with its own, which ends the reader. A bus that
		// does not answer within closeGrace is cut off.
		l.graceful = true
		close(l.stop)
		t := time.NewTimer(closeGrace)
		writer, reader := l.done, readDone
		for writer != nil || reader != nil {
			select {
			case <-writer:
				writer = nil
			case <-reader:
				reader = nil
			case <-t.C:
				_ = conn.Close()
			}
		}
		t.Stop()
	case readOver:
		_ = conn.Close()
		close(l.stop)
		<-l.done
	default: // writer failed: it closed the connection, which ends the reader.
		close(l.stop)
		<-readDone
	}
	_ = conn.Close()
	c.linkChanged(false, cause)
	return cause
}

func (c *Client) linkUp(l *link) {
	c.mu.Lock()
	c.link = l
	c.since = time.Now()
	if c.everUp {
		c.reconnects.Add(1)
	}
	c.everUp = true
	close(c.up)
	c.up = make(chan struct{})
	c.mu.Unlock()
	c.log.Info("messagebus link up", "url", c.url.public)
	c.linkChanged(true, nil)
}

// readLoop is the connection's only reader.
func (c *Client) readLoop(l *link) error {
	conn := l.conn
	conn.SetReadLimit(c.cfg.MaxMessageSize)
	rd := wsconn.Deadline{Set: conn.SetReadDeadline, Wait: c.pongWait}
	alive := rd.Extend
	_ = alive()
	conn.SetPongHandler(func(string) error { return alive() })
	// The writer answers pings, not the reader (gorilla's default): a reader
	// that writes can deadlock against a peer doing the same once the
	// transport's buffers are full (at once over net.Pipe), and a
	// reader must never wait on the socket's send side. One pending pong is
	// enough; a peer only needs some answer.
	conn.SetPingHandler(func(data string) error {
		select {
		case l.pong <- data:
		default:
		}
		return alive()
	})
	var msgs wsconn.Reader
	for {
		_, raw, err := msgs.Next(conn) // a view: receive keeps a copy
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		// Any frame proves the bus alive, not only a pong: a long frame
		// may hold the pong up behind it.
		_ = alive()
		c.receive(l, raw)
	}
}

// receive handles one frame read from the bus: drop our own echo, parse,
// deliver. view is only valid during the call. It never panics on any input;
// bad frames are counted and dropped.
func (c *Client) receive(l *link, view []byte) {
	c.framesIn.Add(1)
	l.echoMu.Lock()
	echo := l.echo.consume(view, time.Now())
	l.echoMu.Unlock()
	if echo {
		// Half of what a peer reads is its own frames coming back: they are
		// dropped without being copied.
		c.echoes.Add(1)
		return
	}
	// The frame is kept (subscribers may hold it), so it gets its own copy
	// of the reader's buffer.
	raw := wsconn.Own(view)
	f, err := busframe.Parse(raw)
	if err != nil {
		c.dropped.Add(1)
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("dropped a bus frame that is not a message", "err", err, "len", len(raw), "head", logHead(raw))
		}
		return
	}
	for _, s := range c.subs.load() {
		s.fn(f)
	}
}

// logHead returns the start of an untrusted payload, safe to log.
func logHead(raw []byte) string {
	if len(raw) > logPayloadMax {
		raw = raw[:logPayloadMax]
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}

// writeLoop is the connection's writer (gorilla/websocket allows one at a
// time; Send also writes itself when nothing is queued): queued frames,
// pings, pongs, and the close frame.
func (c *Client) writeLoop(l *link) {
	defer close(l.done)
	conn := l.conn
	fail := func(err error) {
		l.writeErr = err
		_ = conn.Close()
	}
	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	control := func(typ int, data []byte) error {
		l.wmu.Lock()
		defer l.wmu.Unlock()
		_ = l.wd.Extend()
		return conn.WriteMessage(typ, data)
	}
	for {
		select {
		case f := <-l.send:
			if err := f.ctx.Err(); err != nil {
				f.res <- err
				continue
			}
			l.wmu.Lock()
			err := c.writeFrame(l, f.data)
			l.wmu.Unlock()
			if err != nil {
				f.res <- fmt.Errorf("%w: %w", ErrNotConnected, err)
				fail(err)
				return
			}
			f.res <- nil
		case <-ping.C:
			if err := control(websocket.PingMessage, nil); err != nil {
				fail(err)
				return
			}
		case data := <-l.pong:
			if err := control(websocket.PongMessage, []byte(data)); err != nil {
				fail(err)
				return
			}
		case <-l.stop:
			if l.graceful {
				l.wmu.Lock()
				_ = conn.SetWriteDeadline(time.Now().Add(closeGrace))
				_ = conn.WriteMessage(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				l.wmu.Unlock()
			}
			return
		}
	}
}

// writeFrame writes one data frame. l.wmu held.
func (c *Client) writeFrame(l *link, data []byte) error {
	// Remember before writing: the echo may be read before WriteMessage
	// returns.
	l.echoMu.Lock()
	l.echo.add(data, time.Now())
	l.echoMu.Unlock()
	_ = l.wd.Extend()
	if err := l.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return err
	}
	c.framesOut.Add(1)
	return nil
}
