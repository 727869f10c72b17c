package apiclient

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ovosgw/gateway/api"
)

// maxCAFile bounds a CA file read at start.
const maxCAFile = 1 << 20

// TLSConfig returns the TLS settings for a gateway on https: with caFile,
// only the certificates in that PEM file are trusted as roots (a private CA,
// or a self-signed gateway's own certificate); with fingerprint, the
// gateway's certificate must have that SHA-256 fingerprint (pinning a
// self-signed certificate: chain and name are then not checked unless caFile
// is given too, in which case both must hold). With neither it returns nil:
// the system's roots.
func TLSConfig(caFile, fingerprint string) (*tls.Config, error) {
	if caFile == "" && fingerprint == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := readLimited(caFile, maxCAFile)
		if err != nil {
			return nil, fmt.Errorf("apiclient: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("apiclient: CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if fingerprint == "" {
		return cfg, nil
	}
	want, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	roots := cfg.RootCAs
	// Go's own verification is replaced by VerifyConnection, which the
	// handshake still calls (crypto/tls: "VerifyConnection ... is called
	// ... even if InsecureSkipVerify is set"): the pin, then the chain when
	// a CA file was given.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the gateway sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		got := sha256.Sum256(leaf.Raw)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return fmt.Errorf("the gateway's certificate fingerprint %s is not the pinned one", api.FormatFingerprint(got[:]))
		}
		if roots == nil {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName})
		return err
	}
	return cfg, nil
}

// ParseFingerprint reads a SHA-256 certificate fingerprint as `openssl x509
// -fingerprint -sha256` prints it (colon-separated hex pairs, optionally
// after "sha256 Fingerprint=") or as plain hex, in either case.
func ParseFingerprint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '='); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(strings.ToLower(s), "sha256:")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("apiclient: the fingerprint must be a SHA-256 (64 hex digits, colons allowed)")
	}
	return b, nil
}

// readLimited reads a small file, refusing one larger than max.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}
