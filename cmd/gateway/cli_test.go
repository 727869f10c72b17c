package main

import (
	"context"
	debugbuildinfo "debug/buildinfo"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/buildinfo"
	"github.com/ovosgw/gateway/internal/dirlock"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// runCLI runs one command on dataDir and returns its standard output.
func runCLI(t *testing.T, dataDir, stdin string, args ...string) (string, error) {
	t.Helper()
	out, _, err := runCLIStderr(t, dataDir, stdin, args...)
	return out, err
}

// runCLIStderr is runCLI that returns standard error too.
func runCLIStderr(t *testing.T, dataDir, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut gatewaytest.Buffer
	env := map[string]string{"GATEWAY_DATA_DIR": dataDir}
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// newDataDir returns a data dir as the server's first start leaves it
// (its database made), for commands run without a server.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := openStore(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCommandsNeedTheServersDataDir: a command says which data dir it
// uses, and refuses one the server never made instead of making it (issue
// 12, item 26): run from another folder, it would otherwise print a key
// that the running server never accepts.
func TestCommandsNeedTheServersDataDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "data")
	empty := t.TempDir()
	for name, dir := range map[string]string{"missing": missing, "empty": empty} {
		out, errOut, err := runCLIStderr(t, dir, "", "clients", "add", "kitchen")
		if err == nil || out != "" || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "GATEWAY_DATA_DIR") {
			t.Errorf("%s data dir: out %q, err %v; want a refusal naming it", name, out, err)
		}
		if !strings.Contains(errOut, "data dir: "+dir) {
			t.Errorf("%s data dir: stderr %q does not name it", name, errOut)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing data dir was made: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("files were made in the empty dir: %v", entries)
	}

	// Beside the server, on its data dir given relative to the working
	// directory: the absolute path is named.
	g := startGateway(t, nil)
	t.Chdir(filepath.Dir(g.DataDir))
	out, errOut, err := runCLIStderr(t, filepath.Base(g.DataDir), "", "clients", "add", "kitchen")
	if err != nil || !strings.HasPrefix(out, "gwk_") || !strings.Contains(errOut, "data dir: "+g.DataDir+"\n") {
		t.Fatalf("on the server's data dir: out %q, stderr %q, err %v", out, errOut, err)
	}
	g.login(t, "kitchen", strings.TrimSpace(out))
}

// TestCommandsWorkBesideTheServer: a client added on the command line logs
// in to the running server at once; removing it ends its session.
func TestCommandsWorkBesideTheServer(t *testing.T) {
	g := startGateway(t, nil)
	key, err := runCLI(t, g.DataDir, "", "clients", "add", "cellar", "--name", "Wine cellar", "--alias", "wine")
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "gwk_") {
		t.Fatalf("printed %q, want only the key", key)
	}
	s := g.login(t, "wine", key)
	list, err := runCLI(t, g.DataDir, "", "clients", "list")
	if err != nil || !strings.Contains(list, "cellar") || !strings.Contains(list, "Wine cellar") || strings.Contains(list, key) {
		t.Fatalf("list: %q, %v", list, err)
	}
	if _, err := runCLI(t, g.DataDir, "", "clients", "add", "cellar"); api.ErrorCode(err) != api.ECONFLICT {
		t.Fatalf("adding again: %v", err)
	}
	newKey, err := runCLI(t, g.DataDir, "", "clients", "rotate-key", "cellar")
	if err != nil || strings.TrimSpace(newKey) == key {
		t.Fatalf("rotate: %q, %v", newKey, err)
	}
	// The server notices the change made by another process.
	waitFor(t, func() bool {
		return g.call(t, http.MethodGet, "/v1/clients/me", s.Token.Reveal(), nil, nil).StatusCode == http.StatusUnauthorized
	})
	s2 := g.login(t, "cellar", strings.TrimSpace(newKey))
	if _, err := runCLI(t, g.DataDir, "", "clients", "remove", "cellar"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return g.call(t, http.MethodGet, "/v1/clients/me", s2.Token.Reveal(), nil, nil).StatusCode == http.StatusUnauthorized
	})
	if _, err := runCLI(t, g.DataDir, "", "clients", "remove", "cellar"); api.ErrorCode(err) != api.ENOTFOUND {
		t.Fatalf("removing again: %v", err)
	}
}

func TestBlacklistAndIntentCommands(t *testing.T) {
	dir := newDataDir(t)
	if _, err := runCLI(t, dir, "", "blacklist", "add", "203.0.113.7", "--ttl", "1h", "--reason", "scanner"); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, dir, "", "blacklist", "list")
	if err != nil || !strings.Contains(out, "203.0.113.7/32") || !strings.Contains(out, "scanner") {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, err := runCLI(t, dir, "", "blacklist", "add", "not-an-address"); api.ErrorCode(err) != api.EINVALID {
		t.Fatalf("bad cidr: %v", err)
	}
	if _, err := runCLI(t, dir, "", "blacklist", "remove", "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	// The password comes from standard input, never from the command line.
	if _, err := runCLI(t, dir, "open sesame\n", "intents", "protect", "door.builtin:*"); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, dir, "", "intents", "list")
	if err != nil || strings.TrimSpace(out) != "door.builtin:*" {
		t.Fatalf("intents list: %q %v", out, err)
	}
	if _, err := runCLI(t, dir, "\n", "intents", "protect", "x:y"); api.ErrorCode(err) != api.EINVALID {
		t.Fatalf("empty password: %v", err)
	}
	if _, err := runCLI(t, dir, "", "intents", "unprotect", "door.builtin:*"); err != nil {
		t.Fatal(err)
	}
	assertNoPlainSecret(t, dir, "open sesame")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nonsense"}, {"clients"}, {"clients", "add"}, {"clients", "frobnicate"}, {"serve", "extra"}, {"--no-such-flag"}} {
		if _, err := runCLI(t, t.TempDir(), "", args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestBadConfigurationFailsAtStart(t *testing.T) {
	cases := map[string]map[string]string{
		"short JWT secret":   {"GATEWAY_JWT_SECRET": "too-short"},
		"bad duration":       {"GATEWAY_TOKEN_TTL": "soon"},
		"bad CIDR":           {"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/99"},
		"bad dialect":        {"GATEWAY_EMBEDDED_DIALECT": "cobol"},
		"cert without a key": {"GATEWAY_TLS_CERT": "/x.pem"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			env["GATEWAY_DATA_DIR"] = t.TempDir()
			env["GATEWAY_ADDR"] = "127.0.0.1:0"
			var out, errOut gatewaytest.Buffer
			err := run(context.Background(), nil, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
			if err == nil {
				t.Fatal("started")
			}
			for k, v := range env {
				if strings.HasSuffix(k, "SECRET") && strings.Contains(err.Error(), v) {
					t.Fatalf("the error shows the secret: %v", err)
				}
			}
		})
	}
}

// TestFirstStart: the data dir is owner-only, the admin token is printed at
// the first start only, and no secret is kept in plain text.
func TestFirstStart(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	g := startGateway(t, map[string]string{"DATA_DIR": data})
	if g.AdminToken == "" {
		t.Fatal("no admin token printed at the first start")
	}
	key := g.createClient(t, "first")
	s := g.login(t, "first", key)
	g.Stop(t)

	fi, err := os.Stat(data)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, %v", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", e.Name(), info.Mode().Perm())
		}
	}
	assertNoPlainSecret(t, data, g.AdminToken, key, s.Token.Reveal())

	g2 := startGateway(t, map[string]string{"DATA_DIR": data})
	if strings.Contains(g2.Stdout.String(), "admin token") {
		t.Fatal("the admin token was printed again")
	}
	g2.AdminToken = g.AdminToken
	// The kept hash still recognises the token, and the client survived.
	wantStatus(t, g2.call(t, http.MethodGet, "/v1/admin/clients", g.AdminToken, nil, nil), http.StatusOK)
	g2.login(t, "first", key)
}

// assertNoPlainSecret fails if any file under dir holds one of the secrets.
func assertNoPlainSecret(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				t.Errorf("%s holds a secret in plain text", path)
			}
		}
		return nil
	})
}

// `gateway --version` prints the build the binary carries (module version,
// VCS revision, Go version), and /metrics says the same in
// gateway_build_info.
func TestVersion(t *testing.T) {
	want := "gateway " + buildinfo.Read().String() + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, err := runCLI(t, t.TempDir(), "", args...)
		if err != nil || out != want {
			t.Errorf("%v: %q, %v; want %q", args, out, err, want)
		}
	}
	// The real binary: its line is what its own build information says.
	bin := gatewaytest.Binary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := debugbuildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	info := buildinfo.From(bi)
	if got := string(out); got != "gateway "+info.String()+"\n" || !strings.Contains(got, runtime.Version()) {
		t.Errorf("binary: %q, want %q", got, "gateway "+info.String())
	}

	g := startGateway(t, nil)
	bi2 := buildinfo.Read()
	sample := `gateway_build_info{goversion="` + bi2.GoVersion + `",revision="` + bi2.Revision + `",version="` + bi2.Version + `"}`
	if v := scrape(t, g, sample); v != 1 {
		t.Errorf("%s = %v, want 1", sample, v)
	}
}

// TestCommandsEndStreams: rotating a key or removing a client with the
// command line, beside a running server, ends the streams opened with the
// old sessions, as the admin API does (issue 12, item 2).
func TestCommandsEndStreams(t *testing.T) {
	g := startGateway(t, nil)
	key, err := runCLI(t, g.DataDir, "", "clients", "add", "cellar")
	if err != nil {
		t.Fatal(err)
	}
	s := g.login(t, "cellar", strings.TrimSpace(key))
	st := g.openStream(t, "cellar", bearer(s.Token.Reveal()))
	st.next(t, "ready")
	newKey, err := runCLI(t, g.DataDir, "", "clients", "rotate-key", "cellar")
	if err != nil {
		t.Fatal(err)
	}
	st.waitClosed(t)

	s2 := g.login(t, "cellar", strings.TrimSpace(newKey))
	st2 := g.openStream(t, "cellar", bearer(s2.Token.Reveal()))
	st2.next(t, "ready")
	if _, err := runCLI(t, g.DataDir, "", "clients", "remove", "cellar"); err != nil {
		t.Fatal(err)
	}
	st2.waitClosed(t)
}

// TestOneServerPerDataDir: a second server on the data dir of a running one
// is refused with a clear error, while the commands keep working beside it;
// once the first stops, a server starts there again (issue 12, item 7).
func TestOneServerPerDataDir(t *testing.T) {
	g := startGateway(t, nil)
	var out, errOut gatewaytest.Buffer
	env := map[string]string{"GATEWAY_DATA_DIR": g.DataDir, "GATEWAY_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, nil, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	if !errors.Is(err, dirlock.ErrLocked) || !strings.Contains(err.Error(), g.DataDir) {
		t.Fatalf("a second server: %v, want ErrLocked naming the data dir", err)
	}
	if strings.Contains(out.String(), "listening") {
		t.Fatalf("the second server listened: %s", out.String())
	}
	if _, err := runCLI(t, g.DataDir, "", "clients", "add", "beside"); err != nil {
		t.Fatalf("a command beside the server: %v", err)
	}
	g.Stop(t)
	g2 := startGateway(t, map[string]string{"DATA_DIR": g.DataDir})
	wantStatus(t, g2.call(t, http.MethodGet, "/healthz", "", nil, nil), http.StatusOK)
}
