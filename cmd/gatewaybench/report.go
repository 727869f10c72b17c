package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// summary is a latency distribution in milliseconds.
type summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize sorts ds and returns its percentiles (nearest rank).
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ms(ds[min(max(i, 0), len(ds)-1)])
	}
	return summary{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// report is everything one run measured; its JSON form is the tool's
// machine-readable output.
type report struct {
	URL      string          `json:"url"`
	PostURLs []string        `json:"post_urls,omitempty"` // the replicas that took logins and utterances, when not URL
	PID      int             `json:"server_pid"`
	Settings settingsReport  `json:"settings"`
	Startup  *startupReport  `json:"startup,omitempty"`
	Setup    setupReport     `json:"setup"`
	Server   serverReport    `json:"server"`
	Run      *runReport      `json:"run,omitempty"`
	Slow     *slowReport     `json:"slow,omitempty"`
	Errors   map[string]int  `json:"errors"`
	Notes    []string        `json:"notes,omitempty"`
	LoadCPU  float64         `json:"load_tool_cpu_percent"`
	Latency  *latencyReport  `json:"latency_ms,omitempty"`
	Statuses map[string]int  `json:"statuses,omitempty"`
	Samples  []streamFailure `json:"stream_failures,omitempty"`
}

type settingsReport struct {
	Clients   int     `json:"clients"`
	Streams   int     `json:"streams_per_client"`
	Talkers   int     `json:"talkers"`
	Rate      float64 `json:"rate_per_s"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	Sources   int     `json:"sources"`
	Slow      int     `json:"slow_clients"`
	Utterance string  `json:"utterance"`
}

type startupReport struct {
	// ListeningMS is from exec to the "gateway listening" line; ReadyMS to
	// the first /readyz 200. The first start creates the data dir; the
	// restarts reuse it.
	ListeningMS        float64   `json:"listening_ms"`
	ReadyMS            float64   `json:"ready_ms"`
	RestartListeningMS []float64 `json:"restart_listening_ms,omitempty"`
	RestartReadyMS     []float64 `json:"restart_ready_ms,omitempty"`
	IdleRSSBytes       uint64    `json:"idle_rss_bytes"`
}

type setupReport struct {
	ClientsS       float64 `json:"clients_s"`
	LoginsS        float64 `json:"logins_s"`
	StreamsS       float64 `json:"streams_s"`
	StreamsOpened  int     `json:"streams_opened"`
	StreamsFailed  int     `json:"streams_failed"`
	FirstSourceIP  string  `json:"first_source"`
	LastSourceIP   string  `json:"last_source"`
	StreamsEnded   int     `json:"streams_ended_early"`
	ClientsDeleted int     `json:"clients_deleted"`
}

type serverReport struct {
	RSSStartBytes         uint64 `json:"rss_start_bytes"`
	RSSBeforeStreamsBytes uint64 `json:"rss_before_streams_bytes"`
	RSSWithStreamsBytes   uint64 `json:"rss_with_streams_bytes"`
	// RSSPerStreamBytes is the growth while the second half of the
	// streams opened, per stream; RSSPerStreamAllBytes over all of them.
	RSSPerStreamBytes    float64 `json:"rss_per_stream_bytes"`
	RSSPerStreamAllBytes float64 `json:"rss_per_stream_all_bytes"`
	ThreadsWithStreams   int     `json:"threads_with_streams"`
	IdleS                float64 `json:"idle_s,omitempty"`
	IdleCPUPercent       float64 `json:"idle_cpu_percent"`
	RunCPUPercent        float64 `json:"run_cpu_percent"`
	RSSPeakRunBytes      uint64  `json:"rss_peak_run_bytes"`
	RSSEndRunBytes       uint64  `json:"rss_end_run_bytes"`
}

type runReport struct {
	Accepted   int     `json:"accepted"`
	Completed  int     `json:"completed"`
	PerSecond  float64 `json:"completed_per_s"`
	TargetRate float64 `json:"target_rate_per_s"`
	LateSends  uint64  `json:"late_sends"`
	Events     uint64  `json:"events_read"`
}

type latencyReport struct {
	Accept summary `json:"accept"`
	Speak  summary `json:"speak"`
	Done   summary `json:"done"`
}

type slowReport struct {
	Clients  int            `json:"clients"`
	Accepted int            `json:"accepted"`
	Cut      int            `json:"streams_cut_by_server"`
	Reasons  map[string]int `json:"reasons"`
}

type streamFailure struct {
	Client string `json:"client"`
	Error  string `json:"error"`
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// write prints the report as cfg.Format asks.
func (r *report) write(w io.Writer, format string) error {
	if format == "table" || format == "both" {
		r.writeTable(w)
	}
	if format == "json" || format == "both" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return nil
}

func (r *report) writeTable(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "gatewaybench %s (server pid %d)\n", r.URL, r.PID)
	if len(r.PostURLs) > 0 {
		fmt.Fprintf(w, "logins and utterances posted to %s\n", strings.Join(r.PostURLs, ", "))
	}
	fmt.Fprintf(w, "  %d clients × %d streams, %d talkers", s.Clients, s.Streams, s.Talkers)
	if s.Rate > 0 {
		fmt.Fprintf(w, " at %.0f/s", s.Rate)
	} else if s.Talkers > 0 {
		fmt.Fprint(w, " flat out")
	}
	fmt.Fprintf(w, ", %d slow clients, %d sources (%s..%s), %q, %.0fs after %.0fs warm-up\n",
		s.Slow, s.Sources, r.Setup.FirstSourceIP, r.Setup.LastSourceIP, s.Utterance, s.DurationS, s.WarmupS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if st := r.Startup; st != nil {
		fmt.Fprintf(tw, "startup\tlistening %.1f ms, ready %.1f ms (first start)", st.ListeningMS, st.ReadyMS)
		for i := range st.RestartReadyMS {
			fmt.Fprintf(tw, "; restart: listening %.1f ms, ready %.1f ms", st.RestartListeningMS[i], st.RestartReadyMS[i])
		}
		fmt.Fprintf(tw, "; idle RSS %s\n", mib(st.IdleRSSBytes))
	}
	su := r.Setup
	fmt.Fprintf(tw, "set-up\tclients %.1f s, logins %.1f s, %d streams opened in %.2f s (%d failed)\n",
		su.ClientsS, su.LoginsS, su.StreamsOpened, su.StreamsS, su.StreamsFailed)
	sv := r.Server
	fmt.Fprintf(tw, "server memory\tstart %s, before streams %s, with streams %s: %.1f KiB a stream (second half; %.1f KiB over all), %d threads\n",
		mib(sv.RSSStartBytes), mib(sv.RSSBeforeStreamsBytes), mib(sv.RSSWithStreamsBytes), sv.RSSPerStreamBytes/1024, sv.RSSPerStreamAllBytes/1024, sv.ThreadsWithStreams)
	if sv.IdleS > 0 {
		fmt.Fprintf(tw, "server idle CPU\t%.2f%% of a core over %.0f s with the streams open\n", sv.IdleCPUPercent, sv.IdleS)
	}
	if run := r.Run; run != nil {
		// The RSS is sampled: the largest sample, not the true peak
		// (a burst between two samples is missed).
		fmt.Fprintf(tw, "server run\t%.0f%% of a core; RSS sampled every %v: largest %s, at the end %s\n", sv.RunCPUPercent, samplePeriod, mib(sv.RSSPeakRunBytes), mib(sv.RSSEndRunBytes))
		fmt.Fprintf(tw, "throughput\t%d accepted, %d done: %.0f/s", run.Accepted, run.Completed, run.PerSecond)
		if run.TargetRate > 0 {
			fmt.Fprintf(tw, " (target %.0f/s, %d sends late)", run.TargetRate, run.LateSends)
		}
		fmt.Fprintf(tw, "; %d events read\n", run.Events)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(tw, "latency (ms)\tn\tp50\tp90\tp99\tmax\n")
		for _, row := range []struct {
			name string
			s    summary
		}{{"  POST → 202", l.Accept}, {"  POST → speak", l.Speak}, {"  POST → done", l.Done}} {
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n", row.name, row.s.N, row.s.P50, row.s.P90, row.s.P99, row.s.Max)
		}
	}
	if len(r.Statuses) > 0 {
		fmt.Fprintf(tw, "statuses\t%s\n", counts(r.Statuses))
	}
	if sl := r.Slow; sl != nil {
		fmt.Fprintf(tw, "slow clients\t%d, %d utterances accepted, %d streams cut by the server (%s)\n", sl.Clients, sl.Accepted, sl.Cut, counts(sl.Reasons))
	}
	if len(r.Errors) == 0 {
		fmt.Fprintf(tw, "errors\tnone\n")
	} else {
		fmt.Fprintf(tw, "errors\t%s\n", counts(r.Errors))
	}
	for _, f := range r.Samples {
		fmt.Fprintf(tw, "  stream\t%s: %s\n", f.Client, f.Error)
	}
	fmt.Fprintf(tw, "load tool\t%.0f%% of a core\n", r.LoadCPU)
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	_ = tw.Flush()
}

// counts formats a count map as "a 3, b 1", largest first.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
