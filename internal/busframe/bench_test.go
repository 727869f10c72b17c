package busframe

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ovosgw/gateway/api"
)

// speakFrame is a speak as the embedded assistant sends it (420 bytes).
const speakFrame = `{"type":"speak","data":{"utterance":"Hello! How can I help you?","expect_response":false,"meta":{"dialog":"hello","data":{},"skill":"greeting.builtin"},"lang":"en-us"},"context":{"client_name":"kitchen","destination":"gateway:kitchen","lang":"en-us","session":{"lang":"en-us","session_id":"K93y0dhLSv0La-WTmFKMJA"},"skill_id":"greeting.builtin","source":["skills"],"utterance_id":"GsfsDK-UbMoHILTc36b6bg"}}`

// wireFrames returns the recorded OVOS frames of testdata/ovos-wire, every
// one of them (name "") or those of one transcript.
func wireFrames(tb testing.TB, name string) [][]byte {
	tb.Helper()
	pattern := "../../testdata/ovos-wire/*.jsonl"
	if name != "" {
		pattern = "../../testdata/ovos-wire/" + name + ".jsonl"
	}
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures %s", pattern)
	}
	var frames [][]byte
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Frame json.RawMessage `json:"frame"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, line.Frame)
		}
		f.Close()
	}
	return frames
}

// pythonStyle is raw as Python's json.dumps writes it (", " and ": "), as a
// real ovos-messagebus carries it.
func pythonStyle(tb testing.TB, raw []byte) []byte {
	out, err := jsontext.AppendFormat(nil, raw, jsontext.SpaceAfterColon(true), jsontext.SpaceAfterComma(true))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// benchFrames runs fn over frames, reporting the time per frame.
func benchFrames(b *testing.B, frames [][]byte, fn func([]byte) error) {
	b.ReportAllocs()
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		for _, f := range frames {
			if err := fn(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}

// BenchmarkParse decodes the embedded assistant's speak, every recorded OVOS
// frame, and the frames one OVOS utterance brings (intent-handled), with
// this package and with encoding/json (the reference of the tests).
func BenchmarkParse(b *testing.B) {
	sets := []struct {
		name   string
		frames [][]byte
	}{
		{"speak", [][]byte{[]byte(speakFrame)}},
		{"ovos-wire", wireFrames(b, "")},
		{"ovos-wire-spaced", nil},
		{"utterance", wireFrames(b, "intent-handled")},
	}
	for _, f := range sets[1].frames {
		sets[2].frames = append(sets[2].frames, pythonStyle(b, f))
	}
	for _, set := range sets {
		b.Run(set.name+"/jsontext", func(b *testing.B) {
			benchFrames(b, set.frames, func(raw []byte) error { _, err := Parse(raw); return err })
		})
		b.Run(set.name+"/encoding-json", func(b *testing.B) {
			benchFrames(b, set.frames, func(raw []byte) error { _, err := refParseFrame(raw); return err })
		})
	}
}

// BenchmarkCompact puts frames on one line, as the bridge does for every
// frame it routes to a client: the recorded frames as they are (already
// compact) and as Python writes them.
func BenchmarkCompact(b *testing.B) {
	frames := wireFrames(b, "")
	var spaced [][]byte
	for _, f := range frames {
		spaced = append(spaced, pythonStyle(b, f))
	}
	for name, set := range map[string][][]byte{"compact": frames, "spaced": spaced} {
		parsed := make([]*api.Frame, len(set))
		for i, raw := range set {
			var err error
			if parsed[i], err = Parse(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			i := 0
			benchFrames(b, set, func([]byte) error {
				_ = Compact(parsed[i%len(parsed)])
				i++
				return nil
			})
		})
	}
}

// BenchmarkMember reads the three members the bridge reads of a speak's data.
func BenchmarkMember(b *testing.B) {
	f, err := Parse([]byte(speakFrame))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, name := range []string{"utterance", "expect_response", "lang"} {
			if Member(f.Data, name) == nil {
				b.Fatal("no", name)
			}
		}
	}
}
