package tokens

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerified bounds the verified-token cache: about 300 bytes an entry, so
// at most a few MiB, whatever clients send (only tokens that verified enter
// it).
const maxVerified = 8192

// verifiedCache remembers the claims of tokens that passed the signature and
// claims checks, keyed by the SHA-256 of the token's text (the same bytes
// get the same verdict; the token itself is not kept). A client sends the
// same token with every request, and verifying it again, an HMAC and three
// JSON decodes, was a tenth of the gateway's CPU under load. Only the checks
// whose answer can change with time are made again on a hit: expiry (iat and
// nbf only become more valid) and revocation, by the caller.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]Claims
}

func tokenKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func (v *verifiedCache) get(k [sha256.Size]byte) (Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.m[k]
	return c, ok
}

// put remembers c; when the cache is full it first drops the expired
// entries and, if that is not enough, an arbitrary tenth of the others.
func (v *verifiedCache) put(k [sha256.Size]byte, c Claims, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[[sha256.Size]byte]Claims)
	}
	if len(v.m) >= maxVerified {
		for key, old := range v.m {
			if !now.Before(old.ExpiresAt) {
				delete(v.m, key)
			}
		}
		for key := range v.m {
			if len(v.m) < maxVerified-maxVerified/10 {
				break
			}
			delete(v.m, key) // map order is random: an arbitrary entry
		}
	}
	v.m[k] = c
}

func (v *verifiedCache) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.m)
}
