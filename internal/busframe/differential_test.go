package busframe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ovosgw/gateway/api"
)

// The reference: Parse written with encoding/json, reading members by
// their exact names as a Python peer does (json.loads, then msg["type"]):
// maps, not case-folding structs. Parse (jsontext) must decide exactly as
// it does, and Compact must agree with json.Compact.

// refMembers returns the members of a valid JSON object in order, with
// their names unescaped.
func refMembers(raw []byte) (names []string, vals []json.RawMessage) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return names, vals
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return names, vals
		}
		names, vals = append(names, tok.(string)), append(vals, v)
	}
	return names, vals
}

// refObject decodes a JSON object into exactly named members, the last of
// duplicates winning; nil for anything else.
func refObject(raw []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func refParseFrame(raw []byte) (*api.Frame, error) {
	var top any
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	if _, ok := top.(map[string]any); !ok {
		return nil, errors.New("not an object")
	}
	var typ, data, ctx json.RawMessage
	names, vals := refMembers(raw)
	for i, name := range names {
		switch v := vals[i]; name {
		case "type":
			if v[0] != '"' && v[0] != 'n' {
				return nil, errors.New("type is not a string")
			}
			typ = v
		case "data":
			data = v
		case "context":
			ctx = v
		}
	}
	t := refStringOrEmpty(typ)
	if t == "" {
		return nil, errors.New("no type")
	}
	f := &api.Frame{Message: api.Message{Type: t}, Raw: raw}
	var err error
	if f.Data, err = refObjectOrEmpty(data); err != nil {
		return nil, err
	}
	if f.Context, err = refObjectOrEmpty(ctx); err != nil {
		return nil, err
	}
	var r api.Route
	if c := refObject(f.Context); c != nil {
		var src, dst api.Names
		_ = json.Unmarshal(c["source"], &src)
		_ = json.Unmarshal(c["destination"], &dst)
		r.Source, r.Destination = src, dst
		r.UtteranceID = refStringOrEmpty(c["utterance_id"])
		if s := refObject(c["session"]); s != nil {
			r.SessionID = refStringOrEmpty(s["session_id"])
		}
	}
	if bytes.Contains(f.Data, []byte(`"target"`)) {
		if d := refObject(f.Data); d != nil {
			r.Target = refStringOrEmpty(d["target"])
		}
	}
	f.Route = r
	return f, nil
}

func refObjectOrEmpty(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	return raw, nil
}

func refStringOrEmpty(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func emptyNil(n api.Names) api.Names {
	if len(n) == 0 {
		return nil
	}
	return n
}

// compareParse fails when Parse and the reference disagree on raw.
func compareParse(t *testing.T, raw []byte) {
	t.Helper()
	got, gerr := Parse(raw)
	want, werr := refParseFrame(raw)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: err %v, reference err %v", raw, gerr, werr)
	}
	if gerr != nil {
		return
	}
	if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Context, want.Context) || !bytes.Equal(got.Raw, want.Raw) {
		t.Fatalf("%q: message %+v, reference %+v", raw, got.Message, want.Message)
	}
	g, w := got.Route, want.Route
	g.Source, g.Destination = emptyNil(g.Source), emptyNil(g.Destination)
	w.Source, w.Destination = emptyNil(w.Source), emptyNil(w.Destination)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%q: route %+v, reference %+v", raw, g, w)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("%q parsed but does not compact: %v", raw, err)
	}
	if c := Compact(got); !bytes.Equal(c, buf.Bytes()) {
		t.Fatalf("%q: Compact %q, want %q", raw, c, buf.Bytes())
	}
}

var parseCases = []string{
	`{"type":"speak","data":{"utterance":"hi"},"context":{"source":["skills"],"destination":"gateway:kitchen","session":{"session_id":"s1"},"utterance_id":"u1"}}`,
	` { "type" : "x" , "data" : { "target" : "a\"b" } , "context" : null } `,
	`{"Type":"x","DATA":{"Target":"t","target":"u"},"Context":{"SOURCE":"a","source":["b",1,"c"],"Session":{"Session_ID":"s","session_id":"z"}}}`,
	`{"type":"a","type":null}`,
	`{"type":null,"type":"a"}`,
	`{"type":5,"type":"a"}`,
	`{"type":"a","type":5}`,
	`{"type":"\u0074","data":{},"context":{"\u0073ource":"x","utterance_\u0069d":"\u00e9"}}`,
	`{"typ\u0065":"x"}`,
	`{"type":"x","context":{"ſource":"long s","destination":"K"}}`,
	`{"TYPE":"x"}`,
	`{"type":"x","Type":"y"}`,
	`{"Type":"y","type":"x","DATA":{"target":"t"},"data":{"Target":"u"},"context":{"Source":"a","Session":{"session_id":"s"},"UTTERANCE_ID":"u"}}`,
	`{"type":"x","context":{"destination":[],"source":[1,{},[]]}}`,
	`{"type":"\xff\xfe","context":{"utterance_id":"\xff"}}`,
	`{"type":"x","data":"s"}`,
	`{"type":"x","context":[]}`,
	`{"type":"x","data":{"a":1e5,"b":-0.5E-3,"c":[true,false,null]}}`,
	`{"type":"x","data":{"a":01}}`,
	`{"type":"x","data":{"a":1.}}`,
	`{"type":"x","data":{"a":-}}`,
	`{"type":"x","data":{"a":"\q"}}`,
	`{"type":"x","data":{"a":"\u12"}}`,
	"{\"type\":\"x\",\"data\":{\"a\":\"\x01\"}}",
	`{"type":"x"} {}`,
	`{"type":"x",}`,
	`{"type":"x"`,
	`{"type":"x","context":{"session":"s","utterance_id":5}}`,
	`[1,2]`, `"s"`, `null`, `5`, ``, `{`, `}`, `{"type":"}`, "\xff",
	`{"type":"x","data":{"target":null}}`,
	`{"type":"x","data":{"x":"\"target\""}}`,
	"\t\n{\"type\":\"x\"}\r\n",
	`{"type":"\ud800x","context":{"utterance_id":"\udc00\ud800","source":["\ud83d\ude00","\ud83d"]}}`,
	`{"type":"x","context":{"session":{"session_id":"a","session_id":7},"session":{"session_id":"b"}}}`,
	`{"type":"x","context":{"session":{"session_id":"a"},"session":5}}`,
	`{"type":"x","context":{"source":"a"},"context":null}`,
	`{"type":"x","context":{"source":"a"},"context":{"destination":"b"}}`,
	`{"type":"x","data":{"target":"a","t\u0061rget":"b"}}`,
	"{\"type\":\"x\",\"data\":{\"target\":\"\xff\\u00e9\"}}",
}

func TestParseFrameMatchesEncodingJSON(t *testing.T) {
	for i, c := range parseCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { compareParse(t, []byte(c)) })
	}
	const maxNesting = 10000 // encoding/json's limit
	deep := strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting)
	compareParse(t, []byte(`{"type":"x","data":{"a":`+deep+`}}`))
	// Exactly at the limit, counting the envelope and data: accepted by both.
	atLimit := strings.Repeat("[", maxNesting-2) + strings.Repeat("]", maxNesting-2)
	compareParse(t, []byte(`{"type":"x","data":{"a":`+atLimit+`}}`))
	if _, err := Parse([]byte(`{"type":"x","data":{"a":` + atLimit + `}}`)); err != nil {
		t.Fatalf("nesting at the limit: %v", err)
	}
	deeper := strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1)
	compareParse(t, []byte(`{"type":"x","data":{"a":`+deeper+`}}`))
}

func TestParseFrameMatchesOnFixtures(t *testing.T) {
	files, err := filepath.Glob("../../testdata/ovos-wire/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures in testdata/ovos-wire")
	}
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Frame json.RawMessage `json:"frame"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			compareParse(t, line.Frame)
			n++
		}
		f.Close()
	}
	if n == 0 {
		t.Fatal("no frames compared")
	}
}

func TestMember(t *testing.T) {
	for _, c := range []struct{ obj, name, want string }{
		{`{"a":1,"b":{"c":2},"a":[3]}`, "a", `[3]`},
		{`{"A":1}`, "a", ``},
		{`{"a":1,"A":2}`, "a", `1`},
		{`{"a\u0062":"x"}`, "ab", `"x"`},
		{`{"a":1}`, "b", ``},
		{`{"a":`, "a", ``},
		{`{"`, "a", ``},
		{`[1]`, "a", ``},
	} {
		if got := string(Member(json.RawMessage(c.obj), c.name)); got != c.want {
			t.Errorf("Member(%s, %s) = %s, want %s", c.obj, c.name, got, c.want)
		}
	}
}

func FuzzParseFrameMatchesEncodingJSON(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		compareParse(t, raw)
		if jsontext.Value(raw).IsValid(asEncodingJSON...) != json.Valid(raw) {
			t.Fatalf("%q: jsontext as configured and json.Valid disagree", raw)
		}
		// Member and Compact never panic, whatever they are given.
		_ = Member(raw, "type")
		_ = Compact(&api.Frame{Raw: raw})
	})
}
