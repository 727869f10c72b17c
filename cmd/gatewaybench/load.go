package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// slowCheckWait bounds how long the tool reads a slow stream at the end to
// learn whether the server cut it.
const slowCheckWait = 5 * time.Second

// streamJob is one stream to open.
type streamJob struct {
	cl            *clientState
	primary, slow bool
}

// streamJobs lists every client's streams, then the slow clients' one.
func (b *bench) streamJobs() []streamJob {
	var jobs []streamJob
	for _, c := range b.clients {
		for k := range b.cfg.Streams {
			jobs = append(jobs, streamJob{cl: c, primary: k == 0})
		}
	}
	for _, c := range b.slow {
		jobs = append(jobs, streamJob{cl: c, primary: true, slow: true})
	}
	return jobs
}

// openStreams opens jobs, streamDialers at a time, and starts a reader for
// each stream that reads.
func (b *bench) openStreams(ctx context.Context, jobs []streamJob, readers *sync.WaitGroup) {
	var failed atomic.Int64
	_ = parallel(ctx, len(jobs), streamDialers, func(_ context.Context, i int) error {
		j := jobs[i]
		s, err := openStream(ctx, j.cl.src, b.hostport, j.cl, j.primary, j.slow)
		if err != nil {
			failed.Add(1)
			b.res.fail("stream_open_" + errorKind(err))
			b.failure(j.cl.id, err)
			return nil
		}
		b.streamsMu.Lock()
		if j.slow {
			b.slowOnes = append(b.slowOnes, s)
		} else {
			b.streams = append(b.streams, s)
		}
		b.streamsMu.Unlock()
		if j.slow {
			return nil // it stops reading after ready
		}
		readers.Go(func() {
			if err := s.read(ctx, &b.events); err != nil {
				b.streamsEnded.Add(1)
				b.res.fail("stream_ended")
				b.failure(s.cl.id, err)
			}
		})
		return nil
	})
	b.rep.Setup.StreamsFailed += int(failed.Load())
	b.rep.Setup.StreamsOpened += len(jobs) - int(failed.Load())
}

// failure keeps a few stream failures for the report.
func (b *bench) failure(client string, err error) {
	b.streamsMu.Lock()
	defer b.streamsMu.Unlock()
	if len(b.rep.Samples) < maxFailureSamples {
		b.rep.Samples = append(b.rep.Samples, streamFailure{Client: client, Error: err.Error()})
	}
}

// closeStreams closes every stream's connection, which ends its reader.
func (b *bench) closeStreams() {
	b.streamsMu.Lock()
	defer b.streamsMu.Unlock()
	for _, s := range b.streams {
		_ = s.conn.Close()
	}
	for _, s := range b.slowOnes {
		_ = s.conn.Close()
	}
}

// talk runs the talkers (and the slow clients' talkers) through the warm-up
// and the measured window, reads the server's /proc meanwhile, waits for the
// utterances in flight, and fills the report.
func (b *bench) talk(ctx context.Context) {
	cfg, res, rep := b.cfg, b.res, b.rep
	start := time.Now().Add(50 * time.Millisecond)
	res.from = start.Add(cfg.Warmup)
	res.to = res.from.Add(cfg.Duration)
	body := utteranceBody(cfg.Utterance)
	var late atomic.Uint64
	var wg sync.WaitGroup
	for j := range cfg.Talkers {
		cl := b.clients[j%len(b.clients)]
		t := &talker{cl: cl, sp: newSpeaker(cl.src, cl.hostport, cl.token, body), timeout: cfg.Timeout, late: &late, first: start}
		if cfg.Rate > 0 {
			t.interval = time.Duration(float64(cfg.Talkers) / cfg.Rate * float64(time.Second))
			t.first = start.Add(time.Duration(float64(j) / cfg.Rate * float64(time.Second)))
		}
		wg.Go(func() {
			sleep(ctx, time.Until(t.first))
			t.run(ctx, res.to)
		})
	}
	for i, c := range b.slow {
		iv := time.Duration(float64(time.Second) / cfg.SlowRate)
		t := &talker{cl: c, sp: newSpeaker(c.src, c.hostport, c.token, body), timeout: cfg.Timeout, late: &late, interval: iv,
			first: start.Add(iv * time.Duration(i) / time.Duration(len(b.slow)))}
		wg.Go(func() { t.run(ctx, res.to) })
	}

	var peak atomic.Uint64
	stopSampler := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(samplePeriod)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if s := b.sample(); s.rss > peak.Load() {
					peak.Store(s.rss)
				}
			case <-stopSampler:
				return
			}
		}
	})
	sleep(ctx, time.Until(res.from))
	a := b.sample()
	sleep(ctx, time.Until(res.to))
	z := b.sample()
	wg.Wait()
	// The utterances still in flight may end within the timeout.
	deadline := time.Now().Add(cfg.Timeout)
	for res.outstanding.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	close(stopSampler)
	sampler.Wait()
	for _, c := range b.clients {
		for range c.sweep() {
			res.fail("no_done")
		}
	}
	end := b.sample()
	rep.Server.RunCPUPercent = round2(cpuPercent(a, z))
	rep.Server.RSSPeakRunBytes = max(peak.Load(), z.rss, end.rss)
	rep.Server.RSSEndRunBytes = end.rss

	res.mu.Lock()
	defer res.mu.Unlock()
	rep.Run = &runReport{
		Accepted:   res.sentN,
		Completed:  len(res.done),
		PerSecond:  round2(float64(len(res.done)) / cfg.Duration.Seconds()),
		TargetRate: cfg.Rate,
		LateSends:  late.Load(),
		Events:     b.events.Load(),
	}
	rep.Latency = &latencyReport{Accept: summarize(res.accept), Speak: summarize(res.speak), Done: summarize(res.done)}
	rep.Statuses = res.statuses
	if len(b.slow) > 0 {
		rep.Slow = &slowReport{Clients: len(b.slow), Accepted: res.slowSent, Reasons: map[string]int{}}
	}
}

// checkSlow reads what is left of each slow stream to learn whether the
// server cut it, and why.
func (b *bench) checkSlow() {
	if b.rep.Slow == nil {
		b.rep.Slow = &slowReport{Clients: len(b.slow), Reasons: map[string]int{}}
	}
	b.streamsMu.Lock()
	slow := append([]*stream(nil), b.slowOnes...)
	b.streamsMu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range slow {
		wg.Go(func() {
			_ = s.conn.SetReadDeadline(time.Now().Add(slowCheckWait))
			var err error
			for err == nil {
				_, err = s.events.Next() // the comments go to s.last
			}
			reason := s.last.Load().(string)
			if reason == "" {
				reason = "closed without a reason"
			}
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				b.rep.Slow.Reasons["still open"]++
				return
			}
			b.rep.Slow.Cut++
			b.rep.Slow.Reasons[reason]++
		})
	}
	wg.Wait()
}
