package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/logs"
	"github.com/ovosgw/gateway/internal/settings"
)

// envPrefix starts every environment variable of the satellite.
const envPrefix = "SATELLITE_"

// maxKeyFile bounds the key file: a key is a short line.
const maxKeyFile = 4096

// config is every setting of the satellite, from the environment
// (SATELLITE_*) and the matching flags (--local-bus for
// SATELLITE_LOCAL_BUS); a flag wins. Key has no flag: an access key on the
// command line is seen by every user of the machine and kept in the shell's
// history, so it comes from --key-file or SATELLITE_KEY only.
type config struct {
	Gateway       string        `env:"GATEWAY" help:"the gateway, e.g. https://gateway.example:8080"`
	Client        string        `env:"CLIENT" help:"this device's client id (or alias) at the gateway"`
	KeyFile       string        `env:"KEY_FILE" help:"file holding the client's access key (else SATELLITE_KEY)"`
	Key           api.Secret    `env:"KEY" noflag:"true" help:"the client's access key (environment only)"`
	LocalBus      string        `env:"LOCAL_BUS" envDefault:"ws://127.0.0.1:8181/core" help:"the device's own messagebus (bridge)"`
	CAFile        string        `env:"CA_FILE" help:"PEM file of the CA (or the self-signed certificate) to trust for a gateway on TLS"`
	Fingerprint   string        `env:"FINGERPRINT" help:"SHA-256 fingerprint of the gateway's self-signed certificate, to pin it"`
	Lang          string        `env:"LANG" help:"language of typed utterances, e.g. en-us (chat; empty: the gateway's default)"`
	LocalTimeout  time.Duration `env:"LOCAL_TIMEOUT" envDefault:"10s" help:"how long the local assistant has before the gateway is asked (bridge)"`
	AnswerTimeout time.Duration `env:"ANSWER_TIMEOUT" envDefault:"1m" help:"how long one typed utterance waits for its answer (chat)"`
	LogLevel      string        `env:"LOG_LEVEL" help:"debug, info, warn or error (default: info for bridge, warn for chat)"`
	LogFormat     string        `env:"LOG_FORMAT" envDefault:"text" help:"log format: text or json"`
}

// newFlagSet returns the flags of a command: one string flag per setting
// (but the key), parsed later by env along with the environment.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("satellite "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := settings.Flags[config](fs, envPrefix)
	fs.Usage = func() {
		w := fs.Output()
		text, ok := commandUsage[name]
		if !ok {
			text = usage
		}
		fmt.Fprint(w, text)
		// Only the flags the command reads.
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		shown.SetOutput(w)
		fs.VisitAll(func(f *flag.Flag) {
			if only, ok := onlyFor[f.Name]; !ok || name == "" || only == name {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.PrintDefaults()
		fmt.Fprintf(w, "  SATELLITE_KEY\n    \tthe client's access key, from the environment only (or --key-file)\n")
	}
	return fs, vals
}

// onlyFor names the flags that one command reads; the others serve both.
var onlyFor = map[string]string{
	"local-bus":      "bridge",
	"local-timeout":  "bridge",
	"lang":           "chat",
	"answer-timeout": "chat",
}

// commandUsage is each command's own help (satellite chat --help).
var commandUsage = map[string]string{
	"chat": `Usage: satellite chat [flags]

Reads utterances line by line from standard input, says each to the gateway and prints each
spoken answer to this session on a line of its own (after a "> " prompt on a terminal). A
protected intent's password is asked on the terminal. Exits 1 when an utterance got no answer
(refused, not understood, timed out).

  echo "what time is it" | SATELLITE_KEY=... satellite chat --gateway http://127.0.0.1:8080 --client kitchen

Flags (each also a SATELLITE_* environment variable):
`,
	"bridge": `Usage: satellite bridge [flags]

Runs beside a device's own assistant: follows each utterance on the device's messagebus, lets
the local assistant answer first, and asks the gateway only when it fails (or does not answer
within --local-timeout); the gateway's speech (and audio service messages) are re-emitted on the
device's bus. Runs until stopped.

  SATELLITE_KEY=... satellite bridge --gateway http://gateway.lan:8080 --client kitchen

Flags (each also a SATELLITE_* environment variable):
`,
}

// loadConfig builds the config from getenv and the flags that were set, and
// reads the access key.
func loadConfig(getenv func(string) string, fs *flag.FlagSet, vals map[string]*string) (config, error) {
	cfg, err := settings.Load[config](envPrefix, getenv, fs, vals)
	if err != nil {
		return config{}, err
	}
	if cfg.Gateway == "" {
		return config{}, errors.New("configuration: --gateway (SATELLITE_GATEWAY) is required")
	}
	if cfg.Client == "" {
		return config{}, errors.New("configuration: --client (SATELLITE_CLIENT) is required")
	}
	if cfg.KeyFile != "" {
		key, err := readKeyFile(cfg.KeyFile)
		if err != nil {
			return config{}, err
		}
		cfg.Key = key
	}
	if cfg.Key == "" {
		return config{}, errors.New("configuration: the access key is required: --key-file PATH or SATELLITE_KEY")
	}
	if cfg.LocalTimeout <= 0 || cfg.AnswerTimeout <= 0 {
		return config{}, errors.New("configuration: timeouts must be positive")
	}
	return cfg, nil
}

// readKeyFile reads the access key: the file's first line, trimmed.
func readKeyFile(path string) (api.Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return "", fmt.Errorf("key file %s is larger than %d bytes", path, maxKeyFile)
	}
	key, _, _ := strings.Cut(string(b), "\n")
	key = strings.TrimSpace(key)
	if key == "" {
		return "", fmt.Errorf("key file %s is empty", path)
	}
	return api.Secret(key), nil
}

// keyFileWarning says when the key file can be read by other users.
func keyFileWarning(path string) string {
	if path == "" {
		return ""
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&fs.FileMode(0o077) == 0 {
		return ""
	}
	return fmt.Sprintf("the key file %s can be read by other users (mode %v); chmod 600 it", path, st.Mode().Perm())
}

// newLogger builds the logger on stderr; def is the command's level when
// none is set.
func newLogger(cfg config, def slog.Level, stderr io.Writer) (*slog.Logger, error) {
	level := def
	if cfg.LogLevel != "" {
		if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
			return nil, fmt.Errorf("configuration: log level %q: want debug, info, warn or error", cfg.LogLevel)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: logs.Durations})), nil
	}
	return nil, fmt.Errorf("configuration: log format %q: want text or json", cfg.LogFormat)
}
