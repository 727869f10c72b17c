package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ovosgw/gateway/internal/selfsigned"
)

// healthcheck asks the server at cfg.Addr for /healthz: a container's
// HEALTHCHECK runs the binary itself, since a minimal image has no curl.
// When the server speaks TLS (a certificate file, or its self-signed one in
// the data dir) so does the check, and it accepts only the very certificate
// the server is configured with: it is pinned, not verified against a trust
// store or a name, since the check dials an address (127.0.0.1) that a
// certificate made for the gateway's public name need not carry.
func healthcheck(ctx context.Context, cfg config) error {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("healthcheck: bad address: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // our own host, never through a proxy
	if certFile := serverCertFile(cfg); certFile != "" {
		pin, err := leafCertificate(certFile)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{
			// Verification is the pin below, in VerifyConnection.
			InsecureSkipVerify: true, //nolint:gosec // the server's own certificate is pinned
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pin) {
					return errors.New("the server's certificate is not the one it is configured with")
				}
				return nil
			},
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/healthz", scheme, net.JoinHostPort(host, port)), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}

// serverCertFile is the certificate the server presents: GATEWAY_TLS_CERT,
// or the self-signed one kept in the data dir; "" when it speaks plain HTTP.
func serverCertFile(cfg config) string {
	switch {
	case cfg.TLSCert != "":
		return cfg.TLSCert
	case cfg.TLSSelfSigned:
		return filepath.Join(cfg.DataDir, selfsigned.CertFile)
	}
	return ""
}

// leafCertificate reads the first certificate of a PEM file (the server's
// own, before any chain) and returns its DER bytes.
func leafCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the server's certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("no certificate in %s", path)
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return blk.Bytes, nil
		}
	}
}
