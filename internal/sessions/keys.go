package sessions

import (
	"crypto/sha256"
	"sync"
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
// sending its key with every request pays the check once.
type verifiedKeys struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedKey
}

func (v *verifiedKeys) get(h [sha256.Size]byte) (verifiedKey, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.m[h]
	return k, ok
}

// put remembers k; when full, an arbitrary tenth of the entries goes first.
func (v *verifiedKeys) put(h [sha256.Size]byte, k verifiedKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[[sha256.Size]byte]verifiedKey)
	}
	if len(v.m) >= maxVerifiedKeys {
		for old := range v.m {
			if len(v.m) < maxVerifiedKeys-maxVerifiedKeys/10 {
				break
			}
			delete(v.m, old) // map order is random: an arbitrary entry
		}
	}
	v.m[h] = k
}

func (v *verifiedKeys) drop(h [sha256.Size]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, h)
}
