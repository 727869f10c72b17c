package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ovosgw/gateway/internal/buildinfo"
	"github.com/ovosgw/gateway/internal/logs"
	"github.com/ovosgw/gateway/internal/settings"
)

// errUsage is returned after usage was printed for a bad command line.
var errUsage = errors.New("bad usage; see gateway --help")

const usage = `gateway runs the HTTP/SSE gateway to a Mycroft / OpenVoiceOS messagebus.

Usage:
  gateway [serve] [flags]                 run the server (the default)
  gateway clients add ID [--name N] [--alias A]...   register a client; prints its access key once
  gateway clients list | remove ID | rotate-key ID
  gateway blacklist add CIDR [--ttl D] [--reason R] | list | remove CIDR
  gateway export > FILE                   the clients (key hashes only), blacklist and protected intents as JSON lines
  gateway import < FILE                   put an export's records in this data dir (in Redis with --redis-url)
  gateway admin-token reset               make a new admin token (the old one stops working); prints it once
  gateway intents protect PATTERN | list | unprotect PATTERN   (the password is read from the terminal or standard input)
  gateway bus [--addr 127.0.0.1:8181] [--dialect ovos|classic]   the embedded bus and its built-in skills alone, a stand-alone assistant
  gateway healthcheck                     exit 0 when the server at --addr answers /healthz
  gateway --version                       the build: module version, VCS revision, Go version

Every command takes the settings below as flags or GATEWAY_* environment variables;
the commands work on the same --data-dir as the server.

Settings:
`

// run is the whole program: it parses the command line and the environment
// once, then serves or runs a command. Tests call it with their own args,
// environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") && cmd == "serve" {
		cmd = "version"
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "gateway", buildinfo.Read())
		return nil
	case "serve":
		fs, vals := newFlagSet("serve", stderr)
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
			return errUsage
		}
		cfg, err := loadConfig(getenv, fs, vals)
		if err != nil {
			return err
		}
		log, err := newLogger(cfg, stderr)
		if err != nil {
			return err
		}
		err = serve(ctx, cfg, log, stdout)
		if err == nil {
			// The last line: everything closed in order, the store too.
			log.Info("gateway stopped")
		}
		return err
	case "bus":
		return runBus(ctx, args, stdout, stderr)
	case "clients", "blacklist", "intents":
		return runAdminCommand(ctx, cmd, args, getenv, stdin, stdout, stderr)
	case "export", "import":
		return runTransfer(ctx, cmd, args, getenv, stdin, stdout, stderr)
	case "admin-token":
		return runAdminToken(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		fs, vals := newFlagSet("healthcheck", stderr)
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		cfg, err := loadConfig(getenv, fs, vals)
		if err != nil {
			return err
		}
		return healthcheck(ctx, cfg)
	case "help":
		fmt.Fprint(stdout, usage)
		printSettings(stdout)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", cmd)
		return errUsage
	}
}

func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := settings.Flags[config](fs, envPrefix)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		printSettings(stderr)
	}
	return fs, vals
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return errUsage
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("GATEWAY_LOG_LEVEL: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: logs.Durations})), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
