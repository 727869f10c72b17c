package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// config is one run of the load tool, from the command line.
type config struct {
	URL        string        // base URLs of the gateway's replicas, comma separated
	URLs       []string      // URL split, trailing slashes trimmed
	AdminToken string        // the gateway's admin token
	Clients    int           // clients registered for the run
	Streams    int           // event streams per client
	Talkers    int           // concurrent talkers (talker i speaks as client i mod Clients)
	Rate       float64       // utterances per second over all talkers; 0 is flat out
	Duration   time.Duration // measured run
	Warmup     time.Duration // run before the measured one, not counted
	Idle       time.Duration // streams held open, nobody talking, before the run: heartbeat cost
	Settle     time.Duration // pause before each memory reading
	Timeout    time.Duration // how long an utterance may take to end
	Utterance  string        // what the talkers say
	Sources    int           // 127.x source addresses; 0 chooses
	SourceBase string        // first source address
	Slow       int           // extra clients whose stream stops reading
	SlowRate   float64       // utterances per second of each slow client
	PID        int           // the server's pid; 0 finds it by the listening port
	Format     string        // table, json or both
	Prefix     string        // client id prefix
	Keep       bool          // keep the clients after the run
	Parallel   int           // concurrent set-up calls (logins cost an Argon2id hash each)
	Exec       string        // a gateway binary to start (and time) instead of -url
	Env        []string      // KEY=VALUE settings for -exec (GATEWAY_ prefix optional)
	Restarts   int           // with -exec: starts measured after the first
}

// errHelp is returned when -h asked for the usage, which was printed.
var errHelp = errors.New("help requested")

const usageText = `gatewaybench loads a running gateway and reports latencies, throughput,
errors and the server's memory and CPU.

Usage:
  GATEWAY_ADMIN_TOKEN=gwa_... gatewaybench -url http://127.0.0.1:8080 [flags]
  GATEWAY_ADMIN_TOKEN=gwa_... gatewaybench -url http://a:8080,http://b:8080 [flags]
  gatewaybench -exec ./bin/gateway -env UTTERANCE_RATE=100000 [flags]

The admin token may also be given with -admin-token. With -exec the tool
starts the binary on 127.0.0.1:0 with a fresh data dir, times its start, runs
the load against it and stops it.

Several URLs are replicas of one gateway (GATEWAY_REDIS_URL): every stream
is opened on the first, and the /proc readings are of its process; client i
logs in and posts its utterances to URL 2 + (i mod (n-1)), so with two URLs
streams are on the first and everything else on the second. The clients are
created and deleted through the first.

Flags:
`

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseConfig reads the command line; getenv supplies GATEWAY_ADMIN_TOKEN.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	var env multiFlag
	fs := flag.NewFlagSet("gatewaybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the gateway; a comma-separated list of replicas: streams on the first, logins and utterances on the others")
	fs.StringVar(&c.AdminToken, "admin-token", "", "admin token (default $GATEWAY_ADMIN_TOKEN, which is better: other users see a flag in ps)")
	fs.IntVar(&c.Clients, "clients", 1, "clients to register and log in")
	fs.IntVar(&c.Streams, "streams", 1, "event streams per client")
	fs.IntVar(&c.Talkers, "talkers", 1, "concurrent talkers; talker i speaks as client i mod -clients; 0 holds the streams idle")
	fs.Float64Var(&c.Rate, "rate", 0, "utterances per second over all talkers (open loop); 0 is flat out: each talker waits for done, then speaks again")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured run")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "run before the measured one, not counted")
	fs.DurationVar(&c.Idle, "idle", 0, "hold the streams idle this long before the run and report the server's CPU meanwhile (heartbeats)")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "pause before each memory reading")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "how long an utterance may take to end before it counts as an error")
	fs.StringVar(&c.Utterance, "utterance", "hello", "what the talkers say")
	fs.IntVar(&c.Sources, "sources", 0, "source addresses to spread connections over, from -source-base; 0: one per 10 clients (at most 250)")
	fs.StringVar(&c.SourceBase, "source-base", "127.0.0.10", "first source address (the next ones follow it)")
	fs.IntVar(&c.Slow, "slow", 0, "extra clients whose stream stops reading after ready, each speaking -slow-rate times a second")
	fs.Float64Var(&c.SlowRate, "slow-rate", 10, "utterances per second of each slow client")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id for /proc readings; 0 finds the process listening on -url's port")
	fs.StringVar(&c.Format, "format", "table", "output: table, json or both")
	fs.StringVar(&c.Prefix, "prefix", "bench", "client id prefix (a random run id follows it)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the clients after the run")
	fs.IntVar(&c.Parallel, "parallel", runtime.NumCPU(), "concurrent set-up calls (each login is an Argon2id hash on the server)")
	fs.StringVar(&c.Exec, "exec", "", "start this gateway binary on 127.0.0.1:0 with a fresh data dir, time its start, and load it")
	fs.Var(&env, "env", "KEY=VALUE setting for -exec, repeatable (GATEWAY_ prefix optional)")
	fs.IntVar(&c.Restarts, "restarts", 1, "with -exec: restarts on the same data dir whose start is timed too (the load runs on the last)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Env = env
	if c.AdminToken == "" {
		c.AdminToken = getenv("GATEWAY_ADMIN_TOKEN")
	}
	return c, c.validate()
}

func (c *config) validate() error {
	var errs []error
	c.URLs = nil
	for _, s := range strings.Split(c.URL, ",") {
		c.URLs = append(c.URLs, strings.TrimRight(strings.TrimSpace(s), "/"))
	}
	if c.Exec == "" {
		for i, s := range c.URLs {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("-url entry %d %q is not an http(s) URL", i+1, s))
			}
		}
		if c.AdminToken == "" {
			errs = append(errs, errors.New("-admin-token (or GATEWAY_ADMIN_TOKEN) is required"))
		}
	}
	if c.Exec != "" && len(c.URLs) > 1 {
		errs = append(errs, errors.New("-exec starts one gateway: give several -url replicas without -exec"))
	}
	if c.Clients < 1 || c.Streams < 0 || c.Talkers < 0 || c.Slow < 0 || c.Parallel < 1 || c.Restarts < 0 {
		errs = append(errs, errors.New("-clients and -parallel must be at least 1; -streams, -talkers, -slow and -restarts not negative"))
	}
	if c.Talkers > 0 && c.Streams < 1 {
		errs = append(errs, errors.New("talkers need -streams of at least 1: latencies are read on the stream"))
	}
	if c.Rate < 0 || c.SlowRate <= 0 {
		errs = append(errs, errors.New("-rate must not be negative and -slow-rate must be positive"))
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Idle < 0 || c.Settle < 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("-duration and -timeout must be positive; -warmup, -idle and -settle not negative"))
	}
	if strings.TrimSpace(c.Utterance) == "" {
		errs = append(errs, errors.New("-utterance must not be empty"))
	}
	if c.Sources < 0 || c.Sources > 250 {
		errs = append(errs, errors.New("-sources must be within 0..250"))
	}
	switch c.Format {
	case "table", "json", "both":
	default:
		errs = append(errs, errors.New("-format must be table, json or both"))
	}
	if c.Prefix == "" || !validSlug(c.Prefix) || len(c.Prefix) > 30 {
		errs = append(errs, errors.New("-prefix must be 1..30 of a-z, 0-9, - and _"))
	}
	for _, kv := range c.Env {
		if !strings.Contains(kv, "=") {
			errs = append(errs, fmt.Errorf("-env %q is not KEY=VALUE", kv))
		}
	}
	if c.Sources == 0 {
		c.Sources = min(max((c.Clients+c.Slow+9)/10, 1), 250)
	}
	return errors.Join(errs...)
}

// validSlug reports whether s is made of the characters a client id allows.
func validSlug(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}
