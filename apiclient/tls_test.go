package apiclient_test

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	formatted := api.FormatFingerprint(sum[:])
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"openssl form", formatted, true},
		{"openssl line", "sha256 Fingerprint=" + formatted, true},
		{"lower hex", strings.ToLower(strings.ReplaceAll(formatted, ":", "")), true},
		{"prefixed", "SHA256:" + formatted, true},
		{"too short", formatted[:20], false},
		{"not hex", strings.Repeat("zz", 32), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := apiclient.ParseFingerprint(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && string(b) != string(sum[:]) {
				t.Fatalf("got %x", b)
			}
		})
	}
}

// TestTLSConfig checks trust against a real TLS server: its certificate as
// the CA file, its pinned fingerprint, and refusals of a wrong pin and of no
// trust at all.
func TestTLSConfig(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	cert := srv.Certificate()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	right := api.FormatFingerprint(sum[:])
	wrongSum := sha256.Sum256([]byte("another certificate"))
	wrong := api.FormatFingerprint(wrongSum[:])

	tests := []struct {
		name, ca, fp string
		ok           bool
	}{
		{"system roots refuse a private certificate", "", "", false},
		{"CA file", caFile, "", true},
		{"pinned fingerprint", "", right, true},
		{"CA file and pin", caFile, right, true},
		{"wrong pin", "", wrong, false},
		{"CA file but wrong pin", caFile, wrong, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := apiclient.TLSConfig(tt.ca, tt.fp)
			if err != nil {
				t.Fatal(err)
			}
			tr := &http.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("GET = %v, want ok %v", err, tt.ok)
			}
		})
	}
	t.Run("bad CA file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pem")
		os.WriteFile(bad, []byte("not a certificate"), 0o600)
		if _, err := apiclient.TLSConfig(bad, ""); err == nil {
			t.Error("a file without certificates was accepted")
		}
		if _, err := apiclient.TLSConfig(filepath.Join(t.TempDir(), "missing.pem"), ""); err == nil {
			t.Error("a missing file was accepted")
		}
		if _, err := apiclient.TLSConfig("", "12:34"); err == nil {
			t.Error("a short fingerprint was accepted")
		}
	})
}

// TestSelfSignedGateway runs the real gateway on TLS with its self-signed
// certificate and talks to it through the pinned fingerprint it prints, and
// through its certificate file as the CA.
func TestSelfSignedGateway(t *testing.T) {
	bin := gatewaytest.Binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "GATEWAY_ADDR=127.0.0.1:0", "GATEWAY_DATA_DIR="+dir, "GATEWAY_TLS_SELF_SIGNED=true")
	var out gatewaytest.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	var base, fp, admin string
	listen := regexp.MustCompile(`gateway listening on (https://\S+) `)
	fpLine := regexp.MustCompile(`fingerprint: (\S+)`)
	adminLine := regexp.MustCompile(`admin token \(shown once, only its hash is kept\): (\S+)`)
	gatewaytest.EventuallyWithin(t, waitFor, "the gateway to listen", func() bool {
		if m := listen.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	if m := fpLine.FindStringSubmatch(out.String()); m != nil {
		fp = m[1]
	}
	if m := adminLine.FindStringSubmatch(out.String()); m != nil {
		admin = m[1]
	}
	if base == "" || fp == "" || admin == "" {
		t.Skipf("the gateway does not serve self-signed TLS here; it printed:\n%s", out.String())
	}
	pinned, err := apiclient.TLSConfig("", fp)
	if err != nil {
		t.Fatal(err)
	}
	key := createClient(t, base, pinned, admin, "cellar")

	for _, tt := range []struct{ name, ca, fp string }{
		{"pinned", "", fp},
		{"CA file", filepath.Join(dir, "tls-selfsigned.crt"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := apiclient.TLSConfig(tt.ca, tt.fp)
			if err != nil {
				t.Fatal(err)
			}
			c, err := apiclient.New(apiclient.Config{BaseURL: base, ClientID: "cellar", AccessKey: key, TLSConfig: tc})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.SayAndWait(context.Background(), api.UtteranceRequest{Utterance: "hello"}, 10*time.Second)
			if err != nil || res.Status != api.StatusHandled {
				t.Fatalf("hello over TLS = %+v, %v", res, err)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		c, _ := apiclient.New(apiclient.Config{BaseURL: base, ClientID: "cellar", AccessKey: key})
		if _, err := c.Session(context.Background()); err == nil {
			t.Fatal("logged in over TLS without trusting the certificate")
		}
	})
}

// createClient registers a client through the admin API over TLS.
func createClient(t *testing.T, base string, tc *tlsConfig, admin, id string) api.Secret {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	body := strings.NewReader(`{"id":"` + id + `","name":"` + id + `"}`)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/clients", body)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	k := decodeBody[api.ClientKeyResponse](t, resp)
	if resp.StatusCode != http.StatusCreated || k.AccessKey == "" {
		t.Fatalf("create client: %d", resp.StatusCode)
	}
	return k.AccessKey
}
