package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	project "github.com/ovosgw/gateway"
	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/handlers"
	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/blacklist"
	"github.com/ovosgw/gateway/internal/bridge"
	"github.com/ovosgw/gateway/internal/buses"
	"github.com/ovosgw/gateway/internal/cidr"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/dirlock"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/internal/intentgate"
	"github.com/ovosgw/gateway/internal/metrics"
	"github.com/ovosgw/gateway/internal/ratelimit"
	"github.com/ovosgw/gateway/internal/selfsigned"
	"github.com/ovosgw/gateway/internal/sessions"
	"github.com/ovosgw/gateway/internal/tokens"
	"github.com/ovosgw/gateway/internal/utterances"
	"github.com/ovosgw/gateway/middleware"
	"github.com/ovosgw/gateway/web"
)

// maxHeaderBytes caps a request's line and headers. The API needs a token
// (about 400 bytes) and, from a browser, a few KiB of cookies; net/http's
// default (1 MiB, plus slack) let a few hundred unfinished headers hold
// hundreds of MiB. Past it the server answers 431 itself, before routing.
const maxHeaderBytes = 16 << 10

// embeddedBusURL is what the gateway dials for its in-process bus; the host
// is never resolved (the bus's own dialer connects in memory).
const embeddedBusURL = "ws://embedded/core"

// serve builds every component, serves until ctx ends, then shuts down in
// order: pending utterances ended (their done events published), streams
// told to end, HTTP server drained and every stream's reconnect hint sent,
// hub closed, bus link closed, embedded assistant stopped, store closed.
func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// One server per data dir: a second one would keep its own streams and
	// sessions that the first one's logouts never reach.
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	st, err := openStore(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	sh, closeShared, err := openShared(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer closeShared()
	cs := sh.clients
	secret, err := jwtSecret(cfg)
	if err != nil {
		return err
	}
	adminHash, newAdminToken, err := adminTokenHash(cfg)
	if err != nil {
		return err
	}
	// Validated by loadConfig.
	trusted, _ := cidr.ParseList(cfg.TrustedProxies)
	blocked, _ := cidr.ParseList(cfg.IPBlacklist)
	allowed, _ := cidr.ParseList(cfg.IPAllowlist)
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		var fp string
		certFile, keyFile, fp, err = selfsigned.LoadOrCreate(cfg.DataDir, selfsigned.DefaultHosts(), time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "self-signed TLS certificate SHA-256 fingerprint: %s\n", fp)
	}
	bl, err := blacklist.New(ctx, blacklist.Config{Static: blocked, Logger: log.With("component", "blacklist")}, sh.blacklist)
	if err != nil {
		return err
	}
	bn, err := bans.New(bans.Config{After: cfg.BanAfter, Window: cfg.BanWindow, For: cfg.BanFor, Allow: allowed, Logger: log.With("component", "bans"), Counter: sh.counter}, bl)
	if err != nil {
		return err
	}

	// Background work lives under one context and one WaitGroup, stopped
	// after the HTTP server has drained.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	goBG := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(bg); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background task ended", slog.String("task", name), slog.Any("err", err))
			}
		})
	}
	defer func() { stopBG(); wg.Wait() }()

	// The buses: the assistants', or our embedded one with its skills.
	busURLs, _ := buses.ParseList(cfg.BusURL) // validated by loadConfig
	var dial func(context.Context, string, string) (net.Conn, error)
	if cfg.BusURL == "" {
		a, err := startAssistant(cfg.EmbeddedDialect, cfg.EmbeddedBusSecret, 0, log)
		if err != nil {
			return err
		}
		// The links (background tasks) end before the bus they are linked
		// to: a clean shutdown closes them cleanly instead of having the bus
		// go away under them (the deferred stop above runs after this one).
		defer func() {
			stopBG()
			wg.Wait()
			a.Close()
		}()
		busURLs, dial = []string{embeddedBusURL}, a.Bus.DialContext
		if cfg.EmbeddedBusAddr != "" {
			stopBus, addr, err := listenBus(cfg.EmbeddedBusAddr, a.Bus.Handler(), log)
			if err != nil {
				return err
			}
			defer stopBus()
			fmt.Fprintf(stdout, "embedded messagebus: ws://%s/core\n", addr)
		}
	}

	streams, err := hub.New(hub.Config{Logger: log.With("component", "hub"), Relay: sh.relay})
	if err != nil {
		return err
	}
	m := metrics.New()
	// One link per bus, each with its own reconnects and back-off.
	links := make([]*busclient.Client, len(busURLs))
	busLinks, setLinks := make([]bridge.Bus, len(busURLs)), make([]buses.Link, len(busURLs))
	for i, u := range busURLs {
		blog := log.With("component", "bus")
		if len(busURLs) > 1 {
			blog = blog.With("bus", buses.Label(i))
		}
		link, err := busclient.New(busclient.Config{URL: u, Name: "gateway", NetDialContext: dial, Logger: blog})
		if err != nil {
			return err
		}
		links[i], busLinks[i], setLinks[i] = link, link, link
	}
	set, err := buses.NewSet(busURLs, setLinks)
	if err != nil {
		return err
	}
	// The registry first: the bridge resolves names through it, and it
	// tells the bridge of the clients that leave (OnForget below).
	reg, err := clients.New(cs, streams, log.With("component", "clients"))
	if err != nil {
		return err
	}
	br, err := bridge.NewMulti(bridge.Config{
		UtteranceTimeout: cfg.UtteranceTimeout,
		Logger:           log.With("component", "bridge"),
		Observe:          m.ObserveUtterance,
		Resolve: func(name string) (string, bool) {
			id, err := reg.Resolve(context.Background(), name)
			return id, err == nil
		},
		// A session's bus: the first of its rendezvous order that is up.
		Pick:   set.Pick,
		Shared: sh.utterances,
	}, busLinks, streams)
	if err != nil {
		return err
	}
	reg.OnForget(br.ForgetClient)
	set.CountInFlight(func(pos int) int64 { return br.BusStats(pos).Pending })
	// The pumps: every frame from every bus goes through the bridge to the
	// hub.
	goBG("bridge", br.Run)
	for i, link := range links {
		unsubscribe := link.Subscribe(func(f *api.Frame) { br.DispatchFrom(i, f) })
		defer unsubscribe()
		// The link logs its own ups and downs; the bridge ends what was
		// pending on this bus (never re-sent elsewhere), for the link's
		// whole life.
		link.WatchLink(func(up bool, _ error) {
			if !up {
				br.BusDown(i)
			}
		})
		goBG("bus link "+buses.Label(i), link.Run)
	}

	tok, err := tokens.New(tokens.Config{Secret: secret, TTL: cfg.TokenTTL, Tickets: sh.tickets}, sh.revocations)
	if err != nil {
		return err
	}
	sess, err := sessions.New(sessions.Config{AdminTokenHash: adminHash, Logger: log.With("component", "sessions"), Throttle: bn.Logins(), Bans: bn, Refusals: m.AuthFailed}, tok, cs, streams, br)
	if err != nil {
		return err
	}
	gate, err := intentgate.New(bg, intentgate.Config{FailOpen: cfg.IntentCheck == "open", Logger: log.With("component", "intentgate")}, sh.intents, metrics.TimeDryRun(m, br), bn)
	if err != nil {
		return err
	}
	// The gate learns the intents the buses announce, to expand wildcards
	// into the sessions' blacklists.
	for _, link := range links {
		defer link.Subscribe(gate.Announce)()
	}
	talk, err := utterances.New(reg, gate, br, api.DefaultLang)
	if err != nil {
		return err
	}
	limits, err := newLimits(cfg, sh)
	if err != nil {
		return err
	}
	if err := reg.Sync(ctx); err != nil {
		return err
	}
	// What other processes change (the command line; with Redis, the
	// other replicas) is reloaded within a second: the clients (ending the
	// streams of clients deleted or re-keyed elsewhere), and the blacklist
	// and the protected intents, which change far more often (every ban)
	// and are reloaded apart, so that a ban does not walk every stream.
	var reloading sync.Mutex // the watches call from their goroutines; Sync wants one at a time
	reloadOf := func(syncs map[string]func(context.Context) error) func(context.Context) {
		return func(ctx context.Context) {
			reloading.Lock()
			defer reloading.Unlock()
			for name, sync := range syncs {
				if err := sync(ctx); err != nil {
					log.Warn("sync after an outside change", slog.String("what", name), slog.Any("err", err))
				}
			}
		}
	}
	reloadClients := reloadOf(map[string]func(context.Context) error{"clients": reg.Sync})
	reloadAdmin := reloadOf(map[string]func(context.Context) error{"blacklist": bl.Refresh, "protected intents": gate.Refresh})
	if sh.redis == nil {
		goBG("store watch", func(ctx context.Context) error {
			st.Watch(ctx, time.Second, func() { reloadClients(ctx); reloadAdmin(ctx) })
			return nil
		})
	}
	sh.run(goBG, streams, br, reloadClients, reloadAdmin, log)

	if cfg.AdminToken == "" {
		goBG("admin token watch", func(ctx context.Context) error {
			watchAdminToken(ctx, cfg.DataDir, time.Second, adminHash, sess.SetAdminTokenHash, log.With("component", "sessions"))
			return nil
		})
	}

	// Each component's own counters, read at scrape time.
	for i, link := range links {
		m.RegisterBus(buses.Label(i), append(link.Collectors(), br.BusCollectors(i)...)...)
	}
	m.Register(slices.Concat(streams.Collectors(), br.Collectors(), bn.Collectors(), gate.Collectors())...)
	m.Register(metrics.BlacklistEntries(bl))
	hcfg := handlers.Config{
		Logger:         log.With("component", "http"),
		TrustedProxies: trusted,
		SecureCookies:  certFile != "",
		MaxWait:        cfg.MaxWait,
		BodyTimeout:    cfg.BodyTimeout,
		Heartbeat:      cfg.Heartbeat,
		OpenAPI:        project.OpenAPI(),
		Console:        web.Handler(),
		Observe:        m.ObserveRequest,
		CORSOrigins:    cfg.CORSOrigins,
		AllowedHosts:   allowedHosts(cfg, os.Hostname),
		// The sessions decide what a refused credential counts for.
		AuthFailed: func(r *http.Request, err error) { sess.Refused(r.Context(), middleware.ClientAddr(r), err) },
	}
	if cfg.Metrics != "off" {
		hcfg.Metrics, hcfg.MetricsAdmin = m.Handler(), cfg.Metrics == "admin"
	}
	httpAPI, err := handlers.New(hcfg, handlers.Deps{
		Sessions: sess, Clients: reg, Utterances: talk, Streams: streams,
		Ready: sh.readiness(set), Blacklist: bl, ProtectedIntents: gate, Limits: limits,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           httpAPI,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// No WriteTimeout: it would cut streams; each stream write has its own deadline.
	}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	served := make(chan error, 1)
	go func() {
		if certFile != "" {
			// ServeTLS speaks HTTP/2 too, so a browser is not held to six
			// streams per origin.
			served <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	base := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	switch {
	case newAdminToken != "" && cfg.PrintAdminToken:
		fmt.Fprintf(stdout, "admin token (shown once, only its hash is kept): %s\n", newAdminToken.Reveal())
	case newAdminToken != "":
		// Kept out of this output (docker logs, journald): the operator
		// makes the token on the host, where it shows on their terminal.
		fmt.Fprintln(stdout, "admin token made but not shown (GATEWAY_PRINT_ADMIN_TOKEN=false); run gateway admin-token reset on this host, with the same data dir, to get one")
	}
	fmt.Fprintf(stdout, "gateway listening on %s (console %s/)\n", base, base)
	shown := make([]string, len(busURLs))
	for i, u := range busURLs {
		shown[i] = buses.Redact(u)
	}
	log.Info("gateway started", slog.String("addr", ln.Addr().String()), slog.String("bus", strings.Join(shown, ",")))

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down")
	// Pending utterances end first (status error), so that their done
	// events are on the streams before the streams are told to reconnect.
	br.Close()
	httpAPI.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", slog.Any("err", err))
		_ = srv.Close()
	}
	// HTTP/1.1 streams run outside the server's handlers: wait for their
	// reconnect hints too.
	if err := httpAPI.Wait(sctx); err != nil {
		log.Warn("shutdown: streams still open", slog.Any("err", err))
	}
	streams.Close()
	return nil
}

// newLimits builds the rate limits and stream caps from the settings: the
// rate limits in Redis when the replicas share their state (so that they
// hold across replicas), in this process otherwise.
func newLimits(cfg config, sh *sharedState) (handlers.Limits, error) {
	limiter := func(name string, rate float64, burst int) (middleware.Limiter, error) {
		if sh.redis != nil {
			return sh.redis.RateLimiter(name, rate, burst)
		}
		return ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst})
	}
	login, err := limiter("login-addr", cfg.LoginRate, int(10*cfg.LoginRate))
	if err != nil {
		return handlers.Limits{}, err
	}
	perClient, err := limiter("utterance-client", cfg.UtteranceRate, int(2*cfg.UtteranceRate))
	if err != nil {
		return handlers.Limits{}, err
	}
	perAddr, err := limiter("utterance-addr", cfg.AddrRate, int(2*cfg.AddrRate))
	if err != nil {
		return handlers.Limits{}, err
	}
	return handlers.Limits{
		LoginPerAddr: login, UtterancePerClient: perClient, UtterancePerAddr: perAddr,
		StreamsPerClient: ratelimit.NewCaps(cfg.StreamsPerClient), StreamsPerAddr: ratelimit.NewCaps(cfg.StreamsPerAddr),
	}, nil
}

// listenBus serves the embedded bus on addr for other peers.
func listenBus(addr string, h http.Handler, log *slog.Logger) (stop func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("embedded bus listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, ln.Addr().String(), nil
}
