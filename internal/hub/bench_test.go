package hub

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// BenchmarkPublish publishes to one client with one subscriber while other
// clients have topics too: the cost must not grow with their number.
func BenchmarkPublish(b *testing.B) {
	for _, clients := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			h := newTestHub(b, Config{})
			for i := range clients {
				h.Publish(fmt.Sprintf("client-%d", i), event(i))
			}
			s := h.Subscribe("client-7", "a", "")
			defer s.Close()
			ev := api.Event{Name: api.EventSpeak, Data: []byte(`{"utterance_id":null,"utterance":"it is noon","expect_response":false,"lang":"en-us"}`)}
			b.ReportAllocs()
			for b.Loop() {
				h.Publish("client-7", ev)
				<-s.Events()
			}
			if h.Stats().DroppedSlow != 0 {
				b.Fatal("the subscriber was dropped")
			}
		})
	}
}

// BenchmarkSubscribe opens and closes a subscription that replays the last 16
// events of a full window.
func BenchmarkSubscribe(b *testing.B) {
	h := newTestHub(b, Config{})
	ids := publishN(b, h, "kitchen", DefaultWindow)
	last := strconv.FormatUint(ids[len(ids)-17], 10)
	b.ReportAllocs()
	for b.Loop() {
		s := h.Subscribe("kitchen", "a", last)
		if len(s.Replay()) != 16 {
			b.Fatalf("replayed %d", len(s.Replay()))
		}
		s.Close()
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	data := []byte(`{"type":"speak","data":{"utterance":"hello\nthere"},"context":{"destination":["kitchen"]}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := EncodeEvent(1719000000000001, api.EventMessage, data); err != nil {
			b.Fatal(err)
		}
	}
}
