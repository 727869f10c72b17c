package jsonbody

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// Names are exact in both modes; only strict refuses members nobody knows.
func TestDecodeNames(t *testing.T) {
	for _, tc := range []struct {
		body          string
		strict, lax   string // the error code in each mode
		wantUtterance string
	}{
		{`{"utterance":"hi"}`, "", "", "hi"},
		{`{"utterance":"hi","extra":true}`, api.EINVALID, "", "hi"},
		{`{"utterance":"hi","UTTERANCE":"tell me a joke"}`, api.EINVALID, api.EINVALID, ""},
		{`{"Utterance":"hi"}`, api.EINVALID, api.EINVALID, ""},
	} {
		for mode, want := range map[bool]string{true: tc.strict, false: tc.lax} {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			var v api.UtteranceRequest
			err := Decode(r, &v, mode)
			if got := api.ErrorCode(err); got != want {
				t.Errorf("%s, strict %v: code %q, want %q (%v)", tc.body, mode, got, want, err)
			}
			if want == "" && v.Utterance != tc.wantUtterance {
				t.Errorf("%s, strict %v: decoded %+v", tc.body, mode, v)
			}
		}
	}
}
