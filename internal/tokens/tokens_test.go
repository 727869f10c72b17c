package tokens

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ovosgw/gateway/api"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// memRevocations is the smallest Revocations: the real one (store.Store)
// is tested in its own package.
type memRevocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *memRevocations) Revoke(_ context.Context, jti string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]time.Time{}
	}
	r.m[jti] = until
	return nil
}

func (r *memRevocations) Revoked(jti string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[jti]
	return ok
}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTokens(t testing.TB) (*Tokens, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	tk, err := New(Config{Secret: testSecret, Now: clk.Now}, &memRevocations{})
	if err != nil {
		t.Fatal(err)
	}
	return tk, clk
}

func wantUnauthorized(t testing.TB, err error, reason string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.EUNAUTHORIZED {
		t.Fatalf("error = %v, want api.Error %s", err, api.EUNAUTHORIZED)
	}
	if got := Reason(err); got != reason {
		t.Fatalf("Reason = %q, want %q (detail %q)", got, reason, e.Detail)
	}
}

func TestRoundTrip(t *testing.T) {
	tk, clk := newTokens(t)
	tok, issued, err := tk.Issue("kitchen", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(issued.SessionID) != 22 || len(issued.ID) != 22 || issued.SessionID == issued.ID {
		t.Fatalf("ids: sid %q jti %q, want two distinct 22-character ids", issued.SessionID, issued.ID)
	}
	if !issued.ExpiresAt.Equal(clk.Now().Add(DefaultTTL)) || !issued.IssuedAt.Equal(clk.Now()) {
		t.Fatalf("times: %v .. %v", issued.IssuedAt, issued.ExpiresAt)
	}
	clk.Add(30 * time.Minute)
	got, err := tk.Verify(tok.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if got != issued {
		t.Fatalf("Verify = %+v, want %+v", got, issued)
	}
	_, again, _ := tk.Issue("kitchen", 3)
	if again.SessionID == issued.SessionID || again.ID == issued.ID {
		t.Fatal("two sessions share an id")
	}
}

func TestNewValidates(t *testing.T) {
	rev := &memRevocations{}
	tests := []struct {
		name string
		cfg  Config
		rev  Revocations
	}{
		// HS256 with a short key is brute-forceable offline from any token.
		{"short secret", Config{Secret: []byte("too short, only 31 bytes long!!")}, rev},
		{"no secret", Config{}, rev},
		{"no revocations", Config{Secret: testSecret}, nil},
		{"negative ttl", Config{Secret: testSecret, TTL: -time.Second}, rev},
		{"huge leeway", Config{Secret: testSecret, Leeway: time.Hour}, rev},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.rev)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			if len(tt.cfg.Secret) > 0 && strings.Contains(err.Error(), string(tt.cfg.Secret)) {
				t.Fatal("error shows the secret")
			}
		})
	}
}

// sign makes a token with the given method, key and claims, as an attacker
// or a different issuer would.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hsWithHeader signs header.payload with HMAC-SHA256 and our secret, whatever
// the header claims the algorithm to be.
func hsWithHeader(header string, claims jwt.MapClaims, key []byte) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	payload, _ := tok.SigningString()
	body := payload[strings.IndexByte(payload, '.')+1:]
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + body
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestVerifyRefuses is the security regression suite: each case is a token
// that a careless verifier would accept.
func TestVerifyRefuses(t *testing.T) {
	tk, clk := newTokens(t)
	now := clk.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": DefaultIssuer, "aud": []string{DefaultAudience}, "sub": "kitchen",
			"sid": "session-id-0000000000", "jti": "token-id-000000000000", "kv": 1,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Reveal(), ".")

	// Control: the hand-made valid claims do verify, so each refusal below
	// is due to the one thing changed; so do a lifetime of exactly the TTL
	// plus the leeway and a header as hsWithHeader writes it.
	if _, err := tk.Verify(sign(t, jwt.SigningMethodHS256, testSecret, valid())); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	if _, err := tk.Verify(sign(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(time.Hour+5*time.Second).Unix()))); err != nil {
		t.Fatalf("control token with exp at the lifetime's edge refused: %v", err)
	}
	if _, err := tk.Verify(hsWithHeader(`{"alg":"HS256","typ":"JWT"}`, valid(), testSecret)); err != nil {
		t.Fatalf("control token with a hand-written header refused: %v", err)
	}

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		// alg "none": no signature at all (RFC 8725 2.1); the classic bypass.
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()), ReasonInvalid},
		// A valid HMAC under another hash: the algorithm is pinned, not taken
		// from the token.
		{"HS384 with our secret", sign(t, jwt.SigningMethodHS384, testSecret, valid()), ReasonInvalid},
		{"HS512 with our secret", sign(t, jwt.SigningMethodHS512, testSecret, valid()), ReasonInvalid},
		// An asymmetric token: a verifier choosing the key by alg might try a
		// public key, or be confused into using our secret.
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, valid()), ReasonInvalid},
		// Algorithm confusion: header says RS256 but the signature is an HMAC
		// with our secret, as if a verifier used its key as HMAC key.
		{"RS256 header, HMAC signature", hsWithHeader(`{"alg":"RS256","typ":"JWT"}`, valid(), testSecret), ReasonInvalid},
		// Case games with the algorithm name.
		{"hs256 lowercase", hsWithHeader(`{"alg":"hs256","typ":"JWT"}`, valid(), testSecret), ReasonInvalid},
		// Forged with a guessed secret.
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-000"), valid()), ReasonInvalid},
		// Tokens of another service sharing the secret (RFC 8725 3.9, 3.10).
		{"wrong audience", sign(t, jwt.SigningMethodHS256, testSecret, with("aud", []string{"other"})), ReasonInvalid},
		{"no audience", sign(t, jwt.SigningMethodHS256, testSecret, with("aud", nil)), ReasonInvalid},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, testSecret, with("iss", "someone-else")), ReasonInvalid},
		{"no issuer", sign(t, jwt.SigningMethodHS256, testSecret, with("iss", nil)), ReasonInvalid},
		// A token without exp would be valid forever.
		{"missing exp", sign(t, jwt.SigningMethodHS256, testSecret, with("exp", nil)), ReasonInvalid},
		// Without iat a token's age cannot be judged.
		{"missing iat", sign(t, jwt.SigningMethodHS256, testSecret, with("iat", nil)), ReasonInvalid},
		// Claims Issue always writes; without them sessions and key rotation
		// cannot be enforced.
		{"missing sub", sign(t, jwt.SigningMethodHS256, testSecret, with("sub", nil)), ReasonInvalid},
		{"missing sid", sign(t, jwt.SigningMethodHS256, testSecret, with("sid", nil)), ReasonInvalid},
		{"missing jti", sign(t, jwt.SigningMethodHS256, testSecret, with("jti", nil)), ReasonInvalid},
		{"missing kv", sign(t, jwt.SigningMethodHS256, testSecret, with("kv", nil)), ReasonInvalid},
		// Expired beyond the 5 s leeway.
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(-6*time.Second).Unix())), ReasonExpired},
		// Not valid yet, beyond the leeway: nbf or iat in the future.
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, testSecret, with("nbf", now.Add(time.Minute).Unix())), ReasonInvalid},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, testSecret, with("iat", now.Add(time.Minute).Unix())), ReasonInvalid},
		// Signed with our key but not as Issue makes them: a lifetime beyond
		// the TTL (1 h, 5 s leeway), a time as a string (the parser would
		// take "9999999999"), a critical header extension nobody here
		// understands (RFC 7515 4.1.11).
		{"exp beyond the lifetime", sign(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(time.Hour+6*time.Second).Unix())), ReasonInvalid},
		{"exp a year ahead", sign(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(365*24*time.Hour).Unix())), ReasonInvalid},
		{"exp as a string", sign(t, jwt.SigningMethodHS256, testSecret, with("exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), ReasonInvalid},
		{"nbf as a string", sign(t, jwt.SigningMethodHS256, testSecret, with("nbf", strconv.FormatInt(now.Unix(), 10))), ReasonInvalid},
		{"iat as a string", sign(t, jwt.SigningMethodHS256, testSecret, with("iat", strconv.FormatInt(now.Unix(), 10))), ReasonInvalid},
		{"EXP as a string beside exp", sign(t, jwt.SigningMethodHS256, testSecret, with("EXP", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), ReasonInvalid},
		{"unknown crit header", hsWithHeader(`{"alg":"HS256","typ":"JWT","crit":["exp-x"],"exp-x":1}`, valid(), testSecret), ReasonInvalid},
		{"empty crit header", hsWithHeader(`{"alg":"HS256","typ":"JWT","crit":[]}`, valid(), testSecret), ReasonInvalid},
		// Payload edited after signing (another client's id).
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
			`{"iss":"ovos-gateway","aud":["ovos-gateway"],"sub":"admin","sid":"x","jti":"y","kv":1,"iat":1,"exp":9999999999}`)) + "." + parts[2], ReasonInvalid},
		// Signature stripped.
		{"no signature", parts[0] + "." + parts[1] + ".", ReasonInvalid},
		// Garbage of every shape.
		{"empty", "", ReasonMalformed},
		{"one part", "abc", ReasonMalformed},
		{"three junk parts", "a.b.c", ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], ReasonMalformed},
		{"huge", strings.Repeat("a", 5000), ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tk.Verify(tt.token)
			wantUnauthorized(t, err, tt.reason)
		})
	}
}

func TestVerifyLeewayAndExpiry(t *testing.T) {
	tk, clk := newTokens(t)
	tok, c, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Within the leeway after exp the token still works (clock skew)...
	clk.Add(DefaultTTL + DefaultLeeway - time.Second)
	if _, err := tk.Verify(tok.Reveal()); err != nil {
		t.Fatalf("token refused within leeway: %v", err)
	}
	// ...and not after it.
	clk.Add(2 * time.Second)
	_, err = tk.Verify(tok.Reveal())
	wantUnauthorized(t, err, ReasonExpired)
	if !c.ExpiresAt.Before(clk.Now()) {
		t.Fatal("test clock did not pass the expiry")
	}
}

func TestRenew(t *testing.T) {
	tk, clk := newTokens(t)
	first, issued, err := tk.Issue("kitchen", 3)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(50 * time.Minute)
	tok, renewed, err := tk.Renew(issued)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.ClientID != "kitchen" || renewed.SessionID != issued.SessionID || renewed.KeyVersion != 3 {
		t.Fatalf("renewed %+v does not continue %+v", renewed, issued)
	}
	if renewed.ID == issued.ID {
		t.Fatal("the renewed token has the old token's id: revoking one would revoke both")
	}
	if !renewed.IssuedAt.Equal(clk.Now()) || !renewed.ExpiresAt.Equal(clk.Now().Add(DefaultTTL)) {
		t.Fatalf("times: %v .. %v, want a full TTL from now", renewed.IssuedAt, renewed.ExpiresAt)
	}
	// Past the first token's expiry the renewed one still verifies.
	clk.Add(30 * time.Minute)
	got, err := tk.Verify(tok.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if got != renewed {
		t.Fatalf("Verify = %+v, want %+v", got, renewed)
	}
	// Revoking either token ends the session: both are refused, and
	// neither is renewed.
	clk.Add(-30 * time.Minute)
	if _, err := tk.Verify(first.Reveal()); err != nil {
		t.Fatalf("the first token, not yet expired, is refused: %v", err)
	}
	if err := tk.Revoke(context.Background(), issued); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []api.Secret{first, tok} {
		_, err := tk.Verify(tok.Reveal())
		wantUnauthorized(t, err, ReasonRevoked)
	}
	_, _, err = tk.Renew(renewed)
	wantUnauthorized(t, err, ReasonRevoked)
	if _, _, err := tk.Renew(Claims{ClientID: "kitchen"}); err == nil {
		t.Fatal("Renew of claims without a session succeeded")
	}
}

func TestRevoke(t *testing.T) {
	tk, _ := newTokens(t)
	tok, c, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Revoke(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// A logged-out token must not work again, though it has not expired.
	_, err = tk.Verify(tok.Reveal())
	wantUnauthorized(t, err, ReasonRevoked)
	// Another session of the same client is not affected.
	if _, err := tk.Verify(other.Reveal()); err != nil {
		t.Fatalf("other session refused: %v", err)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain error", errors.New("boom"), ReasonInvalid},
		{"expired", unauthorized(detailExpired), ReasonExpired},
		{"revoked", unauthorized(detailRevoked), ReasonRevoked},
		{"malformed", unauthorized(detailMalformed), ReasonMalformed},
		{"ticket", unauthorized(detailTicket), ReasonInvalid},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("%s: Reason = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzVerify throws arbitrary strings at Verify: it never panics, every
// failure is EUNAUTHORIZED with a known reason, and it accepts nothing but
// the exact tokens Issue produces with this secret: an accepted string must
// be, byte for byte, what Issue's signing makes of the claims it carries.
// (Fuzz workers run this function anew, with fresh random ids, so the check
// re-signs rather than looking the token up.)
func FuzzVerify(f *testing.F) {
	tk, _ := newTokens(f)
	for _, id := range []string{"kitchen", "phone"} {
		tok, _, err := tk.Issue(id, 1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok.Reveal())
		parts := strings.Split(tok.Reveal(), ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(`eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + ".")
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tk.Verify(s)
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.EUNAUTHORIZED {
				t.Fatalf("error %v is not EUNAUTHORIZED", err)
			}
			switch Reason(err) {
			case ReasonInvalid, ReasonMalformed, ReasonExpired, ReasonRevoked:
			default:
				t.Fatalf("unknown reason %q", Reason(err))
			}
			return
		}
		again, err := tk.sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if again != s {
			t.Fatalf("accepted a token Issue did not make: %q", s)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	tk, _ := newTokens(b)
	tok, _, err := tk.Issue("kitchen", 1)
	if err != nil {
		b.Fatal(err)
	}
	// first: the HMAC and the claims, as for a token seen for the first
	// time; remembered: the same token again (verified.go).
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tk.verified = newVerifiedCache()
			if _, err := tk.Verify(tok.Reveal()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tk.Verify(tok.Reveal()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifiedCache: a token verified once is remembered, and what can
// change with time is still checked on every use: a logout and the expiry
// refuse a remembered token; other bytes are verified, not looked up.
func TestVerifiedCache(t *testing.T) {
	tk, clk := newTokens(t)
	tok, _, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tk.Verify(tok.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if tk.verified.Len() != 1 {
		t.Fatalf("cache holds %d tokens after one verification", tk.verified.Len())
	}
	again, err := tk.Verify(tok.Reveal())
	if err != nil || again != first {
		t.Fatalf("second verification: %+v, %v; want %+v", again, err, first)
	}
	// A forged signature on the remembered claims is not found by them.
	parts := strings.Split(tok.Reveal(), ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	_, err = tk.Verify(forged)
	wantUnauthorized(t, err, ReasonInvalid)

	clk.Add(DefaultTTL + DefaultLeeway)
	_, err = tk.Verify(tok.Reveal())
	wantUnauthorized(t, err, ReasonExpired)

	tok2, c2, err := tk.Issue("kitchen", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Verify(tok2.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := tk.Revoke(context.Background(), c2); err != nil {
		t.Fatal(err)
	}
	_, err = tk.Verify(tok2.Reveal())
	wantUnauthorized(t, err, ReasonRevoked)

}

// TestVerifiedCacheBounded: however many tokens verify, the cache stays
// under its bound.
func TestVerifiedCacheBounded(t *testing.T) {
	v := newVerifiedCache()
	now := time.Now()
	for i := range maxVerified * 2 {
		v.Add(tokenKey(strconv.Itoa(i)), Claims{ExpiresAt: now.Add(time.Hour)})
		if v.Len() > maxVerified {
			t.Fatalf("%d entries after %d puts", v.Len(), i+1)
		}
	}
	if _, ok := v.Get(tokenKey(strconv.Itoa(maxVerified*2 - 1))); !ok {
		t.Fatal("the newest entry was dropped")
	}
}
