// Command gatewaybench is the gateway's load tool. Against a running gateway
// (the embedded assistant or any bus) it registers clients through the admin
// API, logs them in, opens their event streams (spread over several 127.x
// source addresses), runs talkers at a fixed rate or flat out, and reports
// utterance→first speak and utterance→done latencies, throughput, errors by
// kind, and the server's resident memory and CPU read from /proc before and
// during the run, as a table and as JSON. docs/PERFORMANCE.md shows how each
// published figure was measured with it. main only wires: see run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}
