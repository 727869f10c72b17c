package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/cidr"
	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/keys"
)

// multiFlag collects a repeated string flag (--alias a --alias b).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterspersed parses flags that may come after positional arguments
// ("clients add ID --name N").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// runAdminCommand runs "clients", "blacklist" or "intents" on the data dir.
func runAdminCommand(ctx context.Context, group string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "gateway %s needs a subcommand\n", group)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs, vals := newFlagSet(group+" "+sub, stderr)
	var name, ttl, reason string
	var aliases multiFlag
	switch group + " " + sub {
	case "clients add":
		fs.StringVar(&name, "name", "", "display name")
		fs.Var(&aliases, "alias", "another name the client answers to (repeatable)")
	case "blacklist add":
		fs.StringVar(&ttl, "ttl", "", "how long the entry lasts, e.g. 1h (default: forever)")
		fs.StringVar(&reason, "reason", "", "why the range is blocked")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagErr(err)
	}
	cfg, err := loadConfig(getenv, fs, vals)
	if err != nil {
		return err
	}
	st, closeStore, err := openRecords(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	reg, err := clients.New(st, nil, nil)
	if err != nil {
		return err
	}

	want := func(n int) error {
		if len(pos) != n {
			fmt.Fprintf(stderr, "gateway %s %s takes %d argument(s)\n", group, sub, n)
			return errUsage
		}
		return nil
	}
	switch group + " " + sub {
	case "clients add":
		if err := want(1); err != nil {
			return err
		}
		c, err := reg.Create(ctx, api.CreateClientRequest{ID: pos[0], Name: name, Aliases: aliases})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "client %s created; its access key is shown this once:\n", c.ID)
		fmt.Fprintln(stdout, c.AccessKey.Reveal())
	case "clients list":
		if err := want(0); err != nil {
			return err
		}
		list, err := reg.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tALIASES\tCREATED")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Aliases, ","), c.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "clients remove":
		if err := want(1); err != nil {
			return err
		}
		if err := reg.Delete(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s removed\n", pos[0])
	case "clients rotate-key":
		if err := want(1); err != nil {
			return err
		}
		c, err := reg.RotateKey(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "client %s has a new access key; the old one and its sessions no longer work:\n", c.ID)
		fmt.Fprintln(stdout, c.AccessKey.Reveal())
	case "blacklist add":
		if err := want(1); err != nil {
			return err
		}
		p, err := cidr.Parse(pos[0])
		if err != nil {
			return err
		}
		e := api.BlacklistEntry{CIDR: p.String(), Reason: reason, Source: api.BlacklistAdmin, CreatedAt: time.Now().UTC()}
		if ttl != "" {
			d, err := time.ParseDuration(ttl)
			if err != nil || d <= 0 {
				return api.Errorf(api.EINVALID, "--ttl must be a positive duration such as 1h")
			}
			exp := e.CreatedAt.Add(d)
			e.ExpiresAt = &exp
		}
		if err := st.AddBlacklist(ctx, e); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s blacklisted\n", e.CIDR)
	case "blacklist list":
		if err := want(0); err != nil {
			return err
		}
		list, err := st.Blacklist(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CIDR\tSOURCE\tREASON\tCREATED\tEXPIRES")
		for _, e := range list {
			exp := "never"
			if e.ExpiresAt != nil {
				exp = e.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.CIDR, e.Source, e.Reason, e.CreatedAt.Format(time.RFC3339), exp)
		}
		return tw.Flush()
	case "blacklist remove":
		if err := want(1); err != nil {
			return err
		}
		p, err := cidr.Parse(pos[0])
		if err != nil {
			return err
		}
		if err := st.RemoveBlacklist(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s removed from the blacklist\n", p)
	case "intents protect":
		if err := want(1); err != nil {
			return err
		}
		pw, err := readPassword(stdin, stderr, "password for "+pos[0]+": ")
		if err != nil {
			return err
		}
		hash, err := keys.Hash(pw)
		if err != nil {
			return err
		}
		if err := st.Protect(ctx, pos[0], hash); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is protected\n", pos[0])
	case "intents list":
		if err := want(0); err != nil {
			return err
		}
		list, err := st.ProtectedIntents(ctx)
		if err != nil {
			return err
		}
		for _, p := range list {
			fmt.Fprintln(stdout, p.Pattern)
		}
	case "intents unprotect":
		if err := want(1); err != nil {
			return err
		}
		if err := st.Unprotect(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is no longer protected\n", pos[0])
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", group+" "+sub)
		return errUsage
	}
	return nil
}

// runAdminToken runs "admin-token reset": a new admin token whose hash
// replaces the one in the data dir, printed once on this command's standard
// output (the operator's terminal, not the server's log). A running server
// takes it within seconds.
func runAdminToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reset" {
		fmt.Fprintln(stderr, "gateway admin-token takes the subcommand reset")
		return errUsage
	}
	fs, vals := newFlagSet("admin-token reset", stderr)
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return flagErr(err)
	}
	if len(pos) != 0 {
		fmt.Fprintln(stderr, "gateway admin-token reset takes no argument")
		return errUsage
	}
	cfg, err := loadConfig(getenv, fs, vals)
	if err != nil {
		return err
	}
	if cfg.AdminToken != "" {
		return errors.New("GATEWAY_ADMIN_TOKEN (--admin-token) is set: the admin token comes from there; change it there and restart the server")
	}
	// The same checks as the other commands: a data dir the server uses.
	st, err := openExistingStore(ctx, cfg.DataDir, stderr)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	tok, err := resetAdminToken(cfg.DataDir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "new admin token, shown this once (only its hash is kept); a running server takes it within a few seconds and refuses the old one:")
	fmt.Fprintln(stdout, tok.Reveal())
	return nil
}

// readPassword reads a password without echo from a terminal, else one line
// from standard input; never from the command line, where other users and
// the shell history would see it.
func readPassword(stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return validPassword(string(b))
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return validPassword(strings.TrimRight(line, "\r\n"))
}

func validPassword(pw string) (string, error) {
	if pw == "" {
		return "", api.Errorf(api.EINVALID, "the password must not be empty")
	}
	if len(pw) > 1024 {
		return "", api.Errorf(api.EINVALID, "the password is too long")
	}
	return pw, nil
}
