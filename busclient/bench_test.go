package busclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
)

// benchClient runs a client on bus until the benchmark ends.
func benchClient(b *testing.B, bus *messagebus.Bus, sub func(*api.Frame)) *busclient.Client {
	b.Helper()
	c, err := busclient.New(busclient.Config{URL: "ws://embedded/core", NetDialContext: bus.DialContext})
	if err != nil {
		b.Fatal(err)
	}
	if sub != nil {
		c.Subscribe(sub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, waitFor)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkRoundTrip measures a request and its reply through the in-memory
// bus: A sends (and drops its own echo), B receives and answers (and drops
// its own echo), A's Request matches the answer.
func BenchmarkRoundTrip(b *testing.B) {
	bus := newBus(b, messagebus.Config{})
	pings := make(chan struct{}, 1)
	responder := benchClient(b, bus, func(f *api.Frame) {
		if f.Type == "bench.ping" {
			pings <- struct{}{}
		}
	})
	pong := msg("bench.ping.response", `{"ok":true}`, `{"source":["skills"],"destination":"gateway:a"}`)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-pings:
				_ = responder.Send(ctx, pong)
			case <-ctx.Done():
				return
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-stopped })
	a := benchClient(b, bus, nil)
	ping := msg("bench.ping", `{"utterances":["hello there"],"lang":"en-US"}`,
		`{"source":"gateway:a","destination":["skills"],"session":{"session_id":"bench"}}`)
	match := func(f *api.Frame) bool {
		return f.Type == "bench.ping.response" && f.Route.Destination.Has("gateway:a")
	}
	b.ReportAllocs()
	for b.Loop() {
		rctx, rcancel := context.WithTimeout(context.Background(), waitFor)
		if _, err := a.Request(rctx, ping, match); err != nil {
			b.Fatal(err)
		}
		rcancel()
	}
	b.StopTimer()
	if s := a.Stats(); s.Echoes < uint64(b.N) {
		b.Fatalf("echoes %d < %d round trips", s.Echoes, b.N)
	}
}

// BenchmarkSendReceive measures one frame from A's Send to B's subscriber.
func BenchmarkSendReceive(b *testing.B) {
	bus := newBus(b, messagebus.Config{})
	got := make(chan struct{}, 1)
	benchClient(b, bus, func(f *api.Frame) {
		if f.Type == api.TypeSpeak {
			got <- struct{}{}
		}
	})
	a := benchClient(b, bus, nil)
	m := msg(api.TypeSpeak, `{"utterance":"hello","expect_response":false,"lang":"en-US"}`,
		`{"source":["skills"],"destination":"gateway:b","session":{"session_id":"bench"}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(waitFor):
			b.Fatal("frame lost")
		}
	}
}
