package sessions

import (
	"crypto/sha256"

	lru "github.com/hashicorp/golang-lru/v2"
)

// maxVerifiedKeys bounds the remembered client key credentials (only ones
// that verified enter).
const maxVerifiedKeys = 4096

// verifiedKey is whose a verified credential is, and at which key version.
type verifiedKey struct {
	clientID   string
	keyVersion int64
}

// verifiedKeys remembers client key credentials that passed the Argon2id
// check, by the SHA-256 of the credential (the key itself is not kept: 256
// random bits are beyond guessing from their hash), so that an OpenAI client
// sending its key with every request pays the check once. When full, the
// least recently used credential is forgotten first.
type verifiedKeys = lru.Cache[[sha256.Size]byte, verifiedKey]

func newVerifiedKeys() *verifiedKeys {
	c, _ := lru.New[[sha256.Size]byte, verifiedKey](maxVerifiedKeys) // fails only for a size <= 0
	return c
}
