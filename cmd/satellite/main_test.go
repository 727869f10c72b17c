package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/buildinfo"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/embedded/skills"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

const waitFor = 20 * time.Second

func getenvOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeKey(t *testing.T, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestChatCommand is the README's line: echo ... | satellite chat.
func TestChatCommand(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	key := g.CreateClient(t, "desk")
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flags and key file", []string{"chat", "--gateway", g.URL, "--client", "desk", "--key-file", writeKey(t, key)}, nil},
		{"environment", []string{"chat"}, map[string]string{"SATELLITE_GATEWAY": g.URL, "SATELLITE_CLIENT": "desk", "SATELLITE_KEY": key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr gatewaytest.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			err := run(ctx, tt.args, getenvOf(tt.env), strings.NewReader("hello\ntell me a joke\n"), &stdout, &stderr)
			if err != nil {
				t.Fatalf("run = %v; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 2 || !strings.Contains(strings.ToLower(lines[0]), "hello") || lines[1] == "" {
				t.Errorf("stdout %q", stdout.String())
			}
			if strings.Contains(stderr.String(), key) {
				t.Error("the key was logged")
			}
		})
	}
}

func TestBadCommandLines(t *testing.T) {
	keyFile := writeKey(t, "gwk_secret-key-value")
	empty := writeKey(t, "")
	wide := writeKey(t, "gwk_secret-key-value")
	os.Chmod(wide, 0o644)
	base := map[string]string{"SATELLITE_GATEWAY": "http://127.0.0.1:1", "SATELLITE_CLIENT": "desk", "SATELLITE_KEY": "gwk_secret-key-value"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, base, "bad usage"},
		{"unknown command", []string{"serve"}, base, "bad usage"},
		{"key as a flag is refused", []string{"chat", "--key", "gwk_secret-key-value"}, with("SATELLITE_KEY", ""), "bad usage"},
		{"stray argument", []string{"chat", "hello"}, base, "bad usage"},
		{"no gateway", []string{"chat"}, with("SATELLITE_GATEWAY", ""), "--gateway"},
		{"no client", []string{"chat"}, with("SATELLITE_CLIENT", ""), "--client"},
		{"no key", []string{"chat"}, with("SATELLITE_KEY", ""), "access key is required"},
		{"empty key file", []string{"chat", "--key-file", empty}, base, "is empty"},
		{"missing key file", []string{"chat", "--key-file", keyFile + ".nope"}, base, "key file"},
		{"bad duration", []string{"bridge", "--local-timeout", "soon"}, base, "LOCAL_TIMEOUT"},
		{"bad log level", []string{"chat", "--log-level", "loud"}, base, "log level"},
		{"pin over plain http", []string{"chat", "--fingerprint", strings.Repeat("ab", 32)}, base, "https"},
		{"bad fingerprint", []string{"chat", "--gateway", "https://127.0.0.1:1", "--fingerprint", "12:34"}, base, "fingerprint"},
		{"bad gateway URL", []string{"chat", "--gateway", "ftp://x"}, base, "scheme"},
		{"bad local bus URL", []string{"bridge", "--local-bus", "http://127.0.0.1:8181/core"}, base, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr gatewaytest.Buffer
			err := run(context.Background(), tt.args, getenvOf(tt.env), strings.NewReader(""), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error about %q", err, tt.want)
			}
			if strings.Contains(err.Error()+stderr.String()+stdout.String(), "gwk_secret-key-value") {
				t.Error("the key shows")
			}
		})
	}
	t.Run("readable key file is warned about", func(t *testing.T) {
		if w := keyFileWarning(wide); !strings.Contains(w, "chmod 600") {
			t.Errorf("warning %q", w)
		}
		if w := keyFileWarning(keyFile); w != "" {
			t.Errorf("warning %q for a private file", w)
		}
	})
	t.Run("help", func(t *testing.T) {
		var stdout gatewaytest.Buffer
		if err := run(context.Background(), []string{"help"}, getenvOf(nil), strings.NewReader(""), &stdout, &stdout); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"-gateway", "-client", "-key-file", "-local-bus", "-ca-file", "-fingerprint", "SATELLITE_KEY"} {
			if !strings.Contains(stdout.String(), f) {
				t.Errorf("help lacks %s", f)
			}
		}
	})
}

// TestCommandHelp: each command has its own help, naming the flags it reads
// and not the other's (issue 12, item 25).
func TestCommandHelp(t *testing.T) {
	help := func(cmd string) string {
		t.Helper()
		var stdout, stderr gatewaytest.Buffer
		if err := run(context.Background(), []string{cmd, "--help"}, getenvOf(nil), strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		return stdout.String() + stderr.String()
	}
	chat, bridge := help("chat"), help("bridge")
	if chat == bridge {
		t.Fatal("chat and bridge print the same help")
	}
	for _, c := range []struct {
		text, has, lacks string
	}{
		{chat, "satellite chat", "-local-bus"},
		{chat, "-answer-timeout", "-local-timeout"},
		{bridge, "satellite bridge", "-answer-timeout"},
		{bridge, "-local-bus", "-lang "},
	} {
		if !strings.Contains(c.text, c.has) || strings.Contains(c.text, c.lacks) {
			t.Errorf("help %q: want %q and not %q", c.text[:min(len(c.text), 40)], c.has, c.lacks)
		}
	}
	for _, text := range []string{chat, bridge} {
		for _, f := range []string{"-gateway", "-client", "-key-file", "SATELLITE_KEY"} {
			if !strings.Contains(text, f) {
				t.Errorf("help lacks %s", f)
			}
		}
	}
}

// TestChatExitStatus: a line that got no answer makes chat fail (exit 1),
// and the error names the program once.
func TestChatExitStatus(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	key := g.CreateClient(t, "attic")
	var stdout, stderr gatewaytest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	env := map[string]string{"SATELLITE_GATEWAY": g.URL, "SATELLITE_CLIENT": "attic", "SATELLITE_KEY": key}
	err := run(ctx, []string{"chat"}, getenvOf(env), strings.NewReader("hello\nblorp frobnicate\n"), &stdout, &stderr)
	if err == nil {
		t.Fatalf("run = nil with a line not understood; stderr:\n%s", stderr.String())
	}
	if line := errorLine(err); strings.Count(line, "satellite:") != 1 {
		t.Errorf("error line %q", line)
	}
	if line := errorLine(errors.New("configuration: x")); line != "satellite: configuration: x" {
		t.Errorf("error line %q", line)
	}
}

// TestBridgeCommand wires the whole bridge through run: a device's bus with
// a greeting-only assistant, the real gateway, and `satellite bridge`.
func TestBridgeCommand(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	key := g.CreateClient(t, "kitchen")

	bus, err := messagebus.New(messagebus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bus.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { bus.Close() })
	busURL := "ws" + strings.TrimPrefix(srv.URL, "http") + messagebus.Route

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	newPeer := func(name string) *busclient.Client {
		c, err := busclient.New(busclient.Config{URL: busURL, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { c.Run(ctx) })
		return c
	}
	local := newPeer("skills")
	sk, err := skills.New(skills.Config{Enabled: []string{skills.SkillGreeting}}, local)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { sk.Run(ctx) })
	dev := newPeer("device")
	frames := make(chan *api.Frame, 1024)
	dev.Subscribe(func(f *api.Frame) {
		select {
		case frames <- f:
		default:
		}
	})

	var stderr gatewaytest.Buffer
	runErr := make(chan error, 1)
	go func() {
		runErr <- run(ctx, []string{"bridge", "--gateway", g.URL, "--client", "kitchen", "--local-bus", busURL, "--log-level", "debug"},
			getenvOf(map[string]string{"SATELLITE_KEY": key}), strings.NewReader(""), &gatewaytest.Buffer{}, &stderr)
	}()
	gatewaytest.EventuallyWithin(t, waitFor, "the bridge to come up", func() bool {
		return bus.Peers() >= 3 && strings.Contains(stderr.String(), "Connected to remote host")
	})
	data, _ := json.Marshal(map[string]any{"utterances": []string{"tell me a joke"}, "lang": "en-us"})
	sctx, scancel := context.WithTimeout(ctx, waitFor)
	defer scancel()
	if err := dev.Send(sctx, api.Message{Type: api.TypeUtterance, Data: data, Context: json.RawMessage(`{"source":"audio","destination":["skills"]}`)}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(waitFor)
	for got := false; !got; {
		select {
		case f := <-frames:
			got = f.Type == api.TypeSpeak && f.Route.Destination.Has("audio") && f.Route.Source.Has("satellite")
		case <-timeout:
			t.Fatalf("no answer for the speaker; stderr:\n%s", stderr.String())
		}
	}
	for _, phrase := range []string{"Waiting for intent handling before asking server", "Intent failure detected, ending wait", "Asking server for answer", "msg=Speak"} {
		if !strings.Contains(stderr.String(), phrase) {
			t.Errorf("the log lacks %q", phrase)
		}
	}
	if strings.Contains(stderr.String(), key) {
		t.Error("the key was logged")
	}
	cancel()
	select {
	case err := <-runErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after cancel")
	}
}

// `satellite --version` prints the build the binary carries.
func TestVersion(t *testing.T) {
	want := "satellite " + buildinfo.Read().String() + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var out, errOut strings.Builder
		if err := run(context.Background(), args, getenvOf(nil), strings.NewReader(""), &out, &errOut); err != nil || out.String() != want {
			t.Errorf("%v: %q, %v; want %q", args, out.String(), err, want)
		}
	}
}
