package satellite

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

// feed plays frames into a tracker the way the bridge's loop does and
// returns what each followed utterance became.
func feed(t *testing.T, tr *tracker, frames []string) map[string]outcome {
	t.Helper()
	got := map[string]outcome{}
	for _, raw := range frames {
		f, err := busframe.Parse([]byte(raw))
		if err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		sid := sessionKey(f.Route.SessionID)
		switch f.Type {
		case api.TypeUtterance:
			if notForwarded(f) != "" {
				continue
			}
			lu, err := parseUtterance(f)
			if err != nil {
				continue
			}
			tr.add(&utterance{text: lu.text, sessionID: lu.sessionID})
			got[lu.text] = undecided
		case api.TypeIntentFailure:
			if u := tr.failure(sid, failureText(f)); u != nil {
				got[u.text] = u.outcome
			}
		case api.TypeHandlerStart:
			tr.handlerStart(sid)
		case api.TypeHandlerComplete:
			if u := tr.handlerComplete(sid); u != nil {
				got[u.text] = u.outcome
			}
		case api.TypeUtteranceHandled:
			if u, _ := tr.utteranceHandled(sid); u != nil {
				got[u.text] = u.outcome
			}
		}
	}
	return got
}

// TestTrackerOnRealTranscripts replays the recorded OVOS exchanges: the
// utterance the transcript sends is followed as a device's would be.
func TestTrackerOnRealTranscripts(t *testing.T) {
	want := map[string]outcome{
		"intent-handled.jsonl":        handledLocally,
		"intent-failure.jsonl":        failedLocally,
		"fallback-handled.jsonl":      handledLocally,
		"fallback-none-failure.jsonl": failedLocally,
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "testdata", "ovos-wire", name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var frames []string
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					Dir   string          `json:"dir"`
					Frame json.RawMessage `json:"frame"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatal(err)
				}
				// The sent frame stands for the device's utterance; its echo
				// (recv) is the same frame and is skipped.
				if line.Dir == "recv" && strings.Contains(string(line.Frame), `"type":"recognizer_loop:utterance"`) {
					continue
				}
				frames = append(frames, string(line.Frame))
			}
			tr := newTracker(8)
			got := feed(t, tr, frames)
			if len(got) != 1 {
				t.Fatalf("followed %v", got)
			}
			for text, o := range got {
				if o != w {
					t.Errorf("%q became %v, want %v", text, o, w)
				}
			}
			if tr.len() != 0 {
				t.Errorf("%d utterances still followed after ovos.utterance.handled", tr.len())
			}
		})
	}
}

func utt(text, sid string) string {
	ctx := `{"source":"audio","destination":["skills"]`
	if sid != "" {
		ctx += `,"session":{"session_id":"` + sid + `"}`
	}
	return `{"type":"recognizer_loop:utterance","data":{"utterances":["` + text + `"],"lang":"en-us"},"context":` + ctx + `}}`
}

func reply(typ, sid, data string) string {
	if data == "" {
		data = "{}"
	}
	return `{"type":"` + typ + `","data":` + data + `,"context":{"source":["skills"],"destination":"audio","session":{"session_id":"` + sid + `"}}}`
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		want   map[string]outcome
		left   int
	}{
		{name: "handled after a failure ends the failed one, not the next",
			frames: []string{
				utt("tell me a joke", "default"),
				reply(api.TypeIntentFailure, "default", `{"utterances":["tell me a joke"]}`),
				utt("hello", "default"),
				reply(api.TypeUtteranceHandled, "default", ""),
				reply(api.TypeHandlerComplete, "default", ""),
				reply(api.TypeUtteranceHandled, "default", ""),
			},
			want: map[string]outcome{"tell me a joke": failedLocally, "hello": handledLocally}},
		{name: "classic mycroft: failure forwarded with empty data, no end signal",
			frames: []string{
				utt("tell me a joke", ""),
				`{"type":"complete_intent_failure","data":{},"context":{"source":"audio","destination":["skills"]}}`,
				utt("hello", ""),
				reply(api.TypeHandlerStart, "default", ""),
				reply(api.TypeHandlerComplete, "default", ""),
			},
			want: map[string]outcome{"tell me a joke": failedLocally, "hello": handledLocally}, left: 2},
		{name: "sessions are apart",
			frames: []string{
				utt("a", "s1"),
				utt("b", "s2"),
				reply(api.TypeIntentFailure, "s2", `{"utterances":["b"]}`),
				reply(api.TypeUtteranceHandled, "s2", ""),
				reply(api.TypeUtteranceHandled, "s1", ""),
			},
			want: map[string]outcome{"a": handledLocally, "b": failedLocally}},
		{name: "failure names its utterance",
			frames: []string{
				utt("first", "d"),
				utt("second", "d"),
				reply(api.TypeIntentFailure, "d", `{"utterances":["second"]}`),
			},
			want: map[string]outcome{"first": undecided, "second": failedLocally}, left: 2},
		{name: "signals of an unknown session change nothing",
			frames: []string{
				utt("hello", "d"),
				reply(api.TypeIntentFailure, "other", `{"utterances":["hello"]}`),
				reply(api.TypeUtteranceHandled, "other", ""),
			},
			want: map[string]outcome{"hello": undecided}, left: 1},
		{name: "re-emitted and gateway utterances are not followed",
			frames: []string{
				`{"type":"recognizer_loop:utterance","data":{"utterances":["x"]},"context":{"source":"satellite"}}`,
				`{"type":"recognizer_loop:utterance","data":{"utterances":["y"]},"context":{"satellite_reemitted":true}}`,
				`{"type":"recognizer_loop:utterance","data":{"utterances":["z"]},"context":{"source":"gateway:kitchen","destination":["skills"]}}`,
			},
			want: map[string]outcome{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(8)
			got := feed(t, tr, tt.frames)
			if len(got) != len(tt.want) {
				t.Fatalf("followed %v, want %v", got, tt.want)
			}
			for text, w := range tt.want {
				if got[text] != w {
					t.Errorf("%q became %v, want %v", text, got[text], w)
				}
			}
			if tr.len() != tt.left {
				t.Errorf("%d still followed, want %d", tr.len(), tt.left)
			}
		})
	}
}

func TestTrackerBoundsAndTimeout(t *testing.T) {
	tr := newTracker(2)
	a, b, c := &utterance{text: "a", sessionID: "d"}, &utterance{text: "b", sessionID: "d"}, &utterance{text: "c", sessionID: "d"}
	tr.add(a)
	tr.add(b)
	if dropped := tr.add(c); dropped != a {
		t.Fatalf("dropped %v, want the oldest", dropped)
	}
	if tr.len() != 2 {
		t.Fatalf("len %d", tr.len())
	}
	if u := tr.expire(b.id); u != b || b.outcome != timedOut {
		t.Fatalf("expire: %v %v", u, b.outcome)
	}
	if u := tr.expire(b.id); u != nil {
		t.Fatal("expired twice")
	}
	// The timed-out one still takes its late end signal.
	if u, decided := tr.utteranceHandled("d"); u != b || decided {
		t.Fatalf("late end went to %v (decided %v)", u, decided)
	}
	tr.forget(c.id)
	if tr.len() != 0 {
		t.Fatalf("len %d after forget", tr.len())
	}
}
