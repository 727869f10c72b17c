package api

import (
	"encoding/hex"
	"strings"
)

// FormatFingerprint writes a certificate fingerprint as openssl does, and as
// the gateway prints its self-signed certificate's for a device to pin:
// uppercase hex pairs separated by colons ("AB:CD:...").
func FormatFingerprint(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	sb.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}
