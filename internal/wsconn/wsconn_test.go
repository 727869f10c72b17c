package wsconn

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// TestReaderReadsWholeMessagesOfTheirOwn reads messages of growing and
// shrinking sizes from a real websocket server: each comes whole, in order,
// in a slice of its own that the next read does not overwrite; a message
// over the read limit is the connection's error, as with ReadMessage.
func TestReaderReadsWholeMessagesOfTheirOwn(t *testing.T) {
	sizes := []int{0, 1, 511, 512, 513, 4096, 100 << 10, 3, 70 << 10, 10}
	read := make(chan struct{}) // closed when the test has read all it reads
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i, n := range sizes {
			typ := websocket.TextMessage
			if i%2 == 1 {
				typ = websocket.BinaryMessage
			}
			if err := c.WriteMessage(typ, bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil {
				return
			}
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("view one"))
		_ = c.WriteMessage(websocket.TextMessage, []byte("two"))
		_ = c.WriteMessage(websocket.TextMessage, make([]byte, 300<<10))
		select { // the connection stays open until the client has read
		case <-read:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(read)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadLimit(200 << 10)
	var r Reader
	var got [][]byte
	for i, n := range sizes {
		typ, data, err := r.Read(conn)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		want := websocket.TextMessage
		if i%2 == 1 {
			want = websocket.BinaryMessage
		}
		if typ != want || !bytes.Equal(data, bytes.Repeat([]byte{byte('a' + i)}, n)) || data == nil {
			t.Fatalf("message %d: type %d, %d bytes; want type %d, %d bytes of %q", i, typ, len(data), want, n, rune('a'+i))
		}
		got = append(got, data)
	}
	for i, data := range got {
		if !bytes.Equal(data, bytes.Repeat([]byte{byte('a' + i)}, sizes[i])) {
			t.Fatalf("message %d changed after later reads", i)
		}
	}
	// The 70 KiB message's buffer was let go when the next was read.
	if r.buf.Cap() > keepBelow {
		t.Fatalf("kept a %d-byte buffer", r.buf.Cap())
	}
	// Next's view is the reader's buffer: valid until the next call, and
	// Own makes it the caller's.
	_, view, err := r.Next(conn)
	if err != nil || string(view) != "view one" || r.buf.Cap() > keepBelow {
		t.Fatalf("Next: %q, %v (buffer %d bytes)", view, err, r.buf.Cap())
	}
	owned := Own(view)
	if _, next, err := r.Next(conn); err != nil || string(next) != "two" || string(owned) != "view one" {
		t.Fatalf("after the next message: owned %q, next %q, %v", owned, next, err)
	}
	if _, _, err := r.Read(conn); !errors.Is(err, websocket.ErrReadLimit) {
		t.Fatalf("over the limit: %v, want ErrReadLimit", err)
	}
}

// TestDeadlineMovesLazily: the first Extend sets the deadline, the next
// ones within a sixteenth of the wait do not, a later one does.
// The clock is synctest's, so that no step can take longer than a sixteenth
// of the wait on a slow machine, and the sleep is exact.
func TestDeadlineMovesLazily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var set []time.Time
		d := Deadline{Set: func(at time.Time) error { set = append(set, at); return nil }, Wait: 160 * time.Millisecond}
		_ = d.Extend()
		_ = d.Extend()
		if len(set) != 1 {
			t.Fatalf("set %d times, want 1", len(set))
		}
		time.Sleep(15 * time.Millisecond) // synctest's clock: no real wait
		_ = d.Extend()
		if len(set) != 2 || !set[1].After(set[0]) {
			t.Fatalf("after a sixteenth of the wait: set %v", set)
		}
	})
}
