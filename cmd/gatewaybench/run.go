package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the tool's own work.
const (
	// streamDialers is how many streams are opened at once: the server's
	// accept queue is finite.
	streamDialers = 64
	// maxFailureSamples is how many stream failures the report quotes.
	maxFailureSamples = 5
	// samplePeriod is how often the server's memory is read during the run.
	samplePeriod = 250 * time.Millisecond
	// cleanupWait bounds deleting the clients at the end.
	cleanupWait = 2 * time.Minute
)

// run is the whole program: parse the command line, optionally start a
// gateway, load it, report. Tests call it with their own arguments.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, stderr: stderr, res: newResults(), rep: &report{Errors: map[string]int{}}}
	b.base, b.pid = cfg.URLs[0], cfg.PID
	if cfg.Exec != "" {
		g, st, stop, err := execGateways(ctx, cfg, stderr)
		if err != nil {
			return err
		}
		defer stop()
		b.base, b.pid, b.cfg.AdminToken = g.url, g.pid(), g.admin
		b.rep.Startup = st
	}
	u, err := url.Parse(b.base)
	if err != nil {
		return err
	}
	if b.hostport, err = hostPort(b.base); err != nil {
		return err
	}
	// Logins and utterances go to the other replicas, if any.
	b.posts = []string{b.base}
	if cfg.Exec == "" && len(cfg.URLs) > 1 {
		b.posts = cfg.URLs[1:]
	}
	for _, p := range b.posts {
		hp, err := hostPort(p)
		if err != nil {
			return err
		}
		b.postHosts = append(b.postHosts, hp)
	}
	if b.pid == 0 {
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			port = 80
		}
		if b.pid, err = findListener(port); err != nil {
			b.note("no /proc readings: %v", err)
			b.pid = -1
		}
	}
	if err := b.run(ctx); err != nil {
		return err
	}
	return b.rep.write(stdout, cfg.Format)
}

// bench is one run against one gateway.
type bench struct {
	cfg       config
	stderr    io.Writer
	mu        sync.Mutex // guards pid and rep.Notes once the run started
	base      string     // the first replica: streams, admin calls, /proc readings
	hostport  string     // base's host:port
	posts     []string   // the replicas taking logins and utterances, in turn by client
	postHosts []string   // posts' host:port
	pid       int        // -1: no /proc readings
	res       *results
	rep       *report
	srcs      []*source
	clients   []*clientState
	slow      []*clientState
	admin     *http.Client

	cleanup   func() // deletes the clients; nil with -keep
	streamsMu sync.Mutex
	streams   []*stream
	slowOnes  []*stream
	events    atomic.Uint64
	// streamsEnded counts streams the server ended before the tool did.
	streamsEnded atomic.Int64
}

// runCleanup deletes the clients, once.
func (b *bench) runCleanup() {
	if f := b.cleanup; f != nil {
		b.cleanup = nil
		f()
	}
}

func (b *bench) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(format, args...))
}

// sample reads the server's /proc; a zero sample when it cannot.
func (b *bench) sample() procSample {
	b.mu.Lock()
	pid := b.pid
	b.mu.Unlock()
	if pid < 0 {
		return procSample{at: time.Now()}
	}
	s, err := readProc(pid)
	if err != nil {
		b.mu.Lock()
		if b.pid >= 0 {
			b.pid = -1
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("reading /proc of pid %d: %v", pid, err))
		}
		b.mu.Unlock()
		return procSample{at: time.Now()}
	}
	return s
}

func (b *bench) run(ctx context.Context) error {
	cfg := b.cfg
	rep := b.rep
	rep.URL, rep.PID = b.base, b.pid
	if len(b.posts) > 1 || b.posts[0] != b.base {
		rep.PostURLs = b.posts
	}
	var err error
	perSource := (cfg.Talkers + cfg.Slow + cfg.Sources - 1) / cfg.Sources
	if b.srcs, err = newSources(cfg.SourceBase, cfg.Sources, perSource+1); err != nil {
		return err
	}
	defer closeSources(b.srcs)
	b.admin = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Parallel + 1}}
	defer b.admin.CloseIdleConnections()
	rep.Settings = settingsReport{
		Clients: cfg.Clients, Streams: cfg.Streams, Talkers: cfg.Talkers, Rate: cfg.Rate,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), Sources: cfg.Sources,
		Slow: cfg.Slow, Utterance: cfg.Utterance,
	}
	rep.Setup.FirstSourceIP = b.srcs[0].addr.String()
	rep.Setup.LastSourceIP = b.srcs[len(b.srcs)-1].addr.String()
	selfStart := b.sampleSelf()
	rep.Server.RSSStartBytes = b.sample().rss

	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.runCleanup()
	sctx, stopStreams := context.WithCancel(ctx)
	var readers sync.WaitGroup
	defer func() {
		stopStreams()
		b.closeStreams()
		readers.Wait()
	}()

	// The streams open in two halves, memory read after each: the first
	// half may reuse heap the set-up left free (each login's Argon2id hash
	// takes 19 MiB), so the second half's growth is the cost of a stream.
	sleep(ctx, cfg.Settle)
	before := b.sample()
	rep.Server.RSSBeforeStreamsBytes = before.rss
	jobs := b.streamJobs()
	half := len(jobs) / 2
	t0 := time.Now()
	b.openStreams(sctx, jobs[:half], &readers)
	openedHalf := rep.Setup.StreamsOpened
	sleep(ctx, cfg.Settle)
	mid := b.sample()
	b.openStreams(sctx, jobs[half:], &readers)
	rep.Setup.StreamsS = time.Since(t0).Seconds() - cfg.Settle.Seconds()
	sleep(ctx, cfg.Settle)
	with := b.sample()
	rep.Server.RSSWithStreamsBytes, rep.Server.ThreadsWithStreams = with.rss, with.threads
	if n := rep.Setup.StreamsOpened; n > 0 && with.rss > 0 {
		rep.Server.RSSPerStreamAllBytes = float64(int64(with.rss)-int64(before.rss)) / float64(n)
		rep.Server.RSSPerStreamBytes = rep.Server.RSSPerStreamAllBytes
		if n2 := n - openedHalf; n2 > 0 && openedHalf > 0 {
			rep.Server.RSSPerStreamBytes = float64(int64(with.rss)-int64(mid.rss)) / float64(n2)
		}
	}
	idle := cfg.Idle
	if cfg.Talkers == 0 && idle == 0 {
		idle = cfg.Duration
	}
	if idle > 0 {
		a := b.sample()
		sleep(ctx, idle)
		z := b.sample()
		rep.Server.IdleS, rep.Server.IdleCPUPercent = z.at.Sub(a.at).Seconds(), round2(cpuPercent(a, z))
	}
	if cfg.Talkers > 0 {
		b.talk(ctx)
	}
	if cfg.Slow > 0 {
		b.checkSlow()
	}
	rep.Setup.StreamsEnded = int(b.streamsEnded.Load())
	rep.LoadCPU = round2(cpuPercent(selfStart, b.sampleSelf()))
	b.res.mu.Lock()
	for k, v := range b.res.errors {
		rep.Errors[k] += v
	}
	b.res.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// sampleSelf reads the tool's own CPU.
func (b *bench) sampleSelf() procSample {
	s, err := readProc(os.Getpid())
	if err != nil {
		return procSample{at: time.Now()}
	}
	return s
}

// setup registers and logs in every client, Parallel calls at a time, and
// arranges for them to be deleted at the end.
func (b *bench) setup(ctx context.Context) error {
	cfg := b.cfg
	var id [3]byte
	_, _ = rand.Read(id[:])
	runID := cfg.Prefix + "-" + hex.EncodeToString(id[:])
	for i := range cfg.Clients + cfg.Slow {
		name := fmt.Sprintf("%s-%d", runID, i)
		slow := i >= cfg.Clients
		if slow {
			name = fmt.Sprintf("%s-slow-%d", runID, i-cfg.Clients)
		}
		c := newClient(name, b.srcs[i%len(b.srcs)], slow, b.res)
		c.base, c.hostport = b.posts[i%len(b.posts)], b.postHosts[i%len(b.posts)]
		if slow {
			b.slow = append(b.slow, c)
		} else {
			b.clients = append(b.clients, c)
		}
	}
	all := append(append([]*clientState{}, b.clients...), b.slow...)
	t0 := time.Now()
	created := make([]bool, len(all))
	err := parallel(ctx, len(all), cfg.Parallel, func(ctx context.Context, i int) error {
		key, err := createClient(ctx, b.admin, b.base, cfg.AdminToken, all[i].id)
		all[i].key, created[i] = key, err == nil
		return err
	})
	if !cfg.Keep {
		b.cleanup = func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
			defer cancel()
			var deleted atomic.Int64
			_ = parallel(cctx, len(all), max(cfg.Parallel, 8), func(ctx context.Context, i int) error {
				if !created[i] {
					return nil
				}
				if err := deleteClient(ctx, b.admin, b.base, cfg.AdminToken, all[i].id); err != nil {
					return err
				}
				deleted.Add(1)
				return nil
			})
			b.rep.Setup.ClientsDeleted = int(deleted.Load())
		}
	}
	if err != nil {
		b.runCleanup()
		return err
	}
	b.rep.Setup.ClientsS = time.Since(t0).Seconds()
	t0 = time.Now()
	err = parallel(ctx, len(all), cfg.Parallel, func(ctx context.Context, i int) error {
		tok, err := login(ctx, all[i].src.http, all[i].base, all[i].id, all[i].key)
		all[i].token = tok
		return err
	})
	if err != nil {
		b.runCleanup()
		return err
	}
	b.rep.Setup.LoginsS = time.Since(t0).Seconds()
	return nil
}

// parallel runs f for 0..n-1, at most workers at a time, and returns the
// first error (the others stop taking work then).
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// hostPort is the host:port of a base URL, which must be plain http: the
// streams are read over plain HTTP and the utterances posted the same way.
func hostPort(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("%s: streams are read over plain HTTP: give an http:// URL", base)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u.Host, nil
}
