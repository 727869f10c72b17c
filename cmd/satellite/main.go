// Command satellite is the device client of the gateway: `satellite chat`
// (type, hear the answer) and `satellite bridge` (answer on the device's own
// messagebus first, ask the gateway only when the local assistant fails).
// main only wires: see run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default action: a second
		// signal ends the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is err as the last line the program prints: prefixed with the
// program's name once (the satellite package's own errors already carry it).
func errorLine(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "satellite: ") {
		return msg
	}
	return "satellite: " + msg
}
