package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/buildinfo"
	"github.com/ovosgw/gateway/satellite"
)

// errUsage is returned after usage was printed for a bad command line.
var errUsage = errors.New("bad usage; see satellite --help")

// logoutTimeout bounds the logout at exit.
const logoutTimeout = 3 * time.Second

// Local bus reconnects: a device's bus restarts with its assistant, so come
// back quickly.
const (
	localMinBackoff = 500 * time.Millisecond
	localMaxBackoff = 5 * time.Second
)

const usage = `satellite is the device client of the voice gateway.

Usage:
  satellite chat [flags]     read utterances line by line from standard input, print each spoken answer
  satellite bridge [flags]   beside a device's own assistant: answer locally first, ask the gateway on an intent failure
  satellite --version        the build: module version, VCS revision, Go version

  echo "what time is it" | SATELLITE_KEY=... satellite chat --gateway http://127.0.0.1:8080 --client kitchen

Flags (each also a SATELLITE_* environment variable):
`

// run is the whole program: it parses the command line and the environment
// once, then runs chat or bridge. Tests call it with their own args,
// environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "chat", "bridge":
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "satellite", buildinfo.Read())
		return nil
	case "help", "-h", "--help", "-help":
		fs, _ := newFlagSet("", stdout)
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", cmd)
		return errUsage
	}
	fs, vals := newFlagSet(cmd, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	cfg, err := loadConfig(getenv, fs, vals)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cmd == "chat" {
		level = slog.LevelWarn
	}
	log, err := newLogger(cfg, level, stderr)
	if err != nil {
		return err
	}
	if w := keyFileWarning(cfg.KeyFile); w != "" {
		log.Warn(w)
	}
	gw, err := newGateway(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		// Revoke the token at once rather than leave it valid until it
		// expires.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logoutTimeout)
		defer cancel()
		if err := gw.Logout(lctx); err != nil {
			log.Debug("logout failed", "err", err)
		}
	}()
	if cmd == "chat" {
		return runChat(ctx, cfg, log, gw, stdin, stdout, stderr)
	}
	return runBridge(ctx, cfg, log, gw)
}

// newGateway builds the gateway's client with the TLS trust asked for.
func newGateway(cfg config, log *slog.Logger) (*apiclient.Client, error) {
	tc, err := apiclient.TLSConfig(cfg.CAFile, cfg.Fingerprint)
	if err != nil {
		return nil, err
	}
	if tc != nil && !strings.HasPrefix(strings.ToLower(cfg.Gateway), "https://") {
		return nil, errors.New("configuration: --ca-file and --fingerprint need an https:// gateway")
	}
	return apiclient.New(apiclient.Config{
		BaseURL:   cfg.Gateway,
		ClientID:  cfg.Client,
		AccessKey: cfg.Key,
		TLSConfig: tc,
		Logger:    log.With("component", "gateway"),
		UserAgent: "ovosgw-satellite",
	})
}

func runChat(ctx context.Context, cfg config, log *slog.Logger, gw *apiclient.Client, stdin io.Reader, stdout, stderr io.Writer) error {
	prompt := ""
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prompt = "> "
	}
	chat, err := satellite.NewChat(satellite.ChatConfig{
		Prompt:        prompt,
		Lang:          cfg.Lang,
		AnswerTimeout: cfg.AnswerTimeout,
		Password:      terminalPassword,
		Logger:        log.With("component", "chat"),
	}, gw)
	if err != nil {
		return err
	}
	return chat.Run(ctx, stdin, stdout, stderr)
}

func runBridge(ctx context.Context, cfg config, log *slog.Logger, gw *apiclient.Client) error {
	local, err := busclient.New(busclient.Config{
		URL:        cfg.LocalBus,
		Name:       "local",
		Logger:     log.With("component", "local-bus"),
		MinBackoff: localMinBackoff,
		MaxBackoff: localMaxBackoff,
	})
	if err != nil {
		return err
	}
	bridge, err := satellite.NewForwarder(satellite.ForwarderConfig{
		LocalTimeout: cfg.LocalTimeout,
		Logger:       log.With("component", "bridge"),
	}, gw, local)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	busDone := make(chan error, 1)
	go func() { busDone <- local.Run(ctx) }()
	err = bridge.Run(ctx)
	cancel()
	if berr := <-busDone; err == nil {
		err = berr
	}
	return err
}

// terminalPassword asks for a protected intent's password on the
// controlling terminal, without echo: standard input carries the
// utterances, and a password never comes from the command line.
func terminalPassword(_ context.Context, intent string, invalid bool) (api.Secret, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", satellite.ErrNoPassword
	}
	defer tty.Close()
	if invalid {
		fmt.Fprintln(tty, "Wrong password.")
	}
	fmt.Fprintf(tty, "Password for %s: ", strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, intent))
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return api.Secret(strings.TrimSpace(string(b))), nil
}
