package redisstore

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Which replica owns which utterance, for bridges on one assistant
// (bridge.Shared):
//
//	utt:<id>        the utterance is a replica's: pending until its lease
//	                ends, then kept endedKeep after it ended, so that its
//	                late frames are still that replica's alone
//	{leases}        sorted set of "<id>\n<client>\n<session>" by the time
//	                when another replica ends the utterance if it is still
//	                there: its replica died
//	claim:<key>     a frame no replica owns, claimed by the first replica
//	                that asks; kept claimWindow
const (
	endedKeep   = time.Minute
	claimKeep   = 30 * time.Second
	sweepBatch  = 100
	sweepPeriod = time.Second
)

func (k keyspace) utterance(id string) string { return k.prefix + "utt:" + id }
func (k keyspace) leases() string             { return k.prefix + "{leases}" }
func (k keyspace) claim(key string) string    { return k.prefix + "claim:" + key }

func leaseMember(id, clientID, sessionID string) string {
	return id + "\n" + clientID + "\n" + sessionID
}

// Utterances is bridge.Shared in Redis.
type Utterances struct{ s *Store }

// Utterances returns the shared ownership of utterances.
func (s *Store) Utterances() *Utterances { return &Utterances{s: s} }

// Own implements bridge.Shared.
func (u *Utterances) Own(ctx context.Context, id, clientID, sessionID string, until time.Time, lease bool) error {
	cmds := rueidis.Commands{u.s.rdb.B().Set().Key(u.s.k.utterance(id)).Value("1").PxatMillisecondsTimestamp(until.UnixMilli()).Build()}
	if lease {
		cmds = append(cmds, u.s.rdb.B().Zadd().Key(u.s.k.leases()).ScoreMember().
			ScoreMember(float64(until.UnixMilli()), leaseMember(id, clientID, sessionID)).Build())
	}
	for _, r := range u.s.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return unreachable("own utterance", err)
		}
	}
	return nil
}

// Ended implements bridge.Shared.
func (u *Utterances) Ended(ctx context.Context, id, clientID, sessionID string) {
	for _, r := range u.s.rdb.DoMulti(ctx,
		u.s.rdb.B().Pexpire().Key(u.s.k.utterance(id)).Milliseconds(endedKeep.Milliseconds()).Build(),
		u.s.rdb.B().Zrem().Key(u.s.k.leases()).Member(leaseMember(id, clientID, sessionID)).Build(),
	) {
		if err := r.Error(); err != nil {
			u.s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: an ended utterance stays owned until its lease ends", slog.Any("error", err))
			return
		}
	}
}

// OwnedElsewhere implements bridge.Shared: the caller asks only about an
// utterance that is not its own.
func (u *Utterances) OwnedElsewhere(ctx context.Context, id string) (bool, error) {
	n, err := u.s.rdb.Do(ctx, u.s.rdb.B().Exists().Key(u.s.k.utterance(id)).Build()).AsInt64()
	if err != nil {
		return false, unreachable("utterance owner", err)
	}
	return n > 0, nil
}

// Claim implements bridge.Shared.
func (u *Utterances) Claim(ctx context.Context, key string) (bool, error) {
	err := u.s.rdb.Do(ctx, u.s.rdb.B().Set().Key(u.s.k.claim(key)).Value("1").Nx().Px(claimKeep).Build()).Error()
	switch {
	case err == nil:
		return true, nil
	case rueidis.IsRedisNil(err):
		return false, nil
	}
	return false, unreachable("claim", err)
}

// SweepOrphans ends, until ctx ends, the utterances whose replica died: each
// lease past its time is taken by exactly one replica (ZREM answers 1 to one
// of them), which calls end with it.
func (u *Utterances) SweepOrphans(ctx context.Context, end func(id, clientID, sessionID string)) {
	t := time.NewTicker(sweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u.sweep(ctx, end)
	}
}

func (u *Utterances) sweep(ctx context.Context, end func(id, clientID, sessionID string)) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	due, err := u.s.rdb.Do(ctx, u.s.rdb.B().Zrangebyscore().Key(u.s.k.leases()).Min("-inf").Max(now).
		Limit(0, sweepBatch).Build()).AsStrSlice()
	if err != nil {
		return // Redis is away; the next sweep tries again
	}
	for _, m := range due {
		n, err := u.s.rdb.Do(ctx, u.s.rdb.B().Zrem().Key(u.s.k.leases()).Member(m).Build()).AsInt64()
		if err != nil || n != 1 {
			continue // another replica took it
		}
		parts := strings.SplitN(m, "\n", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			continue
		}
		u.s.log.LogAttrs(ctx, slog.LevelWarn, "an utterance outlived its replica: ended with status error",
			slog.String("utterance_id", parts[0]), slog.String("client_id", parts[1]))
		end(parts[0], parts[1], parts[2])
	}
}
