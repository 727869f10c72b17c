package satellite_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/apiclient"
	"github.com/ovosgw/gateway/busclient"
	"github.com/ovosgw/gateway/internal/busframe"
	"github.com/ovosgw/gateway/internal/gatewaytest"
	"github.com/ovosgw/gateway/satellite"
)

// startForwarder runs a bridge between gw and the local bus at busURL until the
// test ends, and waits until it holds the gateway's stream.
func startForwarder(t *testing.T, gw *apiclient.Client, busURL string, rec *logRecorder, localTimeout time.Duration) *busclient.Client {
	t.Helper()
	local := peer(t, busURL, "bridge-local")
	b, err := satellite.NewForwarder(satellite.ForwarderConfig{LocalTimeout: localTimeout, Logger: slog.New(rec)}, gw, local)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "bridge", b.Run)
	rec.wait(t, 1, "Connected to remote host", "")
	return local
}

func TestNewForwarderValidates(t *testing.T) {
	gw, err := apiclient.New(apiclient.Config{BaseURL: "http://127.0.0.1:1", ClientID: "k", AccessKey: "x"})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := busclient.New(busclient.Config{URL: "ws://127.0.0.1:1/core"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  satellite.ForwarderConfig
		gw   satellite.Gateway
		bus  satellite.LocalBus
		ok   bool
	}{
		{"defaults", satellite.ForwarderConfig{}, gw, bus, true},
		{"no gateway", satellite.ForwarderConfig{}, nil, bus, false},
		{"no bus", satellite.ForwarderConfig{}, gw, nil, false},
		{"negative timeout", satellite.ForwarderConfig{LocalTimeout: -time.Second}, gw, bus, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := satellite.NewForwarder(tt.cfg, tt.gw, tt.bus); (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestForwarder is the scenario with real parts: a local bus with a
// local assistant that handles "hello" but not "tell me a joke", a device
// speaking on it, the real gateway, and the bridge between them.
func TestForwarder(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "kitchen")
	lb := startLocalBus(t)
	localAssistant(t, lb.URL)
	dev := newDevice(t, lb.URL)
	rec := newLogRecorder(t)
	startForwarder(t, gw, lb.URL, rec, 5*time.Second)
	gatewaytest.Eventually(t, "three peers on the local bus", func() bool { return lb.bus.Peers() == 3 })

	t.Run("hello is answered locally", func(t *testing.T) {
		before := sentTotal(t, g)
		dev.say(t, "hello", "default", nil)
		f := dev.next(t, "the local greeting", func(f *api.Frame) bool { return f.Type == api.TypeSpeak && f.Route.Source.Has("skills") })
		if !strings.Contains(strings.ToLower(speakText(t, f)), "hello") {
			t.Errorf("local answer %q", speakText(t, f))
		}
		rec.wait(t, 1, "intent handled internally", "hello")
		rec.wait(t, 1, "Not asking server", "hello")
		if n := rec.count("Asking server for answer", "hello"); n != 0 {
			t.Errorf("asked the server %d times", n)
		}
		if after := sentTotal(t, g); after != before {
			t.Errorf("the gateway put %d utterances on its bus", after-before)
		}
	})

	t.Run("a joke is asked remotely", func(t *testing.T) {
		before := sentTotal(t, g)
		dev.say(t, "tell me a joke", "default", nil)
		rec.wait(t, 1, "Waiting for intent handling before asking server", "tell me a joke")
		rec.wait(t, 1, "Intent failure detected, ending wait", "tell me a joke")
		rec.wait(t, 1, "Asking server for answer", "tell me a joke")
		var mark struct {
			Reemitted bool `json:"satellite_reemitted"`
		}
		f := dev.next(t, "the gateway's joke for the speaker", speakFor("default"))
		joke := speakText(t, f)
		if joke == "" || strings.Contains(strings.ToLower(joke), "hello") {
			t.Errorf("spoken %q", joke)
		}
		if json.Unmarshal(f.Context, &mark); !mark.Reemitted {
			t.Errorf("speak context %s lacks the mark", f.Context)
		}
		if after := sentTotal(t, g); after != before+1 {
			t.Errorf("the gateway put %d utterances on its bus, want 1", after-before)
		}
	})

	t.Run("only speech and audio are re-emitted", func(t *testing.T) {
		// Issue 17, item 8: the server's intent messages, handler start
		// and complete, intent failures and sounds stay off the device's
		// bus. The bridge re-emits in the stream's order on one link: what
		// it re-emitted for an utterance before its speech is seen here.
		// Each is said once the one before was answered: the server may
		// answer two asked at once in either order.
		var types []string
		for _, u := range []struct{ text, session string }{
			{"tell me a joke", "allow-list"}, {"tell me a joke", "sentinel"},
		} {
			dev.say(t, u.text, u.session, nil)
			for {
				f := dev.next(t, "the answer to "+u.text, func(f *api.Frame) bool { return string(busframe.Member(f.Context, "satellite_reemitted")) == "true" })
				types = append(types, f.Type)
				if speakFor(u.session)(f) {
					break
				}
			}
		}
		if len(types) == 0 {
			t.Fatal("nothing re-emitted for the first joke")
		}
		for _, typ := range types {
			if typ != api.TypeSpeak && !strings.HasPrefix(typ, "mycroft.audio.service.") {
				t.Errorf("re-emitted %q on the device's bus (all: %v)", typ, types)
			}
		}
	})

	t.Run("re-emitted utterances are not forwarded", func(t *testing.T) {
		before := sentTotal(t, g)
		dev.say(t, "tell me another joke", "default", map[string]any{"satellite_reemitted": true})
		dev.say(t, "tell me a third joke", "loop", map[string]any{"source": "satellite"})
		// A later utterance of the device: once the bridge took it, it had
		// looked at the two before (one bus, one order).
		dev.say(t, "hello", "sentinel", nil)
		rec.wait(t, 1, "Not asking server", "hello")
		for _, u := range []string{"tell me another joke", "tell me a third joke"} {
			if n := rec.count("Processing utterance", u); n != 0 {
				t.Errorf("%q was followed", u)
			}
		}
		if after := sentTotal(t, g); after != before {
			t.Errorf("the gateway put %d utterances on its bus", after-before)
		}
	})

	top := t
	t.Run("the gateway restarts", func(t *testing.T) {
		// Restart ties the new process's cleanup to the test it is given:
		// the whole test's, so that it outlives this subtest.
		g.Restart(top)
		dev.say(t, "tell me a joke", "after-restart", nil)
		f := dev.next(t, "the joke after the restart", speakFor("after-restart"))
		if speakText(t, f) == "" {
			t.Error("empty answer")
		}
	})

	t.Run("the local bus restarts", func(t *testing.T) {
		lb.restart()
		gatewaytest.Eventually(t, "three peers back on the local bus", func() bool { return lb.bus.Peers() == 3 })
		dev.say(t, "tell me a joke", "after-bus-restart", nil)
		f := dev.next(t, "the joke after the local restart", speakFor("after-bus-restart"))
		if speakText(t, f) == "" {
			t.Error("empty answer")
		}
		dev.say(t, "hello", "after-bus-restart", nil)
		rec.wait(t, 2, "Not asking server", "hello")
	})
}

// TestForwarderAsksWhenNothingAnswers: with no local assistant on the bus, the
// gateway is asked once the local timeout runs out.
func TestForwarderAsksWhenNothingAnswers(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "garage")
	lb := startLocalBus(t)
	dev := newDevice(t, lb.URL)
	rec := newLogRecorder(t)
	startForwarder(t, gw, lb.URL, rec, 200*time.Millisecond)
	gatewaytest.Eventually(t, "two peers on the local bus", func() bool { return lb.bus.Peers() == 2 })

	dev.say(t, "what time is it", "default", nil)
	rec.wait(t, 1, "No intent handling in time, ending wait", "what time is it")
	f := dev.next(t, "the gateway's time", speakFor("default"))
	if !strings.Contains(speakText(t, f), ":") {
		t.Errorf("spoken %q", speakText(t, f))
	}
}

// TestForwarderHoldsAnswersWhileTheLocalBusIsDown: an answer that comes while
// the local bus is down is delivered once it is back.
func TestForwarderHoldsAnswersWhileTheLocalBusIsDown(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	gw, _ := gatewayClient(t, g, "hall")
	lb := startLocalBus(t)
	rec := newLogRecorder(t)
	local := startForwarder(t, gw, lb.URL, rec, time.Second)

	lb.stop()
	gatewaytest.Eventually(t, "the bridge sees the local bus down", func() bool { return !local.Connected() })
	// The gateway speaks to the client while the device's bus is away.
	ctx := context.Background()
	res, err := gw.SayAndWait(ctx, api.UtteranceRequest{Utterance: "tell me a joke"}, 10*time.Second)
	if err != nil || res.Status != api.StatusHandled || len(res.Speech) == 0 {
		t.Fatalf("say = %+v, %v", res, err)
	}
	rec.wait(t, 1, "Speak", res.Speech[0].Utterance)

	lb.start()
	dev := newDevice(t, lb.URL)
	f := dev.next(t, "the held answer", func(f *api.Frame) bool {
		return f.Type == api.TypeSpeak && f.Route.Destination.Has("audio")
	})
	if got := speakText(t, f); got != res.Speech[0].Utterance {
		t.Errorf("delivered %q, want %q", got, res.Speech[0].Utterance)
	}
}
