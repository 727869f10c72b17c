package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ovosgw/gateway/internal/transfer"
)

// runTransfer is `gateway export` (the durable records as JSON lines on
// standard output) and `gateway import` (from standard input): from and to
// Redis when GATEWAY_REDIS_URL is set, else the data dir.
func runTransfer(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, vals := newFlagSet(cmd, stderr)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return errUsage
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
	var n transfer.Counts
	if cmd == "export" {
		n, err = transfer.Export(ctx, stdout, st, st, time.Now())
	} else {
		n, err = transfer.Import(ctx, stdin, st, st)
	}
	fmt.Fprintf(stderr, "%sed %d client(s), %d blacklist entr(ies), %d protected intent(s)", cmd, n.Clients, n.Blacklist, n.Intents)
	if n.Unchanged > 0 {
		fmt.Fprintf(stderr, "; %d client(s) were already there with the same key", n.Unchanged)
	}
	fmt.Fprintln(stderr)
	return err
}
