// Package transfer moves the gateway's durable records (clients with their
// key hashes, the blacklist, protected intents with their password hashes)
// out of one store and into another as JSON lines, so that an operator
// moves from the data dir to Redis, or back, without re-issuing a key
// (`gateway export`, `gateway import`). Secrets stay hashed: a record
// carrying anything but an Argon2id hash is refused.
package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/keys"
	"github.com/ovosgw/gateway/internal/store"
)

// Format is the version of the export, written in its first line.
const Format = 1

// maxLine bounds one line of an import.
const maxLine = 1 << 20

// Record types, the "type" of each line.
const (
	TypeHeader          = "gateway-export"
	TypeClient          = "client"
	TypeBlacklist       = "blacklist"
	TypeProtectedIntent = "protected_intent"
)

// Header is the first line.
type Header struct {
	Type   string    `json:"type"`
	Format int       `json:"format"`
	At     time.Time `json:"exported_at"`
}

// Client is a client as exported: its key only as the Argon2id hash. The
// key version is not carried: the importing store gives a new one, so the
// client logs in again with the same key.
type Client struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Aliases   []string  `json:"aliases"`
	KeyHash   string    `json:"key_hash"`
	CreatedAt time.Time `json:"created_at"`
}

// Blacklist is a blacklist entry (an admin's or an automatic ban's; the
// configured ranges come from the configuration, not from an export).
type Blacklist struct {
	Type string `json:"type"`
	api.BlacklistEntry
}

// ProtectedIntent is a protected pattern and its password's Argon2id hash.
type ProtectedIntent struct {
	Type         string    `json:"type"`
	Pattern      string    `json:"pattern"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// Clients is where the clients are read from and written to (the data
// dir's store or Redis).
type Clients interface {
	Clients(ctx context.Context) ([]store.Client, error)
	Client(ctx context.Context, id string) (store.Client, error)
	CreateClient(ctx context.Context, c store.Client) error
}

// Data is where the blacklist and the protected intents are (the data
// dir's store).
type Data interface {
	Blacklist(ctx context.Context) ([]api.BlacklistEntry, error)
	AddBlacklist(ctx context.Context, e api.BlacklistEntry) error
	ProtectedIntents(ctx context.Context) ([]store.ProtectedIntent, error)
	Protect(ctx context.Context, pattern, passwordHash string) error
}

// Export writes the header, then every client, blacklist entry and
// protected intent, one JSON object a line, and returns how many records
// of each it wrote.
func Export(ctx context.Context, w io.Writer, cs Clients, data Data, now time.Time) (Counts, error) {
	var n Counts
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Header{Type: TypeHeader, Format: Format, At: now.UTC()}); err != nil {
		return n, err
	}
	clients, err := cs.Clients(ctx)
	if err != nil {
		return n, err
	}
	for _, c := range clients {
		aliases := c.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		if err := enc.Encode(Client{Type: TypeClient, ID: c.ID, Name: c.Name, Aliases: aliases, KeyHash: c.KeyHash, CreatedAt: c.CreatedAt.UTC()}); err != nil {
			return n, err
		}
		n.Clients++
	}
	entries, err := data.Blacklist(ctx)
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		if e.Source == api.BlacklistConfig {
			continue
		}
		if err := enc.Encode(Blacklist{Type: TypeBlacklist, BlacklistEntry: e}); err != nil {
			return n, err
		}
		n.Blacklist++
	}
	intents, err := data.ProtectedIntents(ctx)
	if err != nil {
		return n, err
	}
	for _, p := range intents {
		if err := enc.Encode(ProtectedIntent{Type: TypeProtectedIntent, Pattern: p.Pattern, PasswordHash: p.PasswordHash, CreatedAt: p.CreatedAt.UTC()}); err != nil {
			return n, err
		}
		n.Intents++
	}
	return n, nil
}

// Counts says how many records of each kind went through.
type Counts struct {
	Clients, Blacklist, Intents int
	// Unchanged counts clients already there with the same key hash.
	Unchanged int
}

// LineError is a record that was not imported: its line and why.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause.
func (e LineError) Unwrap() error { return e.Err }

// Import reads an export and writes each record: clients to cs, the rest to
// data. A client whose id is taken by a client with the same key hash is
// already there (counted as Unchanged); any other record that cannot be
// written is reported (one LineError each, in the joined error) and the
// others go on. A missing or unknown header stops it before anything is
// written.
func Import(ctx context.Context, r io.Reader, cs Clients, data Data) (Counts, error) {
	var n Counts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	var errs []error
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var kind struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &kind); err != nil {
			if line == 1 {
				return n, LineError{line, errors.New("not a gateway export (the first line is no JSON object)")}
			}
			errs = append(errs, LineError{line, fmt.Errorf("not a JSON object: %v", err)})
			continue
		}
		if line == 1 {
			var h Header
			if err := strict(raw, &h); err != nil || h.Type != TypeHeader {
				return n, LineError{line, fmt.Errorf("not a gateway export (the first line is no %.40q header)", TypeHeader)}
			}
			if h.Format != Format {
				return n, LineError{line, fmt.Errorf("export format %d, this gateway reads format %d", h.Format, Format)}
			}
			continue
		}
		if err := importOne(ctx, kind.Type, raw, cs, data, &n); err != nil {
			errs = append(errs, LineError{line, err})
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, LineError{line + 1, fmt.Errorf("cannot read: %w", err)})
	}
	if line == 0 {
		return n, errors.New("empty input: not a gateway export")
	}
	return n, errors.Join(errs...)
}

// strict decodes raw into v, refusing unknown fields (a plain-text secret
// under some other name among them).
func strict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// why says why a store refused a record: an api error's detail, or the
// cause itself (the operator's own terminal reads it).
func why(err error) string {
	if api.ErrorCode(err) != api.EINTERNAL {
		return api.ErrorDetail(err)
	}
	return err.Error()
}

func importOne(ctx context.Context, kind string, raw []byte, cs Clients, data Data, n *Counts) error {
	switch kind {
	case TypeClient:
		var c Client
		if err := strict(raw, &c); err != nil {
			return err
		}
		if err := keys.CheckHash(c.KeyHash); err != nil {
			return fmt.Errorf("client %.40q: key_hash is not an Argon2id hash", c.ID)
		}
		err := cs.CreateClient(ctx, store.Client{ID: c.ID, Name: c.Name, Aliases: c.Aliases, KeyHash: c.KeyHash, CreatedAt: c.CreatedAt})
		if api.ErrorCode(err) == api.ECONFLICT {
			if have, gerr := cs.Client(ctx, c.ID); gerr == nil && have.KeyHash == c.KeyHash {
				n.Unchanged++
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("client %.40q: %s", c.ID, why(err))
		}
		n.Clients++
	case TypeBlacklist:
		var b Blacklist
		if err := strict(raw, &b); err != nil {
			return err
		}
		if b.Source == api.BlacklistConfig {
			return fmt.Errorf("blacklist %.40q: a configured range belongs in GATEWAY_IP_BLACKLIST", b.CIDR)
		}
		if err := data.AddBlacklist(ctx, b.BlacklistEntry); err != nil {
			return fmt.Errorf("blacklist %.40q: %s", b.CIDR, why(err))
		}
		n.Blacklist++
	case TypeProtectedIntent:
		var p ProtectedIntent
		if err := strict(raw, &p); err != nil {
			return err
		}
		if err := keys.CheckHash(p.PasswordHash); err != nil {
			return fmt.Errorf("protected intent %.40q: password_hash is not an Argon2id hash", p.Pattern)
		}
		if err := data.Protect(ctx, p.Pattern, p.PasswordHash); err != nil {
			return fmt.Errorf("protected intent %.40q: %s", p.Pattern, why(err))
		}
		n.Intents++
	default:
		return fmt.Errorf("unknown record type %.40q (want %s)", kind, strings.Join([]string{TypeClient, TypeBlacklist, TypeProtectedIntent}, ", "))
	}
	return nil
}
