package busframe_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/busframe"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		wantErr bool
		want    api.Route
		typ     string
	}{
		{name: "reply as OVOS sends it", raw: `{"type":"speak","data":{"utterance":"hi"},"context":{"source":["skills"],"destination":"gateway:kitchen","session":{"session_id":"s1"},"utterance_id":"u1"}}`,
			typ: "speak", want: api.Route{Source: api.Names{"skills"}, Destination: api.Names{"gateway:kitchen"}, SessionID: "s1", UtteranceID: "u1"}},
		{name: "sent form", raw: `{"type":"recognizer_loop:utterance","data":{},"context":{"source":"gateway:a","destination":["skills","x"]}}`,
			typ: "recognizer_loop:utterance", want: api.Route{Source: api.Names{"gateway:a"}, Destination: api.Names{"skills", "x"}}},
		{name: "2017 target", raw: `{"data": {"target": "50338", "utterance": "x"}, "type": "speak", "context": null}`,
			typ: "speak", want: api.Route{Target: "50338"}},
		{name: "missing data and context", raw: `{"type":"connected"}`, typ: "connected"},
		{name: "odd member types read as absent", raw: `{"type":"x","data":{"target":5},"context":{"source":7,"destination":{"a":1},"session":"s","utterance_id":[1]}}`, typ: "x"},
		{name: "non-string list members skipped", raw: `{"type":"x","context":{"destination":["a",1,null,"b"]}}`, typ: "x", want: api.Route{Destination: api.Names{"a", "b"}}},
		{name: "not json", raw: `hello`, wantErr: true},
		{name: "array", raw: `[1,2]`, wantErr: true},
		{name: "no type", raw: `{"data":{}}`, wantErr: true},
		{name: "empty type", raw: `{"type":""}`, wantErr: true},
		{name: "numeric type", raw: `{"type":5}`, wantErr: true},
		{name: "data a string", raw: `{"type":"x","data":"s"}`, wantErr: true},
		{name: "context a list", raw: `{"type":"x","context":[]}`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := busframe.Parse([]byte(c.raw))
			if c.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != c.typ {
				t.Fatalf("type %q", f.Type)
			}
			if !reflect.DeepEqual(normalize(f.Route), normalize(c.want)) {
				t.Fatalf("route %+v, want %+v", f.Route, c.want)
			}
			if string(f.Raw) != c.raw {
				t.Fatal("raw bytes not kept")
			}
		})
	}
}

func normalize(r api.Route) api.Route {
	if len(r.Source) == 0 {
		r.Source = nil
	}
	if len(r.Destination) == 0 {
		r.Destination = nil
	}
	return r
}

// TestFixturesDecode reads every frame of the real OVOS transcripts: each
// must parse, and every reply must name the recorded peer as destination.
func TestFixturesDecode(t *testing.T) {
	files, err := filepath.Glob("../../testdata/ovos-wire/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures in testdata/ovos-wire")
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Dir   string          `json:"dir"`
				Frame json.RawMessage `json:"frame"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			fr, err := busframe.Parse(line.Frame)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if line.Dir == "recv" && fr.Type != api.TypeConnected && fr.Type != api.TypeUtterance && fr.Type != api.TypeIntentGet {
				// Replies are swapped to us; forwards (the fallback ping) keep us as source.
				if !fr.Route.Destination.Has("go-gateway") && !fr.Route.Source.Has("go-gateway") {
					t.Errorf("%s: %s destination %v", filepath.Base(name), fr.Type, fr.Route.Destination)
				}
				if fr.Route.SessionID == "" && !strings.HasPrefix(filepath.Base(name), "intent-get") {
					t.Errorf("%s: %s lost the session id", filepath.Base(name), fr.Type)
				}
			}
		}
		f.Close()
	}
}

// FuzzParse: any bytes from the bus are parsed without panicking, and
// whatever parses re-marshals to a well-formed envelope.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"type":"speak","data":{"utterance":"x"},"context":{"destination":"a"}}`, `{"type":"x","context":{"session":{"session_id":1}}}`, `[]`, `{"type":null}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := busframe.Parse(raw)
		if err != nil {
			return
		}
		b, err := json.Marshal(fr.Message)
		if err != nil {
			t.Fatalf("parsed frame does not marshal: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON out: %s", b)
		}
	})
}
