package tokens

import (
	"crypto/sha256"

	lru "github.com/hashicorp/golang-lru/v2"
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
// nbf only become more valid) and revocation, by the caller. When full, the
// least recently used token is forgotten first (an expired one is never
// used again, so it goes before any in use).
type verifiedCache = lru.Cache[[sha256.Size]byte, Claims]

func newVerifiedCache() *verifiedCache {
	c, _ := lru.New[[sha256.Size]byte, Claims](maxVerified) // fails only for a size <= 0
	return c
}

func tokenKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }
