package main

// The security regression suite: each attack has its own test, and a
// comment on why the rule exists.

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/selfsigned"
)

// failLogins makes n failed logins from g's address.
func failLogins(t *testing.T, g *gateway, n int) {
	t.Helper()
	for range n {
		resp := g.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "nobody", "access_key": "wrong"}, nil)
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("failed login answered %d", resp.StatusCode)
		}
	}
}

func problemType(t *testing.T, resp *http.Response) string {
	t.Helper()
	var p api.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("no problem body: %v", err)
	}
	return p.Type
}

// Guessing keys from one address must stop: after BAN_AFTER failures the
// address is refused on every route, while others are served.
func TestRepeatedFailuresBanTheAddress(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "3", "BAN_WINDOW": "1m", "BAN_FOR": "1h"})
	attacker, bystander := g.from(t, "127.0.0.2"), g.from(t, "127.0.0.3")
	failLogins(t, attacker, 3)
	resp := attacker.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil)
	if resp.StatusCode != http.StatusForbidden || problemType(t, resp) != "/problems/blacklisted" {
		t.Fatalf("banned address on /openapi.yaml: %d", resp.StatusCode)
	}
	// The health checks answer whatever the address (issue 17, item 3).
	wantStatus(t, attacker.call(t, http.MethodGet, "/healthz", "", nil, nil), http.StatusOK)
	wantStatus(t, attacker.call(t, http.MethodGet, "/readyz", "", nil, nil), http.StatusOK)
	wantStatus(t, bystander.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)

	var list []api.BlacklistEntry
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/blacklist", g.AdminToken, nil, &list), http.StatusOK)
	if len(list) != 1 || list[0].CIDR != "127.0.0.2/32" || list[0].Source != api.BlacklistAuto || list[0].ExpiresAt == nil {
		t.Fatalf("blacklist %+v", list)
	}
	// The reason, which the console shows, writes the window as people do.
	if !strings.Contains(list[0].Reason, "within 1m (") {
		t.Errorf("reason %q", list[0].Reason)
	}
	// A right key from the banned address does not lift the ban.
	key := g.createClient(t, "victim")
	resp = attacker.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "victim", "access_key": key}, nil)
	wantStatus(t, resp, http.StatusForbidden)
	// The admin lifts it.
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/blacklist/"+url.PathEscape("127.0.0.2/32"), g.AdminToken, nil, nil), http.StatusNoContent)
	wantStatus(t, attacker.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
}

// A banned caller is told until when and what to do: problem+json with
// Retry-After, and a browser asking for a page gets a page, not raw JSON
// (issue 17, item 7).
func TestBannedCallerIsToldUntilWhen(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "BAN_FOR": "1h"})
	a := g.from(t, "127.0.0.14")
	failLogins(t, a, 2)
	var p api.Problem
	resp := a.call(t, http.MethodGet, "/openapi.yaml", "", nil, &p)
	wantStatus(t, resp, http.StatusForbidden)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 3000 || ra > 3600 {
		t.Errorf("Retry-After %q, want about an hour", resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(p.Detail, "until "+time.Now().UTC().Format("2006-")) {
		t.Errorf("detail %q says not until when", p.Detail)
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	page, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusForbidden || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "This address is blocked") || !strings.Contains(string(body), "until") {
		t.Errorf("a browser was answered %d %s:\n%s", page.StatusCode, page.Header.Get("Content-Type"), body)
	}
}

// An admin cannot blacklist their own address by mistake: an entry that
// covers the requesting address is refused (409) unless confirmed, and once
// confirmed the admin token still reaches the admin routes to remove it
// (issue 17, item 6).
func TestAdminCannotBlockThemselvesByMistake(t *testing.T) {
	g := startGateway(t, map[string]string{"IP_ALLOWLIST": ""})
	admin := g.from(t, "127.0.0.15")
	for _, cidr := range []string{"127.0.0.0/8", "127.0.0.15", "127.0.0.15/32", "::ffff:127.0.0.0/104"} {
		var p api.Problem
		resp := admin.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: cidr}, &p)
		wantStatus(t, resp, http.StatusConflict)
		if !strings.Contains(p.Detail, "127.0.0.15") || !strings.Contains(p.Detail, "confirm") {
			t.Errorf("%s: detail %q", cidr, p.Detail)
		}
	}
	wantStatus(t, admin.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
	// Another range is added at once; one's own with confirm.
	wantStatus(t, admin.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: "127.0.0.16"}, nil), http.StatusCreated)
	wantStatus(t, admin.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: "127.0.0.15", Confirm: true}, nil), http.StatusCreated)
	wantStatus(t, admin.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	wantStatus(t, admin.call(t, http.MethodDelete, "/v1/admin/blacklist/"+url.PathEscape("127.0.0.15/32"), g.AdminToken, nil, nil), http.StatusNoContent)
	wantStatus(t, admin.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
}

// Invalid tokens count like wrong keys: probing tokens is probing too.
func TestForgedTokensCountTowardsABan(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "3"})
	a := g.from(t, "127.0.0.4")
	for range 3 {
		wantStatus(t, a.call(t, http.MethodGet, "/v1/clients/me", "eyJhbGciOiJub25lIn0.e30.", nil, nil), http.StatusUnauthorized)
	}
	wantStatus(t, a.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
}

// A ban must end: BAN_FOR is a duration, not forever.
func TestBanExpires(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "BAN_FOR": "1s"})
	a := g.from(t, "127.0.0.5")
	failLogins(t, a, 2)
	wantStatus(t, a.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	waitFor(t, func() bool {
		return a.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil).StatusCode == http.StatusOK
	})
}

// The allowlist protects the owner's own network from being banned by
// mistakes (or by an attacker who spoofs nothing but fails on purpose).
func TestAllowlistIsNeverBanned(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "IP_ALLOWLIST": "127.0.0.6/32"})
	a := g.from(t, "127.0.0.6")
	failLogins(t, a, 6)
	wantStatus(t, a.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
}

// X-Forwarded-For from a peer that is not a trusted proxy is ignored:
// otherwise anyone could pose as an allowlisted address and dodge bans.
func TestSpoofedForwardedForIsIgnored(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "IP_ALLOWLIST": "127.0.0.1/32,10.0.0.0/8"})
	a := g.from(t, "127.0.0.7")
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/sessions", strings.NewReader(`{"client_id":"x","access_key":"y"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	wantStatus(t, a.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
}

// With a trusted proxy, the address it reports is the one judged.
func TestTrustedProxyAddressIsBelieved(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "TRUSTED_PROXIES": "127.0.0.8/32"})
	proxy := g.from(t, "127.0.0.8")
	send := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/sessions", strings.NewReader(`{"client_id":"x","access_key":"y"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := proxy.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	send("198.51.100.1")
	send("198.51.100.1")
	if st := send("198.51.100.1"); st != http.StatusForbidden {
		t.Fatalf("the forwarded address was not banned: %d", st)
	}
	if st := send("198.51.100.2"); st != http.StatusUnauthorized {
		t.Fatalf("another forwarded address: %d", st)
	}
}

func TestBlacklistAdminRoutesAndConfig(t *testing.T) {
	g := startGateway(t, map[string]string{"IP_BLACKLIST": "127.0.0.9"})
	wantStatus(t, g.from(t, "127.0.0.9").call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	wantStatus(t, g.from(t, "127.0.0.9").call(t, http.MethodGet, "/healthz", "", nil, nil), http.StatusOK)
	var e api.BlacklistEntry
	wantStatus(t, g.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: "127.0.0.10", Reason: "testing", TTL: "1h"}, &e), http.StatusCreated)
	if e.CIDR != "127.0.0.10/32" || e.Source != api.BlacklistAdmin || e.ExpiresAt == nil {
		t.Fatalf("entry %+v", e)
	}
	wantStatus(t, g.from(t, "127.0.0.10").call(t, http.MethodGet, "/", "", nil, nil), http.StatusForbidden)
	var list []api.BlacklistEntry
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/blacklist", g.AdminToken, nil, &list), http.StatusOK)
	if len(list) != 2 {
		t.Fatalf("list %+v", list)
	}
	// A configured entry is not the admin API's to remove.
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/blacklist/127.0.0.9", g.AdminToken, nil, nil), http.StatusForbidden)
	wantStatus(t, g.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: "nonsense"}, nil), http.StatusBadRequest)
	wantStatus(t, g.call(t, http.MethodPost, "/v1/admin/blacklist", g.AdminToken, api.BlacklistRequest{CIDR: "127.0.0.11", TTL: "forever"}, nil), http.StatusBadRequest)
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/blacklist/"+url.PathEscape("127.0.0.10/32"), g.AdminToken, nil, nil), http.StatusNoContent)
	wantStatus(t, g.from(t, "127.0.0.10").call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/blacklist/"+url.PathEscape("127.0.0.10/32"), g.AdminToken, nil, nil), http.StatusNotFound)
}

// A protected intent needs its password; without it nothing reaches the
// bus, and the refusal names the intent.
func TestProtectedIntents(t *testing.T) {
	g := startGateway(t, nil)
	const pattern = "joke.builtin:*"
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape(pattern), g.AdminToken, api.ProtectRequest{Password: "open sesame"}, nil), http.StatusOK)
	var pl []api.ProtectedIntent
	wantStatus(t, g.call(t, http.MethodGet, "/v1/admin/protected-intents", g.AdminToken, nil, &pl), http.StatusOK)
	if len(pl) != 1 || pl[0].Pattern != pattern {
		t.Fatalf("list %+v", pl)
	}
	s := g.newClient(t, "nursery")
	tok := s.Token.Reveal()
	st := g.openStream(t, "nursery", bearer(tok))
	st.next(t, api.EventReady)

	var p api.Problem
	resp := g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "tell me a joke"}, &p)
	wantStatus(t, resp, http.StatusForbidden)
	if !strings.HasSuffix(p.Type, "/password-required") || p.Intent != "joke.builtin:JokeIntent" {
		t.Fatalf("no password: %+v", p)
	}
	resp = g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "tell me a joke", Password: "guess"}, &p)
	wantStatus(t, resp, http.StatusForbidden)
	if !strings.HasSuffix(p.Type, "/password-invalid") || p.Intent != "joke.builtin:JokeIntent" {
		t.Fatalf("wrong password: %+v", p)
	}
	// Nothing reached the bus for the refused ones: the next speech is the
	// answer to the one with the password.
	var r api.UtteranceResult
	resp = g.call(t, http.MethodPost, "/v1/utterances?wait=10s", tok, api.UtteranceRequest{Utterance: "tell me a joke", Password: "open sesame"}, &r)
	wantStatus(t, resp, http.StatusOK)
	if r.Status != api.StatusHandled || len(r.Speech) != 1 {
		t.Fatalf("with the password: %+v", r)
	}
	sp := decode[api.SpeakEvent](t, st.next(t, api.EventSpeak).Data)
	if sp.UtteranceID == nil || *sp.UtteranceID != r.ID {
		t.Fatalf("first speech answers %v, want %s", sp.UtteranceID, r.ID)
	}
	// The header works as well as the body.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/utterances?wait=10s", strings.NewReader(`{"utterance":"tell me a joke"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Intent-Password", "open sesame")
	hr, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	wantStatus(t, hr, http.StatusOK)
	// Other intents pass, and wrong passwords never reach the logs.
	if sayWait(t, g, tok, "hello").Status != api.StatusHandled {
		t.Fatal("an unprotected intent was refused")
	}
	if strings.Contains(g.Logs.String(), "open sesame") || strings.Contains(g.Logs.String(), "guess") {
		t.Fatal("a password reached the logs")
	}
	assertNoPlainSecret(t, g.DataDir, "open sesame")
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/protected-intents/"+url.PathEscape(pattern), g.AdminToken, nil, nil), http.StatusNoContent)
	if sayWait(t, g, tok, "tell me a joke").Status != api.StatusHandled {
		t.Fatal("still protected after unprotect")
	}
}

// Without the password, the protected intents also travel in the session's
// blacklisted_intents, so that OVOS skips them even if its real run would
// pick them when the dry run did not.
func TestProtectedIntentsAreBlacklistedInTheSession(t *testing.T) {
	g := startGateway(t, nil)
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin:JokeIntent"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	s := g.newClient(t, "study")
	st := g.openStream(t, "study", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)
	say(t, g, s.Token.Reveal(), "hello")
	for {
		ev := st.next(t, api.EventMessage)
		var m struct {
			Context struct {
				Session struct {
					Blacklisted []string `json:"blacklisted_intents"`
				} `json:"session"`
			} `json:"context"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Context.Session.Blacklisted) == 1 && m.Context.Session.Blacklisted[0] == "joke.builtin:JokeIntent" {
			return
		}
		t.Fatalf("session without the protected intent: %s", ev.Data)
	}
}

// Every protected pattern goes into the session as OVOS lists it: a skill
// id in blacklisted_skills, a wildcard expanded against the intents the bus
// announced (here through a dry run's answer).
func TestProtectedSkillsAndWildcardsAreBlacklisted(t *testing.T) {
	g := startGateway(t, nil)
	for _, p := range []string{"joke.builtin", "*:TimeIntent"} {
		wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape(p), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	}
	s := g.newClient(t, "study")
	tok := s.Token.Reveal()
	var p api.Problem
	wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "what time is it"}, &p), http.StatusForbidden)
	st := g.openStream(t, "study", bearer(tok))
	st.next(t, api.EventReady)
	say(t, g, tok, "hello")
	ev := st.next(t, api.EventMessage)
	var m struct {
		Context struct {
			Session struct {
				Intents []string `json:"blacklisted_intents"`
				Skills  []string `json:"blacklisted_skills"`
			} `json:"session"`
		} `json:"context"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.Context.Session.Skills) != "[joke.builtin]" || fmt.Sprint(m.Context.Session.Intents) != "[time.builtin:TimeIntent]" {
		t.Fatalf("session blacklists intents %v, skills %v", m.Context.Session.Intents, m.Context.Session.Skills)
	}
}

// An answer to a follow-up question that happens to match a protected
// intent is taken as the answer, without a password; it never starts the
// protected intent, and outside a question the intent is protected as ever.
func TestAnswerMatchingAProtectedIntent(t *testing.T) {
	g := startGateway(t, nil)
	wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("joke.builtin"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
	s := g.newClient(t, "den")
	tok := s.Token.Reveal()
	if q := sayWait(t, g, tok, "ask me something"); q.Status != api.StatusAwaitingResponse {
		t.Fatalf("question: %+v", q)
	}
	a := sayWait(t, g, tok, "tell me a joke")
	if a.Status != api.StatusHandled || len(a.Speech) != 1 || !strings.Contains(a.Speech[0].Utterance, "You said tell me a joke") {
		t.Fatalf("answer: %+v", a)
	}
	var p api.Problem
	wantStatus(t, g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "tell me a joke"}, &p), http.StatusForbidden)
	if !strings.HasSuffix(p.Type, "/password-required") {
		t.Fatalf("outside a question: %+v", p)
	}
}

// A bus that never answers the dry run must not open protected intents:
// fail closed, unless configured open.
func TestDryRunWithoutAnswerFailsClosed(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			bus, err := messagebus.New(messagebus.Config{}) // a bus with no assistant on it
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(bus.Handler())
			t.Cleanup(func() { srv.Close(); bus.Close() })
			g := startGateway(t, map[string]string{"BUS_URL": "ws" + strings.TrimPrefix(srv.URL, "http") + "/core", "INTENT_CHECK": mode})
			wantStatus(t, g.call(t, http.MethodPut, "/v1/admin/protected-intents/"+url.PathEscape("door.*"), g.AdminToken, api.ProtectRequest{Password: "pw"}, nil), http.StatusOK)
			s := g.newClient(t, "gate")
			resp := g.call(t, http.MethodPost, "/v1/utterances", s.Token.Reveal(), api.UtteranceRequest{Utterance: "open the door"}, nil)
			want := map[string]int{"closed": http.StatusServiceUnavailable, "open": http.StatusAccepted}[mode]
			wantStatus(t, resp, want)
			if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

// Tokens are checked with the algorithm, audience and expiry pinned: a token
// signed with the right secret but the wrong claims is still refused.
func TestForgedTokensWithTheRightSecret(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "vault")
	secret, err := os.ReadFile(filepath.Join(g.DataDir, "jwt-secret.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// The key version the real token carries.
	var real jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(s.Token.Reveal(), &real); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := jwt.MapClaims{"iss": "ovos-gateway", "aud": "ovos-gateway", "sub": "vault", "sid": s.SessionID, "jti": "forged-jti-000000000000", "kv": real["kv"], "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range base {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(m jwt.SigningMethod, c jwt.MapClaims) string {
		var key any = secret
		if m == jwt.SigningMethodNone {
			key = jwt.UnsafeAllowNoneSignatureType
		}
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The control: the forged token with every claim right is accepted, so
	// each refusal below is due to the one claim that differs.
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", sign(jwt.SigningMethodHS256, base), nil, nil), http.StatusOK)
	cases := map[string]string{
		"alg none":       sign(jwt.SigningMethodNone, base),
		"HS512":          sign(jwt.SigningMethodHS512, base),
		"wrong audience": sign(jwt.SigningMethodHS256, with("aud", "someone-else")),
		"wrong issuer":   sign(jwt.SigningMethodHS256, with("iss", "someone-else")),
		"no exp":         sign(jwt.SigningMethodHS256, with("exp", nil)),
		"no iat":         sign(jwt.SigningMethodHS256, with("iat", nil)),
		"expired":        sign(jwt.SigningMethodHS256, with("exp", now.Add(-time.Hour).Unix())),
		"old key":        sign(jwt.SigningMethodHS256, with("kv", 0)),
		"deleted client": sign(jwt.SigningMethodHS256, with("sub", "ghost")),
		// Right key, but not as the gateway makes them: a life beyond the
		// token TTL (1h), a time as a string, an unknown critical header.
		"exp beyond the lifetime": sign(jwt.SigningMethodHS256, with("exp", now.Add(24*time.Hour).Unix())),
		"exp as a string":         sign(jwt.SigningMethodHS256, with("exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))),
		"unknown crit header":     critToken(t, secret, base),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", tok, nil, nil), http.StatusUnauthorized)
		})
	}
}

// critToken signs c with secret under a header naming a critical extension.
func critToken(t *testing.T, secret []byte, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["crit"] = []string{"x-unknown"}
	tok.Header["x-unknown"] = true
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRateLimits(t *testing.T) {
	g := startGateway(t, map[string]string{"LOGIN_RATE": "0.1", "UTTERANCE_RATE": "1", "STREAMS_PER_CLIENT": "1"})
	// Logins: burst 1 at 0.1/s from one address.
	key := g.createClient(t, "busy")
	s := g.login(t, "busy", key)
	resp := g.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "busy", "access_key": key}, nil)
	wantStatus(t, resp, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Utterances: burst 2 at 1/s per client.
	tok := s.Token.Reveal()
	codes := []int{}
	for range 4 {
		codes = append(codes, g.call(t, http.MethodPost, "/v1/utterances", tok, api.UtteranceRequest{Utterance: "hello"}, nil).StatusCode)
	}
	if codes[0] != http.StatusAccepted || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("utterance statuses %v", codes)
	}
	// Streams: one per client.
	g.openStream(t, "busy", bearer(tok)).next(t, api.EventReady)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/clients/busy/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	r2, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	wantStatus(t, r2, http.StatusTooManyRequests)
}

// A home network gets HTTPS without a CA: the certificate is made once,
// kept, and its fingerprint printed so that a device can pin it. HTTP/2 is
// served, so a browser is not held to six streams.
func TestSelfSignedTLS(t *testing.T) {
	g := startTLSGateway(t)
	m := fingerprintLine.FindStringSubmatch(g.Stdout.String())
	if m == nil {
		t.Fatalf("no fingerprint printed:\n%s", g.Stdout.String())
	}
	pem, err := os.ReadFile(filepath.Join(g.DataDir, "tls-selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("bad certificate file")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get(g.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
	if got := strings.ReplaceAll(m[1], ":", ""); !strings.EqualFold(got, hex.EncodeToString(sum[:])) {
		t.Fatalf("printed fingerprint %s does not match the served certificate", m[1])
	}
	// The session cookie is Secure over TLS.
	key := g.createClient(t, "tls")
	body := strings.NewReader(`{"client_id":"tls","access_key":"` + key + `"}`)
	lr, err := c.Post(g.URL+"/v1/sessions", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	lr.Body.Close()
	for _, ck := range lr.Cookies() {
		if ck.Name == "gw_session" && !ck.Secure {
			t.Fatal("the session cookie is not Secure over TLS")
		}
	}
}

// A session that ended (logged out) is not a guess: a device retrying with
// it must not get its own address banned.
func TestEndedSessionsDoNotBan(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2"})
	d := g.from(t, "127.0.0.13")
	key := g.createClient(t, "sleepy")
	var s api.SessionResponse
	wantStatus(t, d.call(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "sleepy", "access_key": key}, &s), http.StatusCreated)
	wantStatus(t, d.call(t, http.MethodDelete, "/v1/sessions/current", s.Token.Reveal(), nil, nil), http.StatusNoContent)
	for range 4 {
		wantStatus(t, d.call(t, http.MethodGet, "/v1/clients/me", s.Token.Reveal(), nil, nil), http.StatusUnauthorized)
	}
	wantStatus(t, d.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
	if v := scrape(t, g, `gateway_auth_failures_total{reason="token-revoked"}`); v != 4 {
		t.Fatalf("revoked-token refusals counted %v", v)
	}
}

// A body sent a byte at a time must not hold a connection and a goroutine
// for as long as the client likes: past GATEWAY_BODY_TIMEOUT the request is
// answered 408 and the connection closed. The event stream, which has no
// body, and a ?wait= utterance that outlives the timeout are not cut.
func TestSlowBodiesAreCut(t *testing.T) {
	g := startGateway(t, map[string]string{"BODY_TIMEOUT": "200ms"})
	s := g.newClient(t, "patient")
	st := g.openStream(t, "patient", bearer(s.Token.Reveal()))
	st.next(t, api.EventReady)

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/sessions HTTP/1.1\r\nHost: "+strings.TrimPrefix(g.URL, "http://")+
		"\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"client_id\":"); err != nil {
		t.Fatal(err)
	}
	// Awaited, not timed: the bound is far beyond the timeout.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || problemType(t, resp) != api.ProblemTypePrefix+api.ETIMEOUT {
		t.Fatalf("stalled body answered %d", resp.StatusCode)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection stayed open after the 408")
	}

	// The stream outlived the timeout several times over and still carries
	// the answer to an utterance.
	time.Sleep(600 * time.Millisecond) // the scenario: longer than the timeout, not a synchronisation
	res := sayWait(t, g, s.Token.Reveal(), "hello")
	if res.Status != "handled" {
		t.Fatalf("utterance after the timeout: %+v", res)
	}
	st.next(t, api.EventSpeak)
}

// Headers are capped at what the API needs (a token and a few KiB of
// cookies), not net/http's 1 MiB: a larger header is refused with 431.
func TestOversizedHeadersAreRefused(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "cookies")
	get := func(cookie string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/clients/me", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token.Reveal())
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A browser's worth: three 4 KiB cookies beside the token.
	jar := strings.Repeat("a", 4000)
	if got := get("a=" + jar + "; b=" + jar + "; c=" + jar); got != http.StatusOK {
		t.Fatalf("12 KiB of cookies: %d, want 200", got)
	}
	if got := get("a=" + strings.Repeat("a", 64<<10)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of cookies: %d, want 431", got)
	}
}

// DNS rebinding: a page of attacker.example whose name re-resolves to the
// gateway reaches it with its own name in Host. Only the allowed names (and
// IP addresses, which such a page cannot send) are answered; the console's
// assets are files, never a directory listing.
func TestHostHeaderIsChecked(t *testing.T) {
	get := func(g *gateway, host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
		req.Host = host
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	g := startGateway(t, nil)
	port := g.URL[strings.LastIndexByte(g.URL, ':')+1:]
	for host, want := range map[string]int{
		"localhost:" + port:        http.StatusOK,
		"127.0.0.1:" + port:        http.StatusOK,
		"[::1]:" + port:            http.StatusOK,
		"attacker.example:" + port: http.StatusForbidden,
		"attacker.example":         http.StatusForbidden,
	} {
		for _, path := range []string{"/healthz", "/", "/v1/clients/me"} {
			resp := get(g, host, path)
			if (want == http.StatusOK) != (resp.StatusCode != http.StatusForbidden) {
				t.Errorf("Host %s, %s: %d", host, path, resp.StatusCode)
			}
			if want == http.StatusForbidden && problemType(t, resp) != api.ProblemTypePrefix+api.EFORBIDDEN {
				t.Errorf("Host %s: not a problem", host)
			}
		}
	}
	if !strings.Contains(g.Logs.String(), `host \"attacker.example\" not allowed`) {
		t.Errorf("the refused host is not in the log")
	}
	for _, path := range []string{"/assets/", "/assets//"} {
		if resp := get(g, "localhost", path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (no listing)", path, resp.StatusCode)
		}
	}
	if resp := get(g, "localhost", "/assets/api.js"); resp.StatusCode != http.StatusOK {
		t.Errorf("/assets/api.js: %d", resp.StatusCode)
	}

	named := startGateway(t, map[string]string{"ALLOWED_HOSTS": "gateway.lan,Voice.Example"})
	for host, want := range map[string]int{
		"gateway.lan:8080": http.StatusOK, "voice.example": http.StatusOK, "127.0.0.1": http.StatusOK,
		"localhost": http.StatusForbidden, "attacker.example": http.StatusForbidden,
	} {
		if got := get(named, host, "/healthz").StatusCode; got != want {
			t.Errorf("ALLOWED_HOSTS set, Host %s: %d, want %d", host, got, want)
		}
	}
}

// What GATEWAY_ADDR implies when GATEWAY_ALLOWED_HOSTS is empty.
func TestAllowedHostsDefaults(t *testing.T) {
	hostname := func() (string, error) { return "kitchen-pi", nil }
	for _, tc := range []struct {
		addr, set string
		want      []string
	}{
		{"127.0.0.1:8080", "", []string{"localhost"}},
		{"[::1]:8080", "", []string{"localhost"}},
		{"0.0.0.0:8080", "", []string{"localhost", "kitchen-pi"}},
		{"[::]:8080", "", []string{"localhost", "kitchen-pi"}},
		{":8080", "", []string{"localhost", "kitchen-pi"}},
		{"gateway.lan:8080", "", []string{"localhost", "gateway.lan"}},
		{"0.0.0.0:8080", "a.example,b.example", []string{"a.example", "b.example"}},
	} {
		cfg := config{Addr: tc.addr}
		if tc.set != "" {
			cfg.AllowedHosts = strings.Split(tc.set, ",")
		}
		if got := allowedHosts(cfg, hostname); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ADDR %s, ALLOWED_HOSTS %q: %v, want %v", tc.addr, tc.set, got, tc.want)
		}
	}
}

// `gateway healthcheck` (the container's HEALTHCHECK) speaks as the server
// does: plain HTTP, or HTTPS that accepts only the certificate the server is
// configured with (its self-signed one in the data dir, or the
// GATEWAY_TLS_CERT file, whatever names that certificate carries).
func TestHealthcheckFollowsTLS(t *testing.T) {
	check := func(env map[string]string) error {
		return run(t.Context(), []string{"healthcheck"}, func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, io.Discard)
	}
	addrOf := func(g *gateway) string { return g.URL[strings.Index(g.URL, "://")+3:] }

	plain := startGateway(t, nil)
	if err := check(map[string]string{"GATEWAY_ADDR": addrOf(plain), "GATEWAY_DATA_DIR": plain.DataDir}); err != nil {
		t.Errorf("plain HTTP: %v", err)
	}

	self := startTLSGateway(t)
	if err := check(map[string]string{"GATEWAY_ADDR": addrOf(self), "GATEWAY_DATA_DIR": self.DataDir, "GATEWAY_TLS_SELF_SIGNED": "true"}); err != nil {
		t.Errorf("self-signed: %v", err)
	}

	// A certificate file made for a public name only, not for 127.0.0.1.
	certDir := t.TempDir()
	certFile, keyFile, _, err := selfsigned.LoadOrCreate(certDir, []string{"gateway.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	named := startTLSGateway(t, map[string]string{"TLS_CERT": certFile, "TLS_KEY": keyFile})
	env := map[string]string{"GATEWAY_ADDR": addrOf(named), "GATEWAY_DATA_DIR": named.DataDir, "GATEWAY_TLS_CERT": certFile, "GATEWAY_TLS_KEY": keyFile}
	if err := check(env); err != nil {
		t.Errorf("certificate file: %v", err)
	}
	// The pin holds: another certificate than the one served is refused.
	env["GATEWAY_TLS_CERT"], env["GATEWAY_TLS_KEY"] = filepath.Join(self.DataDir, selfsigned.CertFile), filepath.Join(self.DataDir, selfsigned.KeyFile)
	if err := check(env); err == nil {
		t.Error("a server presenting another certificate passed the check")
	}
}

// A proxy or load balancer whose address is refused still sees the server
// alive (issue 17, item 3): `gateway healthcheck` passes with a trusted proxy
// of 127.0.0.1/32 (its own requests carry no X-Forwarded-For, so their
// address cannot be settled), and with 127.0.0.1 banned, also after a
// restart (the ban survives it).
func TestHealthcheckPassesWhenRefused(t *testing.T) {
	healthcheck := func(g *gateway, extra map[string]string) error {
		e := map[string]string{"GATEWAY_ADDR": g.URL[strings.Index(g.URL, "://")+3:], "GATEWAY_DATA_DIR": g.DataDir}
		for k, v := range extra {
			e["GATEWAY_"+k] = v
		}
		return run(t.Context(), []string{"healthcheck"}, func(k string) string { return e[k] }, strings.NewReader(""), io.Discard, io.Discard)
	}

	proxied := map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"}
	g := startGateway(t, proxied)
	wantStatus(t, g.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	if err := healthcheck(g, proxied); err != nil {
		t.Fatalf("healthcheck behind a trusted proxy: %v", err)
	}
	g.Stop(t)

	banned := map[string]string{"BAN_AFTER": "2", "IP_ALLOWLIST": "", "DATA_DIR": t.TempDir()}
	g = startGateway(t, banned)
	failLogins(t, g, 2)
	wantStatus(t, g.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	if err := healthcheck(g, nil); err != nil {
		t.Fatalf("healthcheck from a banned address: %v", err)
	}
	wantStatus(t, g.call(t, http.MethodGet, "/readyz", "", nil, nil), http.StatusOK)
	g.Stop(t)
	g = startGateway(t, banned)
	wantStatus(t, g.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusForbidden)
	if err := healthcheck(g, nil); err != nil {
		t.Fatalf("healthcheck from a banned address after a restart: %v", err)
	}
}

// Over HTTP/2 (TLS) too: a stream whose body stalls is answered 408.
func TestSlowBodiesAreCutOverHTTP2(t *testing.T) {
	g := startTLSGateway(t, map[string]string{"BODY_TIMEOUT": "200ms"})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte(`{"client_id":`)) }() // then nothing
	req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/sessions", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	// A test server's certificate; the client's timeout is a bound far
	// beyond the body timeout, not a measure.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // a test server
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("%s %d, want HTTP/2 408", resp.Proto, resp.StatusCode)
	}
}

// TestDeletedClientStaysDead: a client deleted and created again under the
// same id is a new client: the old one's token and its remembered client
// key credential (the OpenAI routes) open nothing of the new one (issue 12,
// item 3).
func TestDeletedClientStaysDead(t *testing.T) {
	g := startGateway(t, nil)
	key := g.createClient(t, "hall")
	old := g.login(t, "hall", key)
	// The client key credential is checked once and then remembered.
	for range 2 {
		wantStatus(t, g.call(t, http.MethodGet, "/v1/models", "hall:"+key, nil, nil), http.StatusOK)
	}
	wantStatus(t, g.call(t, http.MethodDelete, "/v1/admin/clients/hall", g.AdminToken, nil, nil), http.StatusNoContent)
	g.createClient(t, "hall")

	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/me", old.Token.Reveal(), nil, nil), http.StatusUnauthorized)
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/hall/events", old.Token.Reveal(), nil, nil), http.StatusUnauthorized)
	wantStatus(t, g.call(t, http.MethodGet, "/v1/models", "hall:"+key, nil, nil), http.StatusUnauthorized)
}

// TestTicketOnAnotherClientsStream: a stream ticket presented on another
// client's stream is refused (403) without being spent: its owner still
// opens its own stream with it (issue 12, item 11).
func TestTicketOnAnotherClientsStream(t *testing.T) {
	g := startGateway(t, nil)
	s := g.newClient(t, "den")
	g.newClient(t, "loft")
	var tk api.TicketResponse
	wantStatus(t, g.call(t, http.MethodPost, "/v1/sessions/current/ticket", s.Token.Reveal(), nil, &tk), http.StatusCreated)
	wantStatus(t, g.call(t, http.MethodGet, "/v1/clients/loft/events?ticket="+tk.Ticket.Reveal(), "", nil, nil), http.StatusForbidden)
	st := g.openStreamURL(t, "/v1/clients/den/events?ticket="+tk.Ticket.Reveal(), nil)
	st.next(t, api.EventReady)
}

// TestAdminTokenPassesABan: the admin, banned automatically from its own
// address (its fingers slipped, or someone failed on purpose from there),
// still reaches the admin routes with the admin token and lifts the ban
// from there; from a banned address a wrong admin token, no token, or the
// admin token on any other route is still refused (issue 12, item 12).
func TestAdminTokenPassesABan(t *testing.T) {
	g := startGateway(t, map[string]string{"BAN_AFTER": "2", "BAN_WINDOW": "1m", "BAN_FOR": "1h"})
	admin := g.from(t, "127.0.0.9")
	failLogins(t, admin, 2)
	for _, c := range []struct{ method, path, token string }{
		{http.MethodGet, "/v1/admin/blacklist", "gwa_" + strings.Repeat("x", 43)},
		{http.MethodGet, "/v1/admin/blacklist", ""},
		{http.MethodGet, "/v1/admin/clients", "not-the-admin-token"},
		{http.MethodGet, "/openapi.yaml", g.AdminToken},
		{http.MethodGet, "/v1/clients/me", g.AdminToken},
	} {
		resp := admin.call(t, c.method, c.path, c.token, nil, nil)
		if resp.StatusCode != http.StatusForbidden || problemType(t, resp) != "/problems/blacklisted" {
			t.Errorf("%s %s from the banned address: %d, want 403 blacklisted", c.method, c.path, resp.StatusCode)
		}
	}
	var list []api.BlacklistEntry
	wantStatus(t, admin.call(t, http.MethodGet, "/v1/admin/blacklist", g.AdminToken, nil, &list), http.StatusOK)
	if len(list) != 1 || list[0].CIDR != "127.0.0.9/32" || list[0].Source != api.BlacklistAuto {
		t.Fatalf("blacklist %+v", list)
	}
	wantStatus(t, admin.call(t, http.MethodDelete, "/v1/admin/blacklist/"+url.PathEscape("127.0.0.9/32"), g.AdminToken, nil, nil), http.StatusNoContent)
	wantStatus(t, admin.call(t, http.MethodGet, "/openapi.yaml", "", nil, nil), http.StatusOK)
}
