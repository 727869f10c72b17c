package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/internal/redistest"
)

// runWithEnv runs a command with exactly env (full GATEWAY_* names).
func runWithEnv(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut gatewaytest.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// Two gateways on one Redis (each with its own data dir, the same JWT
// secret) share their clients: a client created through one logs in
// through the other at once; a key rotated through one ends the other's
// stream of that client and its old key there; a client deleted through
// one is gone from the other, its stream there ended.
func TestTwoGatewaysShareTheirClientsThroughRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	env := map[string]string{"REDIS_URL": srv.URL(), "JWT_SECRET": strings.Repeat("s", 32), "LOGIN_RATE": "1000"}
	g1, g2 := startGateway(t, env), startGateway(t, env)

	key := g1.createClient(t, "kitchen", "cook")
	s := g2.login(t, "cook", key)
	if s.ClientID != "kitchen" {
		t.Fatalf("logged in as %q", s.ClientID)
	}
	st := g2.openStream(t, "kitchen", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	if r := sayWait(t, g2, s.Token.Reveal(), "hello"); r.Status != api.StatusHandled {
		t.Fatalf("utterance on the second gateway: %+v", r)
	}

	var rotated api.ClientKeyResponse
	wantStatus(t, g1.call(t, http.MethodPost, "/v1/admin/clients/kitchen/key", g1.AdminToken, nil, &rotated), http.StatusOK)
	st.waitClosed(t)
	login := map[string]string{"client_id": "kitchen", "access_key": key}
	wantStatus(t, g2.call(t, http.MethodPost, "/v1/sessions", "", login, nil), http.StatusUnauthorized)
	s = g2.login(t, "kitchen", rotated.AccessKey.Reveal())
	st = g2.openStream(t, "kitchen", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)

	wantStatus(t, g1.call(t, http.MethodDelete, "/v1/admin/clients/kitchen", g1.AdminToken, nil, nil), http.StatusNoContent)
	st.waitClosed(t)
	login["access_key"] = rotated.AccessKey.Reveal()
	wantStatus(t, g2.call(t, http.MethodPost, "/v1/sessions", "", login, nil), http.StatusUnauthorized)
	var list []api.AdminClient
	wantStatus(t, g2.call(t, http.MethodGet, "/v1/admin/clients", g2.AdminToken, nil, &list), http.StatusOK)
	if len(list) != 0 {
		t.Fatalf("the second gateway still lists %+v", list)
	}
}

// `gateway clients ...` with GATEWAY_REDIS_URL works on Redis, needing no
// data dir: a client added so logs in through a running gateway on the same
// Redis, and list and remove see the gateway's own clients.
func TestClientsCommandsOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	g := startGateway(t, map[string]string{"REDIS_URL": srv.URL()})
	env := map[string]string{"GATEWAY_REDIS_URL": srv.URL(), "GATEWAY_DATA_DIR": filepath.Join(t.TempDir(), "none")}

	key, stderr, err := runWithEnv(t, env, "clients", "add", "porch", "--alias", "front")
	if err != nil {
		t.Fatalf("clients add: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "shared state in redis: "+srv.Addr) || strings.Contains(stderr, "data dir") {
		t.Fatalf("the command does not say it works on Redis:\n%s", stderr)
	}
	g.login(t, "front", strings.TrimSpace(key))
	g.createClient(t, "attic")
	out, _, err := runWithEnv(t, env, "clients", "list")
	if err != nil || !strings.Contains(out, "attic") || !strings.Contains(out, "porch") {
		t.Fatalf("clients list: %v\n%s", err, out)
	}
	if _, _, err := runWithEnv(t, env, "clients", "remove", "attic"); err != nil {
		t.Fatal(err)
	}
	var list []api.AdminClient
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/clients", g.AdminToken, nil, &list), http.StatusOK)
	if len(list) != 1 || list[0].ID != "porch" {
		t.Fatalf("the gateway lists %+v", list)
	}
}

// A GATEWAY_REDIS_URL that is no Redis URL stops the gateway at start, and
// a Redis that does not answer stops it too; neither error shows the URL's
// password.
func TestBadRedisURLFailsAtStart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	down := strings.Replace(srv.URL(), "redis://", "redis://gw:hunter2-secret@", 1)
	srv.Stop()
	for _, url := range []string{"http://gw:hunter2-secret@127.0.0.1/0", down} {
		env := map[string]string{"GATEWAY_REDIS_URL": url, "GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_DATA_DIR": t.TempDir()}
		out, stderr, err := runWithEnv(t, env, "serve")
		if err == nil {
			t.Fatalf("the gateway served with %s", url)
		}
		for _, s := range []string{err.Error(), out, stderr} {
			if strings.Contains(s, "hunter2") {
				t.Fatalf("the password shows: %v\n%s\n%s", err, out, stderr)
			}
		}
	}
}

// Redis stopped under a running gateway: logins, authenticated calls and
// new streams answer 503 with Retry-After (never let in) while it is away,
// within the store's bound on one operation, /readyz names it, and
// everything works again once it is back, without a restart of the
// gateway; with appendonly the clients are still there.
func TestGatewayWorksAgainWhenRedisIsBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	g := startGateway(t, map[string]string{"REDIS_URL": srv.URL(), "LOGIN_RATE": "1000"})
	key := g.createClient(t, "porch")
	s := g.login(t, "porch", key)
	login := map[string]string{"client_id": "porch", "access_key": key}
	open := g.openStream(t, "porch", bearer(s.Token.Reveal()))
	open.next(t, api.EventReady)

	srv.Stop()
	for _, resp := range []*http.Response{
		g.call(t, http.MethodPost, "/v1/sessions", "", login, nil),
		g.call(t, http.MethodGet, "/v1/clients/me", s.Token.Reveal(), nil, nil),
		g.call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "hello"}, nil),
	} {
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s without Redis: %d (Retry-After %q)", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	var notReady struct {
		api.Problem
		Buses []api.BusState `json:"buses"`
		Redis *api.PartState `json:"redis"`
	}
	if resp := g.call(t, http.MethodGet, "/readyz", "", nil, &notReady); resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(notReady.Detail, "redis") || notReady.Redis == nil || notReady.Redis.State != api.BusDown || len(notReady.Buses) != 1 {
		t.Fatalf("/readyz without Redis: %d %+v", resp.StatusCode, notReady)
	}
	// The open stream stays open.
	select {
	case <-open.closed:
		t.Fatal("an open stream ended when Redis went away")
	default:
	}
	srv.Restart(t)
	waitFor(t, func() bool {
		return g.call(t, http.MethodPost, "/v1/sessions", "", login, nil).StatusCode == http.StatusCreated
	})
	var ready struct {
		Status string         `json:"status"`
		Redis  *api.PartState `json:"redis"`
	}
	waitFor(t, func() bool {
		return g.call(t, http.MethodGet, "/readyz", "", nil, &ready).StatusCode == http.StatusOK
	})
	if ready.Status != "ready" || ready.Redis == nil || ready.Redis.State != api.BusUp {
		t.Fatalf("/readyz with Redis back: %+v", ready)
	}
	// The stream that stayed open gets what is said after Redis is back.
	acc := say(t, g, s.Token.Reveal(), "hello")
	if sp := decode[api.SpeakEvent](t, open.next(t, api.EventSpeak).Data); sp.UtteranceID == nil || *sp.UtteranceID != acc.ID {
		t.Fatalf("the open stream got %+v after Redis came back", sp)
	}
}

// An operator moves from the data dir to Redis and back with gateway
// export and gateway import: no key is re-issued (the client logs in with
// the key it was given at the start, on a gateway of each), the blacklist
// and the protected intent come along, and the export holds no key or
// password in plain text.
func TestExportImportBetweenTheDataDirAndRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	first := newDataDir(t)
	key, err := runCLI(t, first, "", "clients", "add", "kitchen", "--alias", "cook")
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	if _, err := runCLI(t, first, "", "blacklist", "add", "198.51.100.0/24", "--reason", "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, first, "door-password\n", "intents", "protect", "door.skill:Unlock"); err != nil {
		t.Fatal(err)
	}

	out, stderr, err := runWithEnv(t, map[string]string{"GATEWAY_DATA_DIR": first}, "export")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if strings.Contains(out, key) || strings.Contains(out, "door-password") || !strings.Contains(out, "$argon2id$") {
		t.Fatalf("the export holds a secret in plain text, or no hash:\n%s", out)
	}
	if !strings.Contains(stderr, "exported 1 client(s), 1 blacklist entr(ies), 1 protected intent(s)") {
		t.Fatalf("export said:\n%s", stderr)
	}

	// Into Redis, everything (the new data dir holds only its own files).
	second := newDataDir(t)
	toRedis := map[string]string{"GATEWAY_DATA_DIR": second, "GATEWAY_REDIS_URL": srv.URL()}
	var o, e gatewaytest.Buffer
	if err := run(context.Background(), []string{"import"}, func(k string) string { return toRedis[k] }, strings.NewReader(out), &o, &e); err != nil {
		t.Fatalf("import: %v\n%s", err, e.String())
	}
	if !strings.Contains(e.String(), "imported 1 client(s), 1 blacklist entr(ies), 1 protected intent(s)") {
		t.Fatalf("import said:\n%s", e.String())
	}
	g := startGateway(t, map[string]string{"DATA_DIR": second, "REDIS_URL": srv.URL()})
	g.login(t, "cook", key)
	var entries []api.BlacklistEntry
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/blacklist", g.AdminToken, nil, &entries), http.StatusOK)
	if len(entries) != 1 || entries[0].CIDR != "198.51.100.0/24" {
		t.Fatalf("blacklist after the import: %+v", entries)
	}
	g.Stop(t)

	// And back from Redis to a third data dir, without Redis.
	back, stderr, err := runWithEnv(t, toRedis, "export")
	if err != nil {
		t.Fatalf("export from redis: %v\n%s", err, stderr)
	}
	third := newDataDir(t)
	if err := run(context.Background(), []string{"import"}, func(k string) string { return map[string]string{"GATEWAY_DATA_DIR": third}[k] }, strings.NewReader(back), &o, &e); err != nil {
		t.Fatalf("import into the data dir: %v\n%s", err, e.String())
	}
	startGateway(t, map[string]string{"DATA_DIR": third}).login(t, "kitchen", key)
}
