// Package selfsigned makes the certificate that lets the gateway serve TLS
// on a home network with nothing else installed: a self-signed ECDSA P-256
// certificate naming the machine, kept in the data directory and reused
// across restarts, so that clients can pin it (satellite --ca-file) or
// compare its fingerprint once.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
)

// File names inside the directory.
const (
	CertFile = "tls-selfsigned.crt"
	KeyFile  = "tls-selfsigned.key"
)

// Validity is how long a new certificate lasts (about two years, under the
// 825 days Apple platforms accept for a TLS server certificate).
const Validity = 2 * 365 * 24 * time.Hour

// RenewBefore is how close to its end a certificate is replaced at start.
const RenewBefore = 30 * 24 * time.Hour

// backdate covers clocks a little behind ours.
const backdate = time.Hour

// maxCNLen is X.509's upper bound on a common name (RFC 5280, ub-common-name).
const maxCNLen = 64

// maxHostLen bounds a DNS name (RFC 1035).
const maxHostLen = 253

// DefaultHosts are the names a certificate gets when none are given:
// localhost, 127.0.0.1, ::1 and the machine's host name (when it has one).
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && validDNSName(strings.ToLower(h)) {
		hosts = append(hosts, strings.ToLower(h))
	}
	return hosts
}

// LoadOrCreate returns the certificate and key files in dir, creating them
// (dir too, 0700) when missing, unreadable, not matching each other, not
// covering every one of hosts, or valid for less than RenewBefore after now.
// hosts are IP addresses and DNS names (DefaultHosts when empty). The key
// file is written 0600 and replaced atomically, like the certificate.
// fingerprint is the SHA-256 of the certificate's DER in uppercase hex
// pairs separated by colons, as `openssl x509 -fingerprint -sha256` prints
// it.
func LoadOrCreate(dir string, hosts []string, now time.Time) (certFile, keyFile, fingerprint string, err error) {
	if dir == "" {
		return "", "", "", errors.New("selfsigned: empty directory")
	}
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	ips, names, err := parseHosts(hosts)
	if err != nil {
		return "", "", "", err
	}
	certFile, keyFile = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if der, ok := reusable(certFile, keyFile, ips, names, now); ok {
		// Tighten a key file loosened by hand (best effort).
		if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			_ = os.Chmod(keyFile, 0o600)
		}
		return certFile, keyFile, Fingerprint(der), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", fmt.Errorf("selfsigned: create %s: %w", dir, err)
	}
	certPEM, keyPEM, der, err := create(ips, names, now)
	if err != nil {
		return "", "", "", err
	}
	// The key first: a certificate never sits next to a key it does not
	// belong to for longer than the two renames.
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return "", "", "", err
	}
	return certFile, keyFile, Fingerprint(der), nil
}

// Fingerprint is the SHA-256 of der as the satellite pins it ("AB:CD:...",
// api.FormatFingerprint).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return api.FormatFingerprint(sum[:])
}

// parseHosts splits hosts into IP addresses and DNS names ("[::1]" is an
// IP; names are lowercased).
func parseHosts(hosts []string) ([]netip.Addr, []string, error) {
	var ips []netip.Addr
	var names []string
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
			if a.Zone() != "" {
				return nil, nil, fmt.Errorf("selfsigned: host %q has a zone", h)
			}
			a = a.Unmap()
			if !slices.Contains(ips, a) {
				ips = append(ips, a)
			}
			continue
		}
		n := strings.ToLower(strings.TrimSuffix(h, "."))
		if !validDNSName(n) {
			return nil, nil, fmt.Errorf("selfsigned: %q is neither an IP address nor a DNS name", h)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(ips) == 0 && len(names) == 0 {
		return nil, nil, errors.New("selfsigned: no host names")
	}
	return ips, names, nil
}

// validDNSName accepts lowercase LDH labels (RFC 1123), underscores (seen
// in local names) and a leading "*." wildcard.
func validDNSName(n string) bool {
	if n == "" || len(n) > maxHostLen {
		return false
	}
	n = strings.TrimPrefix(n, "*.")
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// reusable reports whether the files hold a matching pair that covers every
// host and stays valid long enough, and returns the certificate's DER.
func reusable(certFile, keyFile string, ips []netip.Addr, names []string, now time.Time) ([]byte, bool) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || len(pair.Certificate) == 0 {
		return nil, false
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, false
	}
	if now.Before(cert.NotBefore) || cert.NotAfter.Sub(now) < RenewBefore {
		return nil, false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, func(c net.IP) bool {
			a, ok := netip.AddrFromSlice(c)
			return ok && a.Unmap() == ip
		}) {
			return nil, false
		}
	}
	for _, n := range names {
		if !slices.Contains(cert.DNSNames, n) {
			return nil, false
		}
	}
	return cert.Raw, true
}

// create makes a new key and certificate.
func create(ips []netip.Addr, names []string, now time.Time) (certPEM, keyPEM, der []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("selfsigned: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("selfsigned: serial number: %w", err)
	}
	cn := "ovos-gateway"
	if i := slices.IndexFunc(names, func(n string) bool { return n != "localhost" }); i >= 0 {
		cn = names[i]
	} else if len(names) > 0 {
		cn = names[0]
	}
	if len(cn) > maxCNLen {
		cn = "ovos-gateway"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"OVOS gateway (self-signed)"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(Validity),
		// An end-entity certificate (not a CA): browsers refuse a CA
		// certificate used as a server's own.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("selfsigned: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("selfsigned: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, der, nil
}

// writeFile replaces path with data atomically (a temporary file in the
// same directory, created with mode, then renamed).
func writeFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	return nil
}
