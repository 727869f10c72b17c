// Package keys makes and checks the gateway's secrets: random access keys and
// tokens, and Argon2id hashes (RFC 9106) of the ones it must remember, so that
// a copy of the database gives an attacker no key that works.
package keys

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/ovosgw/gateway/api"
)

// AccessKeyPrefix starts every access key, so that a leaked key is easy to
// recognise (by a person, a log scrubber or a secret scanner).
const AccessKeyPrefix = "gwk_"

// Argon2id parameters for new hashes: the OWASP Password Storage Cheat Sheet's
// first recommended configuration (m=19 MiB, t=2, p=1), about 30 ms on a
// current core. They are constants on purpose: a hash records its own
// parameters, so raising them later still verifies the old hashes.
const (
	memoryKiB  = 19 * 1024
	iterations = 2
	threads    = 1
	saltLen    = 16
	keyLen     = 32
	randomLen  = 32
)

// Bounds on the parameters Verify accepts. A hash comes from a file that
// someone may have edited; without bounds a tampered "m=4194304" would make
// every login allocate 4 GiB. They leave room for stronger settings than the
// defaults.
const (
	maxMemoryKiB  = 64 * 1024
	maxIterations = 10
	maxThreads    = 8
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	maxEncodedLen = 256
)

// dummySalt feeds VerifyDummy. It is not a secret; it only has to have the
// length of a real salt.
const dummySalt = "ovos-gateway-dum"

// b64 returns the PHC string format's base64: standard alphabet, no
// padding, strict (so each hash has exactly one spelling).
func b64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

// errMalformed is what Verify says about any hash it cannot use; the encoded
// string itself is never echoed.
var errMalformed = errors.New("keys: malformed argon2id hash")

// NewAccessKey returns a new client access key: AccessKeyPrefix and 32 random
// bytes in unpadded base64url (256 bits, far beyond guessing).
func NewAccessKey() (api.Secret, error) {
	return NewToken(AccessKeyPrefix)
}

// NewToken returns prefix followed by 32 random bytes in unpadded base64url:
// for admin tokens, stream tickets and other bearer secrets.
func NewToken(prefix string) (api.Secret, error) {
	b := make([]byte, randomLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: reading random bytes: %w", err)
	}
	return api.Secret(prefix + base64.RawURLEncoding.EncodeToString(b)), nil
}

// params are an Argon2id hash's cost settings.
type params struct {
	memory  uint32
	time    uint32
	threads uint8
}

// Hash returns the Argon2id hash of secret as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>", with a fresh 16-byte salt.
// The secret itself is not in the result.
func Hash(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("keys: reading salt: %w", err)
	}
	p := params{memory: memoryKiB, time: iterations, threads: threads}
	sum := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, keyLen)
	return encode(p, salt, sum), nil
}

// Verify reports whether secret matches encoded, a hash made by Hash (or by
// any Argon2id implementation within sane parameter bounds). A mismatch is
// (false, nil); an encoded string that cannot be used is (false, error). The
// final comparison takes constant time.
func Verify(encoded, secret string) (bool, error) {
	p, salt, want, err := parse(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// CheckHash reports whether encoded is an Argon2id hash Verify can use,
// without computing one: an imported record must carry a hash, never a
// secret in plain text nor something no login could ever match.
func CheckHash(encoded string) error {
	_, _, _, err := parse(encoded)
	return err
}

// VerifyDummy spends the time of a Verify against a default-parameter hash
// and throws the result away. A login for an unknown client calls it, so that
// response times do not tell which client ids exist.
func VerifyDummy(secret string) {
	sum := argon2.IDKey([]byte(secret), []byte(dummySalt), iterations, memoryKiB, threads, keyLen)
	subtle.ConstantTimeCompare(sum, make([]byte, keyLen))
}

func encode(p params, salt, sum []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64().EncodeToString(salt), b64().EncodeToString(sum))
}

// parse reads a PHC string strictly: the exact field order Hash writes,
// decimal numbers without leading zeros, canonical base64, and parameters
// within bounds. Anything else is errMalformed.
func parse(encoded string) (params, []byte, []byte, error) {
	var p params
	if len(encoded) > maxEncodedLen {
		return p, nil, nil, errMalformed
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errMalformed
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, errMalformed
	}
	m, ok1 := number(kv[0], "m=", maxMemoryKiB)
	t, ok2 := number(kv[1], "t=", maxIterations)
	th, ok3 := number(kv[2], "p=", maxThreads)
	if !ok1 || !ok2 || !ok3 || t < 1 || th < 1 || m < 8*th {
		return p, nil, nil, errMalformed
	}
	p = params{memory: m, time: t, threads: uint8(th)}
	salt, err := decode(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, errMalformed
	}
	sum, err := decode(f[5])
	if err != nil || len(sum) < minKeyLen || len(sum) > maxKeyLen {
		return p, nil, nil, errMalformed
	}
	return p, salt, sum, nil
}

// number reads "<prefix><decimal>" with 1 to 10 digits, no sign and no leading
// zero, at most limit.
func number(s, prefix string, limit uint32) (uint32, bool) {
	d, ok := strings.CutPrefix(s, prefix)
	if !ok || len(d) == 0 || len(d) > 10 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(d, 10, 32)
	if err != nil || n > uint64(limit) {
		return 0, false
	}
	return uint32(n), true
}

// decode reads one base64 field. Go's decoder skips '\r' and '\n' even in
// strict mode, so bytes outside the alphabet are refused first: one hash,
// one spelling.
func decode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, errMalformed
		}
	}
	return b64().DecodeString(s)
}
