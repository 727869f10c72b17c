package keys

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestNewAccessKey(t *testing.T) {
	a, err := NewAccessKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewAccessKey()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two access keys are equal")
	}
	rest, ok := strings.CutPrefix(a.Reveal(), AccessKeyPrefix)
	if !ok {
		t.Fatalf("access key lacks prefix %q", AccessKeyPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) != 32 {
		t.Fatalf("access key body: %d bytes, err %v; want 32 bytes of base64url", len(raw), err)
	}
}

func TestNewToken(t *testing.T) {
	tok, err := NewToken("adm_")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^adm_[A-Za-z0-9_-]{43}$`).MatchString(tok.Reveal()) {
		t.Fatalf("token has unexpected shape (len %d)", len(tok.Reveal()))
	}
}

func TestHashVerify(t *testing.T) {
	const secret = "gwk_correct-horse-battery-staple"
	enc, err := Hash(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(enc) {
		t.Fatalf("hash %q is not the documented PHC form", enc)
	}
	if strings.Contains(enc, secret) || strings.Contains(enc, base64.RawStdEncoding.EncodeToString([]byte(secret))) {
		t.Fatal("encoded hash contains the secret")
	}

	// A hash with other (weaker but in-bounds) parameters, as an older or
	// different implementation might have written, must still verify.
	salt := []byte("0123456789abcdef")
	other := encode(params{memory: 8 * 1024, time: 1, threads: 2}, salt,
		argon2.IDKey([]byte(secret), salt, 1, 8*1024, 2, 32))

	// A hash whose last byte is flipped: well-formed, but matches nothing.
	p, s, sum, err := parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	sum[len(sum)-1] ^= 1
	flipped := encode(p, s, sum)

	tests := []struct {
		name    string
		encoded string
		secret  string
		want    bool
	}{
		{"right secret", enc, secret, true},
		{"wrong secret", enc, secret + "x", false},
		{"empty secret", enc, "", false},
		{"other parameters", other, secret, true},
		{"flipped hash byte", flipped, secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.encoded, tt.secret)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHashSalted(t *testing.T) {
	a, err := Hash("same")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Hash("same")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two hashes of one secret are equal: salt not random")
	}
}

// TestVerifyTampered feeds Verify hashes that a edited file could hold. None
// may verify, and none may make Verify do unbounded work: they fail in the
// parser, before any Argon2 runs.
func TestVerifyTampered(t *testing.T) {
	const salt = "c2FsdHNhbHRzYWx0c2FsdA"                     // 16 bytes
	const sum = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g" // 32 bytes
	good := "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + sum
	if _, _, _, err := parse(good); err != nil {
		t.Fatalf("control case does not parse: %v", err)
	}
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + sum},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + sum},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + sum},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + sum},
		{"absurd memory", "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + sum},
		{"memory overflow", "$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + sum},
		{"absurd time", "$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + sum},
		{"absurd threads", "$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + sum},
		{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + sum},
		{"zero threads", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + sum},
		{"memory below 8 per thread", "$argon2id$v=19$m=8,t=2,p=2$" + salt + "$" + sum},
		{"negative", "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + sum},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + sum},
		{"plus sign", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + sum},
		{"parameters reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + sum},
		{"parameter missing", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + sum},
		{"extra parameter", "$argon2id$v=19$m=19456,t=2,p=1,k=1$" + salt + "$" + sum},
		{"extra field", good + "$" + sum},
		{"missing hash", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + sum},
		{"non-canonical base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:len(salt)-1] + "B$" + sum},
		{"url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("_", 43)},
		{"line break in salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHR\rzYWx0c2FsdA$" + sum},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + sum},
		{"short hash", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$aGFzaA"},
		{"too long", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 300) + "$" + sum},
		{"leading text", "x" + good},
		{"plain secret", "gwk_notahashatall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.encoded, "anything")
			if err == nil || ok {
				t.Fatalf("Verify = %v, %v; want false and an error", ok, err)
			}
			if tt.encoded != "" && strings.Contains(err.Error(), tt.encoded) {
				t.Fatal("error echoes the encoded hash")
			}
		})
	}
}

// TestDummyMatchesDefaults keeps VerifyDummy's work equal to a real Verify
// of a default hash: same salt length, same parameters.
func TestDummyMatchesDefaults(t *testing.T) {
	if len(dummySalt) != saltLen {
		t.Fatalf("dummy salt is %d bytes, real salts %d", len(dummySalt), saltLen)
	}
	enc := encode(params{memoryKiB, iterations, threads}, []byte(dummySalt), make([]byte, keyLen))
	p, _, sum, err := parse(enc)
	if err != nil {
		t.Fatalf("default parameters are outside Verify's bounds: %v", err)
	}
	if p != (params{memoryKiB, iterations, threads}) || len(sum) != keyLen {
		t.Fatalf("parsed %+v/%d", p, len(sum))
	}
}

// FuzzParse checks the PHC parser on arbitrary input: it never panics, what it
// accepts is within bounds, and it accepts only canonical spellings (so the
// parsed hash re-encodes to the very same string).
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=65536,t=10,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, sum, err := parse(s)
		if err != nil {
			return
		}
		if p.memory > maxMemoryKiB || p.time < 1 || p.time > maxIterations || p.threads < 1 || p.threads > maxThreads {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
		if len(salt) < minSaltLen || len(salt) > maxSaltLen || len(sum) < minKeyLen || len(sum) > maxKeyLen {
			t.Fatalf("accepted salt %d / hash %d bytes", len(salt), len(sum))
		}
		if again := encode(p, salt, sum); again != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, again)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	enc, err := Hash("secret")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(enc, "secret"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		VerifyDummy("secret")
	}
}

// CheckHash takes what Hash makes and refuses what Verify could not use:
// a plain secret, another algorithm, a damaged hash.
func TestCheckHash(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHash(h); err != nil {
		t.Fatalf("CheckHash of Hash's output: %v", err)
	}
	for _, bad := range []string{"", "correct horse", "$2a$10$abcdefghijklmnopqrstuv", h[:len(h)-2], strings.Replace(h, "argon2id", "argon2i", 1)} {
		if err := CheckHash(bad); err == nil {
			t.Errorf("CheckHash(%q) accepted it", bad)
		}
	}
}
