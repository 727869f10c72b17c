package selfsigned

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func load(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block in the certificate file")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCreate(t *testing.T, dir string, hosts []string, at time.Time) (string, string, string) {
	t.Helper()
	c, k, fp, err := LoadOrCreate(dir, hosts, at)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return c, k, fp
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	certFile, keyFile, fp := mustCreate(t, dir, []string{"gateway.lan", "192.168.1.20", "[fd00::20]", "Kitchen.LAN."}, now)

	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	c := load(t, certFile)
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key = %T, want ECDSA P-256", c.PublicKey)
	}
	if c.IsCA || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("IsCA %v, ExtKeyUsage %v: want a server leaf", c.IsCA, c.ExtKeyUsage)
	}
	if got := c.NotAfter.Sub(now); got < 700*24*time.Hour || got > 825*24*time.Hour {
		t.Errorf("validity = %s, want about two years (under 825 days)", got)
	}
	if !c.NotBefore.Before(now) {
		t.Errorf("NotBefore %v is not before now", c.NotBefore)
	}
	for _, h := range []string{"gateway.lan", "kitchen.lan", "192.168.1.20", "fd00::20"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%s): %v", h, err)
		}
	}
	if err := c.VerifyHostname("other.lan"); err == nil {
		t.Error("the certificate covers a host it was not made for")
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) || fp != Fingerprint(c.Raw) {
		t.Errorf("fingerprint = %q", fp)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("the files are not a key pair: %v", err)
	}
}

// TestFingerprintLikeOpenSSL compares with `openssl x509 -fingerprint
// -sha256` when openssl is installed.
func TestFingerprintLikeOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	certFile, _, fp := mustCreate(t, t.TempDir(), nil, time.Now())
	out, err := exec.Command(openssl, "x509", "-in", certFile, "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
	if fp != want {
		t.Errorf("fingerprint %s, openssl says %s", fp, want)
	}
	// A self-signed leaf works as its own trust anchor for OpenSSL clients
	// too (curl --cacert).
	if out, err := exec.Command(openssl, "verify", "-CAfile", certFile, certFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify: %v: %s", err, out)
	}
}

func TestDefaultHosts(t *testing.T) {
	certFile, _, _ := mustCreate(t, t.TempDir(), nil, now)
	c := load(t, certFile)
	for _, h := range DefaultHosts() {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("default host %s not covered: %v", h, err)
		}
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("%s not covered: %v", h, err)
		}
	}
}

func TestReuse(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"gateway.lan", "192.168.1.20"}
	_, keyFile, fp := mustCreate(t, dir, hosts, now)
	key, _ := os.ReadFile(keyFile)
	tests := []struct {
		name  string
		hosts []string
		at    time.Time
		same  bool
	}{
		{"same hosts", hosts, now, true},
		{"subset of hosts", []string{"192.168.1.20"}, now.Add(24 * time.Hour), true},
		{"a year later", hosts, now.Add(365 * 24 * time.Hour), true},
		// Renewed when it would expire within 30 days: clients see the
		// change at a restart, not as a sudden failure.
		{"29 days before expiry", hosts, now.Add(Validity - 29*24*time.Hour), false},
		{"expired", hosts, now.Add(Validity + time.Hour), false},
		{"new host", append(hosts, "new.lan"), now, false},
		{"new ip", append(hosts, "10.0.0.1"), now, false},
		{"clock before NotBefore", hosts, now.Add(-48 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			copyFiles(t, dir, d)
			_, kf, got := mustCreate(t, d, tt.hosts, tt.at)
			if (got == fp) != tt.same {
				t.Errorf("fingerprint %s, original %s: want same %v", got, fp, tt.same)
			}
			k2, _ := os.ReadFile(kf)
			if bytes.Equal(k2, key) != tt.same {
				t.Errorf("key reused = %v, want %v", bytes.Equal(k2, key), tt.same)
			}
		})
	}
}

func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	for _, n := range []string{CertFile, KeyFile} {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrokenFilesReplaced: files that are not a usable pair are replaced,
// never served.
func TestBrokenFilesReplaced(t *testing.T) {
	other := t.TempDir()
	mustCreate(t, other, []string{"localhost"}, now)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"garbage certificate", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CertFile), []byte("not a cert"), 0o600)
		}},
		{"missing key", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, KeyFile)) }},
		{"key of another certificate", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(other, KeyFile))
			os.WriteFile(filepath.Join(dir, KeyFile), b, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, fp := mustCreate(t, dir, []string{"localhost"}, now)
			tt.setup(t, dir)
			c, k, fp2 := mustCreate(t, dir, []string{"localhost"}, now)
			if fp2 == fp {
				t.Error("broken pair reused")
			}
			if _, err := tls.LoadX509KeyPair(c, k); err != nil {
				t.Errorf("result is not a key pair: %v", err)
			}
		})
	}
}

func TestKeyPermsTightened(t *testing.T) {
	dir := t.TempDir()
	_, keyFile, _ := mustCreate(t, dir, []string{"localhost"}, now)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, dir, []string{"localhost"}, now)
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v after reuse, want 0600", fi.Mode().Perm())
	}
}

func TestInvalidHosts(t *testing.T) {
	for _, hosts := range [][]string{
		{"bad host"}, {"exa mple.com"}, {"-bad.lan"}, {"fe80::1%eth0"}, {"a..b"}, {""}, {"host:8443"},
		{strings.Repeat("a", 64) + ".lan"},
	} {
		if _, _, _, err := LoadOrCreate(t.TempDir(), hosts, now); err == nil {
			t.Errorf("LoadOrCreate(%q) succeeded", hosts)
		}
	}
	if _, _, _, err := LoadOrCreate("", nil, now); err == nil {
		t.Error("LoadOrCreate with an empty directory succeeded")
	}
}

// TestTLSHandshake: a Go client trusting the certificate file connects to a
// server using the pair, by name and by IP.
func TestTLSHandshake(t *testing.T) {
	certFile, keyFile, _ := mustCreate(t, t.TempDir(), []string{"localhost", "127.0.0.1"}, time.Now())
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				io.WriteString(c, "ok")
			}()
		}
	}()
	pemBytes, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate not added to the pool")
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("handshake as %s: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "ok" {
			t.Errorf("read %q", b)
		}
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}); err == nil {
		c.Close()
		t.Error("handshake succeeded without trusting the certificate")
	}
}
