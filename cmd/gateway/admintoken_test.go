package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// resetAdminTokenCLI runs `gateway admin-token reset` on dataDir and returns
// the token it printed, checking that only the token is on standard output
// and that it is not on standard error.
func resetAdminTokenCLI(t *testing.T, dataDir string) string {
	t.Helper()
	out, errOut, err := runCLIStderr(t, dataDir, "", "admin-token", "reset")
	if err != nil {
		t.Fatalf("admin-token reset: %v (stderr %q)", err, errOut)
	}
	tok := strings.TrimSpace(out)
	if !strings.HasPrefix(tok, "gwa_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("admin-token reset printed %q, want only the token", out)
	}
	if strings.Contains(errOut, tok) {
		t.Fatalf("the token is on standard error too: %q", errOut)
	}
	return tok
}

// adminStatus is the status of an admin route called with token.
func adminStatus(t *testing.T, g *gateway, token string) int {
	t.Helper()
	return g.call(t, http.MethodGet, "/v1/admin/clients", token, nil, nil).StatusCode
}

// TestAdminTokenResetBesideTheServer: `gateway admin-token reset` makes a
// new admin token that the running server accepts within seconds, while it
// refuses the old one; neither is kept in plain text, nor written to the
// server's output.
func TestAdminTokenResetBesideTheServer(t *testing.T) {
	g := startGateway(t, nil)
	old := g.AdminToken
	if old == "" {
		t.Fatal("no admin token printed at the first start")
	}
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/clients", old, nil, nil), http.StatusOK)

	tok := resetAdminTokenCLI(t, g.DataDir)
	if tok == old {
		t.Fatal("the reset made the same token")
	}
	waitFor(t, func() bool { return adminStatus(t, g, tok) == http.StatusOK })
	if st := adminStatus(t, g, old); st != http.StatusForbidden && st != http.StatusUnauthorized {
		t.Fatalf("the old admin token: status %d, want it refused", st)
	}
	if strings.Contains(g.Stdout.String()+g.Logs.String(), tok) {
		t.Fatal("the new admin token is in the server's output")
	}
	assertNoPlainSecret(t, g.DataDir, old, tok)
	entries, _ := os.ReadDir(g.DataDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), adminTokenFile+".") {
			t.Errorf("a temporary file is left behind: %s", e.Name())
		}
	}

	// A restart keeps the new token, and prints none.
	g.Stop(t)
	g2 := startGateway(t, map[string]string{"DATA_DIR": g.DataDir})
	if strings.Contains(g2.Stdout.String(), "gwa_") {
		t.Fatalf("a token was printed again: %q", g2.Stdout.String())
	}
	wantStatus(t, g2.call(t, http.MethodGet, "/v1/admin/clients", tok, nil, nil), http.StatusOK)
}

// TestAdminTokenNotPrinted: with GATEWAY_PRINT_ADMIN_TOKEN=false the first
// start shows no token, only how to get one, and `gateway admin-token
// reset` on the host gives the token that the server then accepts.
func TestAdminTokenNotPrinted(t *testing.T) {
	g := startGateway(t, map[string]string{"PRINT_ADMIN_TOKEN": "false"})
	if g.AdminToken != "" || strings.Contains(g.Stdout.String()+g.Logs.String(), "gwa_") {
		t.Fatalf("a token was printed; stdout:\n%s\nlogs:\n%s", g.Stdout.String(), g.Logs.String())
	}
	if !strings.Contains(g.Stdout.String(), "gateway admin-token reset") {
		t.Fatalf("stdout does not say how to get the token:\n%s", g.Stdout.String())
	}
	tok := resetAdminTokenCLI(t, g.DataDir)
	waitFor(t, func() bool { return adminStatus(t, g, tok) == http.StatusOK })
	if strings.Contains(g.Stdout.String()+g.Logs.String(), "gwa_") {
		t.Fatalf("a token is in the server's output; stdout:\n%s\nlogs:\n%s", g.Stdout.String(), g.Logs.String())
	}
	assertNoPlainSecret(t, g.DataDir, tok)
}

// TestAdminTokenResetRefused: the command refuses when the token comes
// from the environment (the data dir's hash is not used then), and on a
// data dir the server never made; it changes nothing either way.
func TestAdminTokenResetRefused(t *testing.T) {
	dir := newDataDir(t)
	var out, errOut gatewaytest.Buffer
	env := map[string]string{"GATEWAY_DATA_DIR": dir, "GATEWAY_ADMIN_TOKEN": "an-admin-token-from-a-secret"}
	err := run(context.Background(), []string{"admin-token", "reset"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_ADMIN_TOKEN") || out.String() != "" {
		t.Fatalf("with GATEWAY_ADMIN_TOKEN set: out %q, err %v; want a refusal", out.String(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, adminTokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused reset wrote the hash: %v", err)
	}

	empty := t.TempDir()
	if out, err := runCLI(t, empty, "", "admin-token", "reset"); err == nil || out != "" {
		t.Fatalf("on an empty dir: out %q, err %v; want a refusal", out, err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("files were made in the empty dir: %v", entries)
	}
	for _, args := range [][]string{{"admin-token"}, {"admin-token", "show"}, {"admin-token", "reset", "extra"}} {
		if _, err := runCLI(t, dir, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
