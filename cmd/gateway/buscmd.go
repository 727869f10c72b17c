package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/messagebus"
	"github.com/ovosgw/gateway/internal/skills"
)

// assistant is the embedded messagebus with its built-in skills linked to
// it in memory: the gateway's own assistant, or, served on a socket, a
// stand-alone one (gateway bus).
type assistant struct {
	Bus  *messagebus.Bus
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startAssistant starts the bus and its skills, answering in dialect (ovos
// or classic); a peer joining over the network must present secret, if set
// (GATEWAY_EMBEDDED_BUS_SECRET); responseTimeout is how long a follow-up question waits (0:
// the skills' default). Close stops them.
func startAssistant(dialect string, secret api.Secret, responseTimeout time.Duration, log *slog.Logger) (*assistant, error) {
	mb, err := messagebus.New(messagebus.Config{Logger: log.With("component", "messagebus"), Secret: secret})
	if err != nil {
		return nil, err
	}
	skillLink, err := busclient.New(busclient.Config{URL: embeddedBusURL, Name: "skills", NetDialContext: mb.DialContext, Logger: log.With("component", "skills-link")})
	if err != nil {
		mb.Close()
		return nil, err
	}
	sk, err := skills.New(skills.Config{Dialect: dialect, ResponseTimeout: responseTimeout, Logger: log.With("component", "skills")}, skillLink)
	if err != nil {
		mb.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &assistant{Bus: mb, stop: stop}
	for name, run := range map[string]func(context.Context) error{"skills link": skillLink.Run, "skills": sk.Run} {
		a.wg.Go(func() {
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background task ended", slog.String("task", name), slog.Any("err", err))
			}
		})
	}
	return a, nil
}

// Close stops the skills, then the bus (and with it every peer's link).
func (a *assistant) Close() {
	a.stop()
	a.wg.Wait()
	a.Bus.Close()
}

// runBus is `gateway bus`: the embedded bus and its built-in skills alone,
// served on --addr as a stand-alone assistant (for several buses behind one
// gateway, replicas, tests and demos), until ctx ends.
func runBus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8181", "address the bus listens on (peers dial ws://ADDR/core)")
	dialect := fs.String("dialect", skills.DialectOVOS, "how the built-in skills answer: ovos, or classic (mycroft-core)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *dialect != skills.DialectOVOS && *dialect != skills.DialectClassic {
		return fmt.Errorf("--dialect must be ovos or classic, not %q", *dialect)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := startAssistant(*dialect, "", 0, log)
	if err != nil {
		return err
	}
	defer a.Close()
	stopListener, bound, err := listenBus(*addr, a.Bus.Handler(), log)
	if err != nil {
		return err
	}
	defer stopListener()
	fmt.Fprintf(stdout, "messagebus: ws://%s/core\n", bound)
	log.Info("messagebus started", slog.String("addr", bound), slog.String("dialect", *dialect))
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}
