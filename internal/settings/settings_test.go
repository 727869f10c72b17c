package settings

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Addr    string        `env:"ADDR" envDefault:"127.0.0.1:8080" help:"where to listen"`
	Timeout time.Duration `env:"TIMEOUT" envDefault:"5s" help:"how long to wait"`
	Secret  string        `env:"SECRET" noflag:"true" help:"a secret"`
	Count   int           `env:"COUNT" help:"how many"`
}

func load(t *testing.T, environ map[string]string, args ...string) (testConfig, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := Flags[testConfig](fs, "T_")
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return Load[testConfig]("T_", func(k string) string { return environ[k] }, fs, vals)
}

func TestOfReadsTheTags(t *testing.T) {
	got := Of[testConfig]()
	want := []Setting{
		{Field: "Addr", Env: "ADDR", Flag: "addr", Default: "127.0.0.1:8080", Help: "where to listen"},
		{Field: "Timeout", Env: "TIMEOUT", Flag: "timeout", Default: "5s", Help: "how long to wait"},
		{Field: "Secret", Env: "SECRET", Flag: "secret", Help: "a secret", NoFlag: true},
		{Field: "Count", Env: "COUNT", Flag: "count", Help: "how many"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d settings, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDefaultsEnvironmentAndFlags(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil || cfg.Addr != "127.0.0.1:8080" || cfg.Timeout != 5*time.Second {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = load(t, map[string]string{"T_ADDR": ":9", "T_SECRET": "s3cret", "T_COUNT": "3"})
	if err != nil || cfg.Addr != ":9" || cfg.Secret != "s3cret" || cfg.Count != 3 {
		t.Fatalf("environment: %+v, %v", cfg, err)
	}
	// A flag that is set wins over its variable; one that is not set does
	// not hide it.
	cfg, err = load(t, map[string]string{"T_ADDR": ":9", "T_COUNT": "3"}, "--addr", ":10")
	if err != nil || cfg.Addr != ":10" || cfg.Count != 3 {
		t.Fatalf("flag over environment: %+v, %v", cfg, err)
	}
}

func TestNoFlagForASecret(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Flags[testConfig](fs, "T_")
	if fs.Lookup("secret") != nil {
		t.Fatal("a noflag setting has a flag")
	}
	if err := fs.Parse([]string{"--secret", "x"}); err == nil {
		t.Fatal("--secret was accepted")
	}
}

func TestErrorsNameTheVariableNotTheValue(t *testing.T) {
	_, err := load(t, map[string]string{"T_TIMEOUT": "hunter2-not-a-duration", "T_COUNT": "also-secret"})
	if err == nil {
		t.Fatal("bad values were accepted")
	}
	msg := err.Error()
	for _, want := range []string{"T_TIMEOUT", "T_COUNT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	for _, secret := range []string{"hunter2", "also-secret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows the value", msg)
		}
	}
}
