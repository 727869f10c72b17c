package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/buses"
	"github.com/ovosgw/gateway/internal/cidr"
	"github.com/ovosgw/gateway/internal/redisstore"
	"github.com/ovosgw/gateway/internal/settings"
	"github.com/ovosgw/gateway/middleware"
)

// envPrefix starts every environment variable of the gateway.
const envPrefix = "GATEWAY_"

// config is every setting of the gateway, read once from the environment
// (GATEWAY_*) and the matching command-line flags (--bus-url for
// GATEWAY_BUS_URL); a flag wins over the environment. The help tag is what
// `gateway --help` and the README's table say.
type config struct {
	Addr              string        `env:"ADDR" envDefault:"127.0.0.1:8080" help:"address the HTTP API listens on"`
	BusURL            string        `env:"BUS_URL" help:"messagebus of the assistant, e.g. ws://127.0.0.1:8181/core, or several assistants' buses comma-separated (each session is pinned to one); empty starts the embedded bus with its built-in skills"`
	EmbeddedBusAddr   string        `env:"EMBEDDED_BUS_ADDR" help:"when set, the embedded bus also listens here (ws://ADDR/core) so other peers can join it; a web page (an upgrade with an Origin header) never can"`
	EmbeddedBusSecret api.Secret    `env:"EMBEDDED_BUS_SECRET" help:"when set, a peer joining the embedded bus at EMBEDDED_BUS_ADDR must present it in its Authorization header, as Bearer <secret> or as the password of HTTP Basic (a bus URL ws://gateway:SECRET@host/core, as another gateway sends it) (at least 16 characters); stock OVOS peers cannot, so leave it empty for them and keep the bus on loopback"`
	EmbeddedDialect   string        `env:"EMBEDDED_DIALECT" envDefault:"ovos" help:"how the built-in skills answer: ovos, or classic (mycroft-core)"`
	DataDir           string        `env:"DATA_DIR" envDefault:"./data" help:"directory of the client database and the generated secrets"`
	RedisURL          api.Secret    `env:"REDIS_URL" help:"Redis that replicas share, redis://[user:pass@]host:port/db (rediss:// for TLS, unix:///path?db=N): clients, blacklist, protected intents, sessions, tickets and the streams' events; empty: everything in the data dir and this process"`
	JWTSecret         api.Secret    `env:"JWT_SECRET" help:"HMAC secret for session tokens, at least 32 bytes; empty: generated once and kept in the data dir"`
	TokenTTL          time.Duration `env:"TOKEN_TTL" envDefault:"1h" help:"lifetime of a session token (a token claiming a longer one is refused, so shortening it ends longer-lived tokens at once)"`
	AdminToken        api.Secret    `env:"ADMIN_TOKEN" help:"the admin token; empty: generated and printed at first start, only its hash is kept"`
	PrintAdminToken   bool          `env:"PRINT_ADMIN_TOKEN" envDefault:"true" help:"print the admin token generated at first start on standard output; false keeps it out of the output (docker logs, journald): get one with gateway admin-token reset"`
	TLSCert           string        `env:"TLS_CERT" help:"PEM certificate file: serve HTTPS"`
	TLSKey            string        `env:"TLS_KEY" help:"PEM private key file for TLS_CERT"`
	TLSSelfSigned     bool          `env:"TLS_SELF_SIGNED" envDefault:"false" help:"serve HTTPS with an ECDSA P-256 certificate made and kept in the data dir (its SHA-256 fingerprint is printed for pinning)"`
	AllowedHosts      []string      `env:"ALLOWED_HOSTS" envSeparator:"," help:"comma-separated host names the API answers to (the Host header; DNS rebinding defence), * for any; an IP address is always accepted; empty: localhost, the name in ADDR, and this machine's host name when ADDR listens on every interface"`
	CORSOrigins       []string      `env:"CORS_ORIGINS" envSeparator:"," help:"comma-separated origins whose pages may call the API (Bearer tokens only, no cookies)"`
	IPBlacklist       []string      `env:"IP_BLACKLIST" envSeparator:"," help:"comma-separated CIDRs refused on every route"`
	IPAllowlist       []string      `env:"IP_ALLOWLIST" envSeparator:"," help:"comma-separated CIDRs never banned automatically"`
	TrustedProxies    []string      `env:"TRUSTED_PROXIES" envSeparator:"," help:"comma-separated CIDRs whose X-Forwarded-For is believed"`
	BanAfter          int           `env:"BAN_AFTER" envDefault:"5" help:"failed attempts from one address that ban it"`
	BanWindow         time.Duration `env:"BAN_WINDOW" envDefault:"10m" help:"window in which failed attempts are counted"`
	BanFor            time.Duration `env:"BAN_FOR" envDefault:"1h" help:"how long an automatic ban lasts (doubling for a repeat offender)"`
	UtteranceTimeout  time.Duration `env:"UTTERANCE_TIMEOUT" envDefault:"30s" help:"an utterance with no end signal by then ends with status timeout"`
	IntentCheck       string        `env:"INTENT_CHECK" envDefault:"closed" help:"when the bus cannot say which intent an utterance would match and an intent is protected: closed refuses (503), open lets it through"`
	LoginRate         float64       `env:"LOGIN_RATE" envDefault:"1" help:"logins per second allowed from one address (burst 10x)"`
	UtteranceRate     float64       `env:"UTTERANCE_RATE" envDefault:"20" help:"utterances per second allowed per client (burst 2x)"`
	AddrRate          float64       `env:"ADDR_RATE" envDefault:"200" help:"utterances per second allowed from one address (burst 2x)"`
	StreamsPerClient  int           `env:"STREAMS_PER_CLIENT" envDefault:"16" help:"open event streams allowed per client"`
	StreamsPerAddr    int           `env:"STREAMS_PER_ADDR" envDefault:"512" help:"open event streams allowed per address"`
	BodyTimeout       time.Duration `env:"BODY_TIMEOUT" envDefault:"10s" help:"longest a client may take to send a request body once its headers are in (408 after; the event stream has no body)"`
	MaxWait           time.Duration `env:"MAX_WAIT" envDefault:"2m" help:"longest ?wait= accepted on POST /v1/utterances"`
	Heartbeat         time.Duration `env:"HEARTBEAT" envDefault:"15s" help:"longest silence on an event stream before a keepalive comment (keep it under your proxies' idle timeout)"`
	Metrics           string        `env:"METRICS" envDefault:"on" help:"/metrics: on, off, or admin (requires the admin token)"`
	LogFormat         string        `env:"LOG_FORMAT" envDefault:"text" help:"log format: text or json"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"info" help:"log level: debug, info, warn or error"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s" help:"how long requests in flight may take to finish at shutdown"`
}

// loadConfig builds the config from getenv and the flags that were set,
// and validates it.
func loadConfig(getenv func(string) string, fs *flag.FlagSet, vals map[string]*string) (config, error) {
	cfg, err := settings.Load[config](envPrefix, getenv, fs, vals)
	if err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

// validate checks what the tags cannot say: lengths, ranges, and settings that
// go together.
func (c config) validate() error {
	var errs []error
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("GATEWAY_JWT_SECRET must be at least 32 bytes"))
	}
	if c.EmbeddedBusSecret != "" && len(c.EmbeddedBusSecret) < 16 {
		errs = append(errs, errors.New("GATEWAY_EMBEDDED_BUS_SECRET must be at least 16 characters"))
	}
	if c.EmbeddedBusSecret != "" && c.EmbeddedBusAddr == "" {
		errs = append(errs, errors.New("GATEWAY_EMBEDDED_BUS_SECRET needs GATEWAY_EMBEDDED_BUS_ADDR"))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("GATEWAY_ADMIN_TOKEN must be at least 16 characters"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together"))
	}
	if c.BusURL != "" {
		if _, err := buses.ParseList(c.BusURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.RedisURL != "" {
		if err := redisstore.CheckURL(c.RedisURL.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TokenTTL < 2*time.Second {
		errs = append(errs, errors.New("GATEWAY_TOKEN_TTL must be at least 2s"))
	}
	if c.Heartbeat < 100*time.Millisecond || c.Heartbeat > 15*time.Second {
		errs = append(errs, errors.New("GATEWAY_HEARTBEAT must be between 100ms and 15s"))
	}
	if c.UtteranceTimeout <= 0 || c.MaxWait <= 0 || c.BodyTimeout <= 0 || c.ShutdownTimeout <= 0 || c.BanWindow <= 0 || c.BanFor <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.BanAfter < 1 {
		errs = append(errs, errors.New("GATEWAY_BAN_AFTER must be at least 1"))
	}
	if c.TLSSelfSigned && c.TLSCert != "" {
		errs = append(errs, errors.New("GATEWAY_TLS_SELF_SIGNED and GATEWAY_TLS_CERT exclude each other"))
	}
	switch c.IntentCheck {
	case "closed", "open":
	default:
		errs = append(errs, errors.New("GATEWAY_INTENT_CHECK must be closed or open"))
	}
	if c.LoginRate <= 0 || c.UtteranceRate <= 0 || c.AddrRate <= 0 || c.StreamsPerClient < 1 || c.StreamsPerAddr < 1 {
		errs = append(errs, errors.New("rates and stream caps must be positive"))
	}
	for _, h := range c.AllowedHosts {
		if h != "*" && (h == "" || strings.ContainsAny(h, "/ \t@")) {
			errs = append(errs, fmt.Errorf("GATEWAY_ALLOWED_HOSTS: %q is not a host name such as gateway.lan", h))
		}
	}
	for _, o := range c.CORSOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("GATEWAY_CORS_ORIGINS: %q is not an origin such as https://app.example", o))
		}
	}
	switch c.EmbeddedDialect {
	case "ovos", "classic":
	default:
		errs = append(errs, errors.New("GATEWAY_EMBEDDED_DIALECT must be ovos or classic"))
	}
	switch c.Metrics {
	case "on", "off", "admin":
	default:
		errs = append(errs, errors.New("GATEWAY_METRICS must be on, off or admin"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, errors.New("GATEWAY_LOG_FORMAT must be text or json"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	for _, list := range []struct {
		name  string
		cidrs []string
	}{{"GATEWAY_IP_BLACKLIST", c.IPBlacklist}, {"GATEWAY_IP_ALLOWLIST", c.IPAllowlist}, {"GATEWAY_TRUSTED_PROXIES", c.TrustedProxies}} {
		if _, err := cidr.ParseList(list.cidrs); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", list.name, err))
		}
	}
	return errors.Join(errs...)
}

// printSettings writes the settings table for --help.
func printSettings(w io.Writer) {
	for _, s := range settings.Of[config]() {
		def := s.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%-20s %s%-20s default %-16s %s\n", s.Flag, envPrefix, s.Env, def, s.Help)
	}
}

// allowedHosts is GATEWAY_ALLOWED_HOSTS, or what GATEWAY_ADDR implies:
// localhost, the name ADDR listens on when it is a name, and this machine's
// host name when ADDR listens on every interface (0.0.0.0, ::, or no host),
// where clients on the network reach it by that name or by an address (IP
// addresses are always accepted). Another name, such as a DNS alias of the
// machine, must be configured.
func allowedHosts(cfg config, hostname func() (string, error)) []string {
	if len(cfg.AllowedHosts) > 0 {
		return cfg.AllowedHosts
	}
	hosts := []string{"localhost"}
	host := middleware.HostName(cfg.Addr)
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		if name, err := hostname(); err == nil && name != "" {
			hosts = append(hosts, name)
		}
	} else if err != nil {
		hosts = append(hosts, host)
	}
	return hosts
}
