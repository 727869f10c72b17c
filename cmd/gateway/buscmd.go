package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/embedded/skills"
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
	if err := waitSkills(mb, log); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// waitSkills returns once the skills answer on the bus
// (mycroft.skills.is_ready), so that no peer is let in before the assistant
// listens: an utterance sent earlier would get no answer.
func waitSkills(mb *messagebus.Bus, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probe, err := busclient.New(busclient.Config{URL: embeddedBusURL, Name: "probe", NetDialContext: mb.DialContext, Logger: log.With("component", "skills-probe")})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { defer close(done); _ = probe.Run(ctx) }()
	if err := probe.WaitConnected(ctx); err != nil {
		return err
	}
	ready := api.Message{Type: api.TypeSkillsIsReady, Data: json.RawMessage(`{}`), Context: json.RawMessage(`{"source":"gateway","destination":["skills"]}`)}
	for {
		try, stop := context.WithTimeout(ctx, time.Second)
		_, err := probe.Request(try, ready, func(f *api.Frame) bool { return f.Type == api.TypeSkillsIsReady+".response" })
		stop()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the built-in skills did not answer: %w", err)
		}
	}
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
