package api_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ovosgw/gateway/api"
)

type inner struct {
	Name string `json:"name"`
}

type base struct {
	ID string `json:"id"`
}

type outer struct {
	base
	Inner   inner            `json:"inner"`
	List    []inner          `json:"list"`
	Ptr     *inner           `json:"ptr,omitempty"`
	Free    map[string]inner `json:"free"`
	Raw     json.RawMessage  `json:"raw"`
	When    time.Time        `json:"when"`
	Skipped string           `json:"-"`
	Plain   string
}

func TestExactNames(t *testing.T) {
	tests := []struct {
		name, doc, bad string
	}{
		{"all exact", `{"id":"a","inner":{"name":"n"},"list":[{"name":"n"}],"ptr":{"name":"p"},"free":{"ANY":{"name":"x"}},"raw":{"ANY":1},"when":"2025-01-01T00:00:00Z","Plain":"p"}`, ""},
		{"escaped but exact", `{"\u0069d":"a"}`, ""},
		{"null and scalars where objects go", `{"inner":null,"list":null,"ptr":null}`, ""},
		{"top level folded", `{"ID":"a"}`, "ID"},
		{"embedded folded", `{"Id":"a"}`, "Id"},
		{"nested folded", `{"inner":{"NAME":"n"}}`, "NAME"},
		{"in a list", `{"list":[{"name":"n"},{"Name":"m"}]}`, "Name"},
		{"behind a pointer", `{"ptr":{"nAme":"p"}}`, "nAme"},
		{"a map's values are structs", `{"free":{"k":{"NAME":"x"}}}`, "NAME"},
		{"the Go name of a tagged field", `{"Inner":{}}`, "Inner"},
		{"a skipped field", `{"Skipped":"x"}`, "Skipped"},
		{"untagged field folded", `{"plain":"p"}`, "plain"},
		{"unknown", `{"admin":true}`, "admin"},
		{"folded duplicate", `{"id":"a","ID":"b"}`, "ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v outer
			if err := json.Unmarshal([]byte(tt.doc), &v); err != nil {
				t.Fatalf("not a document encoding/json takes: %v", err)
			}
			err := api.ExactNames([]byte(tt.doc), &v)
			var ne *api.NameError
			switch {
			case tt.bad == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.bad != "" && (!errors.As(err, &ne) || ne.Name != tt.bad):
				t.Fatalf("error %v, want one naming %q", err, tt.bad)
			}
		})
	}
}

// NoFoldedNames lets members nobody knows pass, but not a known name in
// another case.
func TestNoFoldedNames(t *testing.T) {
	for doc, bad := range map[string]string{
		`{"id":"a","extra":1,"inner":{"name":"n","more":[1]}}`: "",
		`{"ID":"a"}`:                      "ID",
		`{"id":"a","inner":{"Name":"n"}}`: "Name",
		`{"list":[{"nAME":"x"}]}`:         "nAME",
	} {
		err := api.NoFoldedNames([]byte(doc), &outer{})
		var ne *api.NameError
		if (bad == "") != (err == nil) || (bad != "" && (!errors.As(err, &ne) || ne.Name != bad)) {
			t.Errorf("%s: %v, want %q", doc, err, bad)
		}
	}
}
