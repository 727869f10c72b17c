package api_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
)

func TestMessageMarshal(t *testing.T) {
	cases := []struct {
		name    string
		msg     api.Message
		want    string
		wantErr bool
	}{
		{name: "empty members become objects", msg: api.Message{Type: "x"}, want: `{"type":"x","data":{},"context":{}}`},
		{name: "null becomes object", msg: api.Message{Type: "x", Data: json.RawMessage("null")}, want: `{"type":"x","data":{},"context":{}}`},
		{name: "compacted, unknown members kept", msg: api.Message{Type: "x", Data: json.RawMessage(`{ "a" : [1, 2], "zz": {"q": null} }`), Context: json.RawMessage(`{"b":"c"}`)}, want: `{"type":"x","data":{"a":[1,2],"zz":{"q":null}},"context":{"b":"c"}}`},
		{name: "type escaped", msg: api.Message{Type: "a\"b"}, want: `{"type":"a\"b","data":{},"context":{}}`},
		{name: "no type", msg: api.Message{}, wantErr: true},
		{name: "data not an object", msg: api.Message{Type: "x", Data: json.RawMessage(`[1]`)}, wantErr: true},
		{name: "broken json", msg: api.Message{Type: "x", Context: json.RawMessage(`{"a":`)}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.msg)
			if c.wantErr {
				if err == nil {
					t.Fatalf("marshalled %s, want an error", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Fatalf("got %s, want %s", b, c.want)
			}
		})
	}
}

func TestSecretRedacts(t *testing.T) {
	s := api.Secret("hunter2")
	var b strings.Builder
	for _, f := range []string{"%s", "%v", "%+v", "%#v", "%q"} {
		b.WriteString(sprintf(f, s))
	}
	if strings.Contains(b.String(), "hunter2") {
		t.Fatalf("secret formatted: %s", b.String())
	}
	j, _ := json.Marshal(struct{ K api.Secret }{s})
	if !strings.Contains(string(j), "hunter2") {
		t.Fatal("a secret must still marshal for its owner")
	}
}

// TestNamesUnmarshal: a source or destination is a string or a list of
// strings; anything else in its place, or in the list, is no name, and never
// fails the frame (not even a number too large for a float64).
func TestNamesUnmarshal(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want api.Names
	}{
		{`"a"`, api.Names{"a"}},
		{` ["a", 1, null, {"b":2}, "c\u00e9", 1e400] `, api.Names{"a", "cé"}},
		{`[]`, api.Names{}},
		{`null`, nil},
		{`5`, nil},
		{`1e400`, nil},
		{`{"a":"b"}`, nil},
		{"\"\xff\"", api.Names{"\uFFFD"}},
	} {
		var n api.Names
		if err := json.Unmarshal([]byte(c.raw), &n); err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		if !reflect.DeepEqual(n, c.want) {
			t.Errorf("%s: %q, want %q", c.raw, n, c.want)
		}
	}
	var n api.Names
	if err := n.UnmarshalJSON([]byte(`["a"`)); err == nil {
		t.Error("broken JSON read as names")
	}
}
