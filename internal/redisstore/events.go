package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/ovosgw/gateway/internal/hub"
)

// The event log of each client, shared by every replica (hub.Relay):
//
//	{ev:<client>}:seq  the client's newest event id; created at the current
//	                   Unix time in microseconds, so that ids keep growing
//	                   even when Redis loses it (as the hub of one process
//	                   does across restarts)
//	{ev:<client>}:log  list of the client's newest events, "<id> <frame>",
//	                   at most the window's length
//	events             the channel every replica subscribes to: "e<client>\n
//	                   <id>\n<frame>" for an event, "c<json>" for a hub.Control
//
// Both keys of a client share a hash tag, so each step is one script on one
// slot. They expire after eventsTTL without an event or a stream opening, so
// that a client gone quiet costs Redis nothing; its next id still grows.
// Live delivery is one PUBLISH per event to one channel: every replica gets
// every event and hands it to its own streams of the client, or drops it.

// eventsTTL is how long a quiet client's log and sequence are kept.
const eventsTTL = 24 * time.Hour

// appendScript: KEYS seq, log; ARGV base, window, ttl ms, channel, client,
// frame. The id is read back as a string: Lua's numbers would print a
// 16-digit id in exponent form.
var appendScript = rueidis.NewLuaScript(appendSource)

// appendSHA is appendScript's SHA-1, for EVALSHA in a batch.
var appendSHA = func() string { h := sha1.Sum([]byte(appendSource)); return hex.EncodeToString(h[:]) }()

const appendSource = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('INCR', KEYS[1])
local id = redis.call('GET', KEYS[1])
redis.call('RPUSH', KEYS[2], id .. ' ' .. ARGV[6])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], 'e' .. ARGV[5] .. '\n' .. id .. '\n' .. ARGV[6])
return id
`

// windowScript: KEYS seq, log; ARGV base, ttl ms.
var windowScript = rueidis.NewLuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {redis.call('GET', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
`)

// Events is the hub's Relay in Redis: one event log per client and one
// channel for live delivery and controls. Run delivers what the channel
// brings to this replica's hub.
type Events struct {
	s      *Store
	window int
	now    func() time.Time
}

// Events returns the shared event log keeping window events per client.
func (s *Store) Events(window int) *Events {
	if window <= 0 {
		window = hub.DefaultWindow
	}
	return &Events{s: s, window: window, now: time.Now}
}

func (k keyspace) eventSeq(clientID string) string { return k.prefix + "{ev:" + clientID + "}:seq" }
func (k keyspace) eventLog(clientID string) string { return k.prefix + "{ev:" + clientID + "}:log" }
func (k keyspace) eventsChannel() string           { return k.prefix + "events" }

func (e *Events) base() string {
	return strconv.FormatInt(e.now().UnixMicro(), 10)
}

// Append implements hub.Relay.
func (e *Events) Append(ctx context.Context, clientID string, body []byte) (uint64, error) {
	k := e.s.k
	v, err := appendScript.Exec(ctx, e.s.rdb,
		[]string{k.eventSeq(clientID), k.eventLog(clientID)},
		[]string{e.base(), strconv.Itoa(e.window), strconv.FormatInt(eventsTTL.Milliseconds(), 10),
			k.eventsChannel(), clientID, string(body)}).ToString()
	if err != nil {
		return 0, unreachable("append event", err)
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: append event: id %q: %w", v, err)
	}
	return id, nil
}

// AppendBatch implements hub.BatchRelay: one pipelined round trip for all
// the events, which Redis runs in their order. An event whose script Redis
// does not have yet (a first call, or after SCRIPT FLUSH) is appended again
// on its own, in order, by Append, which loads it.
func (e *Events) AppendBatch(ctx context.Context, events []hub.PendingEvent) []error {
	k := e.s.k
	base, window, ttl := e.base(), strconv.Itoa(e.window), strconv.FormatInt(eventsTTL.Milliseconds(), 10)
	cmds := make(rueidis.Commands, len(events))
	for i, ev := range events {
		cmds[i] = e.s.rdb.B().Evalsha().Sha1(appendSHA).Numkeys(2).
			Key(k.eventSeq(ev.ClientID), k.eventLog(ev.ClientID)).
			Arg(base, window, ttl, k.eventsChannel(), ev.ClientID, string(ev.Body)).Build()
	}
	errs := make([]error, len(events))
	for i, r := range e.s.rdb.DoMulti(ctx, cmds...) {
		err := r.Error()
		if ret, ok := rueidis.IsRedisErr(err); ok && ret.IsNoScript() {
			_, err = e.Append(ctx, events[i].ClientID, events[i].Body)
		} else if err != nil {
			err = unreachable("append event", err)
		}
		errs[i] = err
	}
	return errs
}

// Window implements hub.Relay.
func (e *Events) Window(ctx context.Context, clientID string) (uint64, []hub.RelayedEvent, error) {
	k := e.s.k
	vs, err := windowScript.Exec(ctx, e.s.rdb,
		[]string{k.eventSeq(clientID), k.eventLog(clientID)},
		[]string{e.base(), strconv.FormatInt(eventsTTL.Milliseconds(), 10)}).ToArray()
	if err != nil {
		return 0, nil, unreachable("read events", err)
	}
	if len(vs) != 2 {
		return 0, nil, errors.New("redisstore: read events: unexpected reply")
	}
	seq, err := vs[0].ToString()
	if err != nil {
		return 0, nil, unreachable("read events", err)
	}
	last, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("redisstore: read events: id %q: %w", seq, err)
	}
	entries, err := vs[1].AsStrSlice()
	if err != nil {
		return 0, nil, unreachable("read events", err)
	}
	events := make([]hub.RelayedEvent, 0, len(entries))
	for _, entry := range entries {
		idText, frame, ok := strings.Cut(entry, " ")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || id > last {
			continue // not one of ours: skip rather than fail the stream
		}
		events = append(events, hub.RelayedEvent{ID: id, Body: []byte(frame)})
	}
	return last, events, nil
}

// Control implements hub.Relay.
func (e *Events) Control(ctx context.Context, c hub.Control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	cmd := e.s.rdb.B().Publish().Channel(e.s.k.eventsChannel()).Message("c" + string(b)).Build()
	if err := e.s.rdb.Do(ctx, cmd).Error(); err != nil {
		return unreachable("publish control", err)
	}
	return nil
}

// Forget implements hub.Relay.
func (e *Events) Forget(ctx context.Context, clientID string) error {
	k := e.s.k
	cmd := e.s.rdb.B().Del().Key(k.eventSeq(clientID), k.eventLog(clientID)).Build()
	if err := e.s.rdb.Do(ctx, cmd).Error(); err != nil {
		return unreachable("forget events", err)
	}
	return nil
}

// Run subscribes to the events channel and hands what it brings to h until
// ctx ends: events to h.Deliver, controls to h.Apply. Each time the
// subscription is (re)made, the clients that have streams here catch up
// from their logs, so an event published while this replica had lost its
// channel is still delivered, once. ready, when not nil, is closed once the
// first subscription is made.
func (e *Events) Run(ctx context.Context, h *hub.Server, ready chan<- struct{}) {
	resync := make(chan struct{}, 1)
	go e.catchUpLoop(ctx, h, resync)
	var once sync.Once
	hook := func(s rueidis.PubSubSubscription) {
		if s.Kind != "subscribe" {
			return
		}
		if ready != nil {
			once.Do(func() { close(ready) })
		}
		select {
		case resync <- struct{}{}:
		default:
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		cmd := e.s.rdb.B().Subscribe().Channel(e.s.k.eventsChannel()).Build()
		err := e.s.rdb.Receive(rueidis.WithOnSubscriptionHook(ctx, hook), cmd, func(m rueidis.PubSubMessage) {
			e.handle(h, m.Message)
		})
		if ctx.Err() != nil {
			return
		}
		e.s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: events channel lost; subscribing again", slog.Any("error", err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// handle hands one channel message to h. A message it cannot read is
// logged and dropped.
func (e *Events) handle(h *hub.Server, msg string) {
	if msg == "" {
		return
	}
	switch msg[0] {
	case 'e':
		clientID, rest, ok1 := strings.Cut(msg[1:], "\n")
		idText, frame, ok2 := strings.Cut(rest, "\n")
		id, err := strconv.ParseUint(idText, 10, 64)
		if ok1 && ok2 && err == nil && clientID != "" {
			h.Deliver(clientID, hub.RelayedEvent{ID: id, Body: []byte(frame)})
			return
		}
	case 'c':
		var c hub.Control
		if err := json.Unmarshal([]byte(msg[1:]), &c); err == nil && c.ClientID != "" {
			h.Apply(c)
			return
		}
	}
	e.s.log.LogAttrs(context.Background(), slog.LevelWarn, "redisstore: unreadable message on the events channel dropped", slog.Int("bytes", len(msg)))
}

// catchUpLoop delivers, after each (re)subscription, what the clients with
// streams here missed.
func (e *Events) catchUpLoop(ctx context.Context, h *hub.Server, resync <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync:
		}
		for _, clientID := range h.Watched() {
			delivered, watched := h.Delivered(clientID)
			if !watched {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, events, err := e.Window(rctx, clientID)
			cancel()
			if err != nil {
				e.s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: catch-up failed", slog.String("client_id", clientID), slog.Any("error", err))
				continue
			}
			for _, ev := range events {
				if ev.ID > delivered {
					h.Deliver(clientID, ev)
				}
			}
		}
	}
}
