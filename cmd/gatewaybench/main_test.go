package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// TestSmokeRun loads a real gateway for a couple of seconds, through run as
// the command line would: clients, streams over two source addresses,
// talkers, the report. Every utterance must end handled, with no error of
// any kind. It checks that the tool works, not how fast anything is, so
// nothing in it may depend on the machine's speed: the talkers are paced
// (-rate, open loop), not flat out, so that a faster machine sends no more.
// The whole run sends at most smokeRate × (warm-up + duration) utterances,
// about 34, fewer than one rate-limit bucket of the server holds (burst
// twice its rate), so no 429 can come whatever the speed; and each stream
// carries a few dozen events a second, far within its buffer.
func TestSmokeRun(t *testing.T) {
	const smokeRate = 15 // utterances a second over all talkers
	g := gatewaytest.Start(t, map[string]string{"UTTERANCE_RATE": "100", "ADDR_RATE": "100"})
	var out, errOut bytes.Buffer
	args := []string{
		"-url", g.URL, "-admin-token", g.AdminToken, "-clients", "3", "-streams", "2", "-talkers", "3",
		"-rate", strconv.Itoa(smokeRate),
		"-sources", "2", "-duration", "2s", "-warmup", "200ms", "-settle", "100ms", "-format", "json",
	}
	if err := run(t.Context(), args, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Errors) != 0 || len(rep.Samples) != 0 {
		t.Fatalf("errors %v, stream failures %v", rep.Errors, rep.Samples)
	}
	if rep.Setup.StreamsOpened != 6 || rep.Setup.ClientsDeleted != 3 {
		t.Fatalf("set-up %+v", rep.Setup)
	}
	if rep.Setup.FirstSourceIP == rep.Setup.LastSourceIP {
		t.Fatalf("one source address only: %+v", rep.Setup)
	}
	if rep.Run == nil || rep.Run.Completed == 0 || rep.Run.Completed != rep.Run.Accepted || rep.Statuses["handled"] != rep.Run.Completed {
		t.Fatalf("run %+v, statuses %v", rep.Run, rep.Statuses)
	}
	if l := rep.Latency; l.Speak.N != rep.Run.Completed || l.Done.P50 <= 0 || l.Done.P50 > l.Done.Max {
		t.Fatalf("latencies %+v", l)
	}
	if rep.PID <= 0 || rep.Server.RSSWithStreamsBytes == 0 {
		t.Fatalf("no /proc readings of the server: pid %d, %+v, notes %v", rep.PID, rep.Server, rep.Notes)
	}
}

func TestParseConfig(t *testing.T) {
	env := func(k string) string {
		if k == "GATEWAY_ADMIN_TOKEN" {
			return "gwa_from_env"
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults with the token from the environment", nil, true},
		{"rate and sources", []string{"-rate", "500", "-sources", "20", "-clients", "100"}, true},
		{"exec needs no url", []string{"-exec", "./gateway", "-env", "UTTERANCE_RATE=100"}, true},
		{"bad url", []string{"-url", "ftp://x"}, false},
		{"no clients", []string{"-clients", "0"}, false},
		{"talkers without streams", []string{"-streams", "0"}, false},
		{"too many sources", []string{"-sources", "251"}, false},
		{"bad format", []string{"-format", "xml"}, false},
		{"bad prefix", []string{"-prefix", "Bench!"}, false},
		{"env without value", []string{"-exec", "x", "-env", "NOVALUE"}, false},
		{"stray argument", []string{"extra"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err == nil && (c.AdminToken != "gwa_from_env" || c.Sources < 1) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestEventParser(t *testing.T) {
	long := strings.Repeat("x", 3*streamBuffer)
	in := "retry: 2000\n\n" +
		"id: 1\nevent: ready\ndata: {\"client_id\":\"k\"}\n\n" +
		": keepalive\n\n" +
		"id: 2\r\nevent: speak\r\ndata: {\"utterance_id\":\"u1\",\r\ndata: \"utterance\":\"hi\"}\r\n\r\n" +
		"data: " + long + "\n\n" +
		"event: done\ndata: {\"utterance_id\":\"u1\",\"status\":\"handled\"}\n\n"
	var got []string
	d := newEventDecoder(strings.NewReader(in), func(c string) { got = append(got, "comment:"+c) })
	for {
		ev, err := d.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("err %v", err)
			}
			break
		}
		got = append(got, ev.Name+":"+jsonField(ev.Data, "utterance_id")+":"+jsonField(ev.Data, "status")+":"+strings.Repeat("L", min(len(ev.Data)/len(long), 1)))
	}
	want := []string{"ready:::", "comment:keepalive", "speak:u1::", "message:::L", "done:u1:handled:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s.N != 100 || s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 {
		t.Fatalf("summary %+v", s)
	}
	if (summarize(nil) != summary{}) {
		t.Fatal("empty summary not zero")
	}
}

func TestProcParsing(t *testing.T) {
	cpu, err := parseStatCPU([]byte("123 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4"))
	if err != nil || cpu != 300 {
		t.Fatalf("cpu %d, %v", cpu, err)
	}
	if _, err := parseStatCPU([]byte("123 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n" +
		"   1: 0100007F:1F90 0A00007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n" +
		"   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0\n"
	if got := listeningInodes([]byte(table), 8080); len(got) != 1 || got[0] != "4242" {
		t.Fatalf("inodes %v", got)
	}
	self, err := readProc(0)
	if err != nil || self.rss == 0 || self.threads == 0 {
		t.Fatalf("own /proc: %+v, %v", self, err)
	}
	a := procSample{at: time.Unix(0, 0), cpu: 100}
	b := procSample{at: time.Unix(2, 0), cpu: 150}
	if got := cpuPercent(a, b); got != 25 {
		t.Fatalf("cpu percent %v", got)
	}
}

// TestTableNamesSampledRSS: the table says the run's RSS is the largest of
// samples, not a peak it never measured (issue 17, item 11).
func TestTableNamesSampledRSS(t *testing.T) {
	r := &report{Run: &runReport{}, Server: serverReport{RSSPeakRunBytes: 3 << 20, RSSEndRunBytes: 2 << 20}}
	var b bytes.Buffer
	r.writeTable(&b)
	if !strings.Contains(b.String(), "RSS sampled every 250ms: largest 3.0 MiB, at the end 2.0 MiB") || strings.Contains(b.String(), "RSS peak") {
		t.Errorf("table:\n%s", b.String())
	}
}
