package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
	"github.com/ovosgw/gateway/internal/store"
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
	g := &components{cfg: cfg, log: log, stdout: stdout}
	defer g.cleanups.run()
	if err := g.openState(ctx); err != nil {
		return err
	}
	g.startBackground(ctx)
	if err := g.startBuses(); err != nil {
		return err
	}
	if err := g.newBridge(); err != nil {
		return err
	}
	if err := g.newServices(ctx); err != nil {
		return err
	}
	if err := g.newHTTP(); err != nil {
		return err
	}
	return g.serveHTTP(ctx)
}

// cleanups is what serve undoes when it returns, the last added first, as
// defer would.
type cleanups []func()

// add has f run when serve returns, before what was added earlier.
func (c *cleanups) add(f func()) { *c = append(*c, f) }

// run runs the cleanups in reverse order; serve defers it before adding
// any, so it reads the list through the pointer.
func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

// components is what serve builds, one concern per method, in this order: the
// store and the shared state, the background work, the buses, the bridge,
// the services, the HTTP server.
type components struct {
	cfg      config
	log      *slog.Logger
	stdout   io.Writer
	cleanups cleanups

	// The store and the shared state (openState).
	st                *store.Store
	sh                *sharedState
	secret            []byte
	adminHash         [sha256.Size]byte
	newAdminToken     api.Secret
	trusted           []netip.Prefix
	certFile, keyFile string
	bl                *blacklist.Blacklist
	bn                *bans.Bans

	// Background work (startBackground).
	bg     context.Context
	stopBG context.CancelFunc
	wg     sync.WaitGroup

	// The buses, the hub and the bridge (startBuses, newBridge).
	busURLs []string
	dial    func(context.Context, string, string) (net.Conn, error)
	streams *hub.Server
	m       *metrics.Metrics
	links   []*busclient.Client
	set     *buses.Set
	reg     *clients.Registry
	br      *bridge.Bridge

	// The services (newServices).
	sess   *sessions.Sessions
	gate   *intentgate.Gate
	talk   *utterances.Service
	limits handlers.Limits

	// The HTTP server (newHTTP).
	httpAPI *handlers.Server
}

// openState takes the data dir, opens the store and the shared state, and
// builds what the settings decide at start: secrets, address ranges, the
// TLS certificate, the blacklist and the bans.
func (g *components) openState(ctx context.Context) error {
	cfg, log := g.cfg, g.log
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// One server per data dir: a second one would keep its own streams and
	// sessions that the first one's logouts never reach.
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	g.cleanups.add(func() { lock.Release() })
	g.st, err = openStore(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	g.cleanups.add(func() { g.st.Close() })
	sh, closeShared, err := openShared(ctx, cfg, g.st, log)
	if err != nil {
		return err
	}
	g.sh = sh
	g.cleanups.add(closeShared)
	g.secret, err = jwtSecret(cfg)
	if err != nil {
		return err
	}
	g.adminHash, g.newAdminToken, err = adminTokenHash(cfg)
	if err != nil {
		return err
	}
	// Validated by loadConfig.
	g.trusted, _ = cidr.ParseList(cfg.TrustedProxies)
	blocked, _ := cidr.ParseList(cfg.IPBlacklist)
	allowed, _ := cidr.ParseList(cfg.IPAllowlist)
	g.certFile, g.keyFile = cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		var fp string
		g.certFile, g.keyFile, fp, err = selfsigned.LoadOrCreate(cfg.DataDir, selfsigned.DefaultHosts(), time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "self-signed TLS certificate SHA-256 fingerprint: %s\n", fp)
	}
	g.bl, err = blacklist.New(ctx, blacklist.Config{Static: blocked, Logger: log.With("component", "blacklist")}, sh.blacklist)
	if err != nil {
		return err
	}
	g.bn, err = bans.New(bans.Config{After: cfg.BanAfter, Window: cfg.BanWindow, For: cfg.BanFor, Allow: allowed, Logger: log.With("component", "bans"), Counter: sh.counter}, g.bl)
	return err
}

// startBackground sets up the background work: one context and one
// WaitGroup, stopped after the HTTP server has drained.
func (g *components) startBackground(ctx context.Context) {
	g.bg, g.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	g.cleanups.add(func() { g.stopBG(); g.wg.Wait() })
}

// goBG runs f in the background until the background context ends, logging
// how it ended unless that was the end of the context.
func (g *components) goBG(name string, f func(context.Context) error) {
	g.wg.Go(func() {
		if err := f(g.bg); err != nil && !errors.Is(err, context.Canceled) {
			g.log.Error("background task ended", slog.String("task", name), slog.Any("err", err))
		}
	})
}

// startBuses picks the buses: the assistants', or our embedded one with its
// skills, started here.
func (g *components) startBuses() error {
	cfg, log := g.cfg, g.log
	g.busURLs, _ = buses.ParseList(cfg.BusURL) // validated by loadConfig
	if cfg.BusURL != "" {
		return nil
	}
	a, err := startAssistant(cfg.EmbeddedDialect, cfg.EmbeddedBusSecret, 0, log)
	if err != nil {
		return err
	}
	// The links (background tasks) end before the bus they are linked
	// to: a clean shutdown closes them cleanly instead of having the bus
	// go away under them (the background's own stop runs after this one).
	g.cleanups.add(func() {
		g.stopBG()
		g.wg.Wait()
		a.Close()
	})
	g.busURLs, g.dial = []string{embeddedBusURL}, a.Bus.DialContext
	if cfg.EmbeddedBusAddr != "" {
		stopBus, addr, err := listenBus(cfg.EmbeddedBusAddr, a.Bus.Handler(), log)
		if err != nil {
			return err
		}
		g.cleanups.add(stopBus)
		fmt.Fprintf(g.stdout, "embedded messagebus: ws://%s/core\n", addr)
	}
	return nil
}

// newBridge builds the hub, one link per bus, the client registry and the
// bridge between them, and starts the pumps: every frame from every bus
// goes through the bridge to the hub.
func (g *components) newBridge() error {
	cfg, log, sh := g.cfg, g.log, g.sh
	var err error
	g.streams, err = hub.New(hub.Config{Logger: log.With("component", "hub"), Relay: sh.relay})
	if err != nil {
		return err
	}
	g.m = metrics.New()
	// One link per bus, each with its own reconnects and back-off.
	g.links = make([]*busclient.Client, len(g.busURLs))
	busLinks, setLinks := make([]bridge.Bus, len(g.busURLs)), make([]buses.Link, len(g.busURLs))
	for i, u := range g.busURLs {
		blog := log.With("component", "bus")
		if len(g.busURLs) > 1 {
			blog = blog.With("bus", buses.Label(i))
		}
		link, err := busclient.New(busclient.Config{URL: u, Name: "gateway", NetDialContext: g.dial, Logger: blog})
		if err != nil {
			return err
		}
		g.links[i], busLinks[i], setLinks[i] = link, link, link
	}
	g.set, err = buses.NewSet(g.busURLs, setLinks)
	if err != nil {
		return err
	}
	// The registry first: the bridge resolves names through it, and it
	// tells the bridge of the clients that leave (OnForget below).
	reg, err := clients.New(sh.clients, g.streams, log.With("component", "clients"))
	if err != nil {
		return err
	}
	g.reg = reg
	br, err := bridge.NewMulti(bridge.Config{
		UtteranceTimeout: cfg.UtteranceTimeout,
		Logger:           log.With("component", "bridge"),
		Observe:          g.m.ObserveUtterance,
		Resolve: func(name string) (string, bool) {
			id, err := reg.Resolve(context.Background(), name)
			return id, err == nil
		},
		// A session's bus: the first of its rendezvous order that is up.
		Pick:   g.set.Pick,
		Shared: sh.utterances,
	}, busLinks, g.streams)
	if err != nil {
		return err
	}
	g.br = br
	reg.OnForget(br.ForgetClient)
	g.set.CountInFlight(func(pos int) int64 { return br.BusStats(pos).Pending })
	g.goBG("bridge", br.Run)
	for i, link := range g.links {
		g.cleanups.add(link.Subscribe(func(f *api.Frame) { br.DispatchFrom(i, f) }))
		// The link logs its own ups and downs; the bridge ends what was
		// pending on this bus (never re-sent elsewhere), for the link's
		// whole life.
		link.WatchLink(func(up bool, _ error) {
			if !up {
				br.BusDown(i)
			}
		})
		g.goBG("bus link "+buses.Label(i), link.Run)
	}
	return nil
}

// newServices builds what the handlers serve (sessions, the intent gate,
// utterances, the limits), loads the clients, starts the watches of changes
// made elsewhere and registers every component's metrics.
func (g *components) newServices(ctx context.Context) error {
	cfg, log, sh, br, m := g.cfg, g.log, g.sh, g.br, g.m
	tok, err := tokens.New(tokens.Config{Secret: g.secret, TTL: cfg.TokenTTL, Tickets: sh.tickets}, sh.revocations)
	if err != nil {
		return err
	}
	g.sess, err = sessions.New(sessions.Config{AdminTokenHash: g.adminHash, Logger: log.With("component", "sessions"), Throttle: g.bn.Logins(), Bans: g.bn, Refusals: m.AuthFailed}, tok, sh.clients, g.streams, br)
	if err != nil {
		return err
	}
	g.gate, err = intentgate.New(g.bg, intentgate.Config{FailOpen: cfg.IntentCheck == "open", Logger: log.With("component", "intentgate")}, sh.intents, metrics.TimeDryRun(m, br), g.bn)
	if err != nil {
		return err
	}
	g.goBG("protected intents reload", g.gate.Run)
	// The gate learns the intents the buses announce, to expand wildcards
	// into the sessions' blacklists.
	for _, link := range g.links {
		g.cleanups.add(link.Subscribe(g.gate.Announce))
	}
	g.talk, err = utterances.New(g.reg, g.gate, br, api.DefaultLang)
	if err != nil {
		return err
	}
	g.limits, err = newLimits(cfg, sh)
	if err != nil {
		return err
	}
	if err := g.reg.Sync(ctx); err != nil {
		return err
	}
	g.watch()

	// Each component's own counters, read at scrape time.
	for i, link := range g.links {
		m.RegisterBus(buses.Label(i), append(link.Collectors(), br.BusCollectors(i)...)...)
	}
	m.Register(slices.Concat(g.streams.Collectors(), br.Collectors(), g.bn.Collectors(), g.gate.Collectors())...)
	m.Register(metrics.BlacklistEntries(g.bl))
	return nil
}

// watch starts the reloads of what other processes change (the command
// line; with Redis, the other replicas) within a second: the clients
// (ending the streams of clients deleted or re-keyed elsewhere), and the
// blacklist and the protected intents, which change far more often (every
// ban) and are reloaded apart, so that a ban does not walk every stream.
// Without a configured admin token, the data dir's is watched too.
func (g *components) watch() {
	log := g.log
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
	reloadClients := reloadOf(map[string]func(context.Context) error{"clients": g.reg.Sync})
	reloadAdmin := reloadOf(map[string]func(context.Context) error{"blacklist": g.bl.Refresh, "protected intents": g.gate.Refresh})
	if g.sh.redis == nil {
		g.goBG("store watch", func(ctx context.Context) error {
			g.st.Watch(ctx, time.Second, func() { reloadClients(ctx); reloadAdmin(ctx) })
			return nil
		})
	}
	g.sh.run(g.goBG, g.streams, g.br, reloadClients, reloadAdmin, log)

	if g.cfg.AdminToken == "" {
		g.goBG("admin token watch", func(ctx context.Context) error {
			watchAdminToken(ctx, g.cfg.DataDir, time.Second, g.adminHash, g.sess.SetAdminTokenHash, log.With("component", "sessions"))
			return nil
		})
	}
}

// newHTTP builds the HTTP API over the services.
func (g *components) newHTTP() error {
	cfg, m, sess := g.cfg, g.m, g.sess
	hcfg := handlers.Config{
		Logger:         g.log.With("component", "http"),
		TrustedProxies: g.trusted,
		SecureCookies:  g.certFile != "",
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
	var err error
	g.httpAPI, err = handlers.New(hcfg, handlers.Deps{
		Sessions: sess, Clients: g.reg, Utterances: g.talk, Streams: g.streams,
		Ready: g.sh.readiness(g.set), Blacklist: g.bl, ProtectedIntents: g.gate, Limits: g.limits,
	})
	return err
}

// serveHTTP listens, serves until ctx ends or the server fails, then shuts
// down.
func (g *components) serveHTTP(ctx context.Context) error {
	cfg, log, stdout := g.cfg, g.log, g.stdout
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           g.httpAPI,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// No WriteTimeout: it would cut streams; each stream write has its own deadline.
	}
	scheme := "http"
	if g.certFile != "" {
		scheme = "https"
	}
	served := make(chan error, 1)
	go func() {
		if g.certFile != "" {
			// ServeTLS speaks HTTP/2 too, so a browser is not held to six
			// streams per origin.
			served <- srv.ServeTLS(ln, g.certFile, g.keyFile)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	base := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	switch {
	case g.newAdminToken != "" && cfg.PrintAdminToken:
		fmt.Fprintf(stdout, "admin token (shown once, only its hash is kept): %s\n", g.newAdminToken.Reveal())
	case g.newAdminToken != "":
		// Kept out of this output (docker logs, journald): the operator
		// makes the token on the host, where it shows on their terminal.
		fmt.Fprintln(stdout, "admin token made but not shown (GATEWAY_PRINT_ADMIN_TOKEN=false); run gateway admin-token reset on this host, with the same data dir, to get one")
	}
	fmt.Fprintf(stdout, "gateway listening on %s (console %s/)\n", base, base)
	shown := make([]string, len(g.busURLs))
	for i, u := range g.busURLs {
		shown[i] = buses.Redact(u)
	}
	log.Info("gateway started", slog.String("addr", ln.Addr().String()), slog.String("bus", strings.Join(shown, ",")))

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	g.shutdown(ctx, srv)
	return nil
}

// shutdown ends the pending utterances, tells the streams to end, drains the
// HTTP server and waits for every stream's reconnect hint, then closes the
// hub; serve's cleanups do the rest.
func (g *components) shutdown(ctx context.Context, srv *http.Server) {
	log := g.log
	log.Info("shutting down")
	// Pending utterances end first (status error), so that their done
	// events are on the streams before the streams are told to reconnect.
	g.br.Close()
	g.httpAPI.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", slog.Any("err", err))
		_ = srv.Close()
	}
	// HTTP/1.1 streams run outside the server's handlers: wait for their
	// reconnect hints too.
	if err := g.httpAPI.Wait(sctx); err != nil {
		log.Warn("shutdown: streams still open", slog.Any("err", err))
	}
	g.streams.Close()
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
	limits := handlers.Limits{
		LoginPerAddr: login, UtterancePerClient: perClient, UtterancePerAddr: perAddr,
		StreamsPerClient: ratelimit.NewCaps(cfg.StreamsPerClient), StreamsPerAddr: ratelimit.NewCaps(cfg.StreamsPerAddr),
	}
	if sh.redis != nil {
		// Counted across replicas, under this replica's lease.
		limits.StreamsPerClient = sh.streams.Caps("client", cfg.StreamsPerClient)
		limits.StreamsPerAddr = sh.streams.Caps("addr", cfg.StreamsPerAddr)
	}
	return limits, nil
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
