package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
)

// Files kept in the data dir, all owner-only (0600, in a 0700 directory).
const (
	dbFile         = "gateway.db"
	jwtSecretFile  = "jwt-secret.bin"
	adminTokenFile = "admin-token.sha256"
)

// openStore opens the client store in the data dir (which the server
// creates owner-only beforehand): the server and the commands share it.
func openStore(ctx context.Context, dir string) (*store.Store, error) {
	return store.Open(ctx, filepath.Join(dir, dbFile))
}

// openExistingStore is openStore for the commands: it says on stderr which
// data dir it uses, and refuses one that holds no gateway database instead
// of making it, so that a command run from another folder (whose ./data
// is not the server's) fails rather than edit a data dir no server reads.
func openExistingStore(ctx context.Context, dir string, stderr io.Writer) (*store.Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	fmt.Fprintf(stderr, "data dir: %s\n", abs)
	if _, err := os.Stat(filepath.Join(abs, dbFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no gateway data (no %s); the server makes it at its first start: "+
				"run the command with the server's --data-dir (GATEWAY_DATA_DIR)", abs, dbFile)
		}
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return openStore(ctx, abs)
}

// jwtSecret returns the configured secret, or the one kept in the data dir,
// made at the first start (64 random bytes, owner-only).
func jwtSecret(cfg config) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret.Reveal()), nil
	}
	path := filepath.Join(cfg.DataDir, jwtSecretFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) < 32 {
			return nil, fmt.Errorf("%s is shorter than 32 bytes; remove it to make a new one", path)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	b = make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := writeNew(path, b); err != nil {
		return nil, fmt.Errorf("keep JWT secret: %w", err)
	}
	return b, nil
}

// adminTokenHash returns the SHA-256 of the admin token: of the configured
// one, else of the one kept (as a hash only) in the data dir. At the first
// start without a configured token it makes one and returns it too, so it
// can be printed this once.
func adminTokenHash(cfg config) (hash [sha256.Size]byte, generated api.Secret, err error) {
	if cfg.AdminToken != "" {
		return sha256.Sum256([]byte(cfg.AdminToken.Reveal())), "", nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	hash, err = readAdminTokenHash(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return hash, "", err
	}
	tok, hash, err := newAdminToken()
	if err != nil {
		return hash, "", err
	}
	if err := writeNew(path, []byte(hex.EncodeToString(hash[:])+"\n")); err != nil {
		return hash, "", fmt.Errorf("keep admin token hash: %w", err)
	}
	return hash, tok, nil
}

// readAdminTokenHash reads the admin token's hash kept at path; the error
// wraps fs.ErrNotExist when there is none.
func readAdminTokenHash(path string) (hash [sha256.Size]byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return hash, err
		}
		return hash, fmt.Errorf("read admin token hash: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != sha256.Size {
		return hash, fmt.Errorf("%s is damaged; run gateway admin-token reset to make a new admin token", path)
	}
	copy(hash[:], raw)
	return hash, nil
}

// newAdminToken makes an admin token (256 random bits) and its hash.
func newAdminToken() (api.Secret, [sha256.Size]byte, error) {
	tok, err := keys.NewToken("gwa_")
	if err != nil {
		return "", [sha256.Size]byte{}, err
	}
	return tok, sha256.Sum256([]byte(tok.Reveal())), nil
}

// resetAdminToken makes a new admin token and replaces the hash kept in dir
// by its own (written beside it, then renamed over it, so that a server
// reading it sees the old hash or the new one, never half of one). It
// returns the token, which is nowhere else.
func resetAdminToken(dir string) (api.Secret, error) {
	tok, hash, err := newAdminToken()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, adminTokenFile+".*") // owner-only
	if err != nil {
		return "", fmt.Errorf("keep admin token hash: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename, there is none
	if _, err := f.WriteString(hex.EncodeToString(hash[:]) + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("keep admin token hash: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("keep admin token hash: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("keep admin token hash: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, adminTokenFile)); err != nil {
		return "", fmt.Errorf("keep admin token hash: %w", err)
	}
	return tok, nil
}

// watchAdminToken re-reads the admin token's hash kept in dir every
// interval, as the store watcher re-reads what the command line changed,
// and calls set when it changed (`gateway admin-token reset` beside a
// running server). It returns when ctx ends.
func watchAdminToken(ctx context.Context, dir string, every time.Duration, seen [sha256.Size]byte, set func([sha256.Size]byte), log *slog.Logger) {
	path := filepath.Join(dir, adminTokenFile)
	t := time.NewTicker(every)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, err := readAdminTokenHash(path)
		if err != nil {
			// Kept (the old token still works) until the file is right again.
			if !failing {
				log.Warn("admin token hash unreadable; the current admin token stays", slog.Any("err", err))
			}
			failing = true
			continue
		}
		failing = false
		if h != seen {
			seen = h
			set(h)
			log.Info("admin token replaced (gateway admin-token reset); the previous one no longer works")
		}
	}
}

// writeNew writes a new owner-only file, failing if it exists.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
