package handlers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ovosgw/gateway/api"
)

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		name, ctype, body, code string
	}{
		{"ok", "application/json", `{"utterance":"hi","lang":"en-us"}`, ""},
		{"charset param", "application/json; charset=utf-8", `{"utterance":"hi"}`, ""},
		{"+json", "application/merge-patch+json", `{"utterance":"hi"}`, ""},
		{"no type", "", `{"utterance":"hi"}`, api.EUNSUPPORTED},
		{"form", "application/x-www-form-urlencoded", `utterance=hi`, api.EUNSUPPORTED},
		{"empty", "application/json", ``, api.EINVALID},
		{"null", "application/json", `null`, api.EINVALID},
		{"string", "application/json", `"hi"`, api.EINVALID},
		{"unknown member", "application/json", `{"utterance":"hi","admin":true}`, api.EINVALID},
		// Names are exact: encoding/json would take these for utterance (and
		// the last one would win).
		{"name in capitals", "application/json", `{"UTTERANCE":"hi"}`, api.EINVALID},
		{"name in another case after it", "application/json", `{"utterance":"hi","UTTERANCE":"tell me a joke"}`, api.EINVALID},
		{"name in another case before it", "application/json", `{"Utterance":"joke","utterance":"hi"}`, api.EINVALID},
		{"lang in another case", "application/json", `{"utterance":"hi","Lang":"en-us"}`, api.EINVALID},
		{"escaped exact name", "application/json", `{"\u0075tterance":"hi"}`, ""},
		{"wrong type", "application/json", `{"utterance":["hi"]}`, api.EINVALID},
		{"trailing garbage", "application/json", `{"utterance":"hi"} x`, api.EINVALID},
		{"two objects", "application/json", `{"utterance":"hi"}{}`, api.EINVALID},
		{"bad utf-8", "application/json", "{\"utterance\":\"\xc3\x28\"}", api.EINVALID},
		{"too large", "application/json", `{"utterance":"` + string(bytes.Repeat([]byte("a"), 200)) + `"}`, api.ETOOLARGE},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(c.body))
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 100)
			var v api.UtteranceRequest
			err := decodeJSON(r, &v)
			if got := api.ErrorCode(err); got != c.code {
				t.Fatalf("code %q, want %q (%v)", got, c.code, err)
			}
			if c.code == "" && v.Utterance != "hi" {
				t.Fatalf("decoded %+v", v)
			}
		})
	}
}

// FuzzDecodeJSON: whatever a client sends, decoding answers a client error
// (never an internal one, never a panic).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"utterance":"hi"}`, `{"utterance":1}`, `{`, `[]`, "{\"a\":\"\xff\"}", `{"utterance":"hi","password":"x","lang":"en"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<10)
		var v api.UtteranceRequest
		if err := decodeJSON(r, &v); err != nil {
			switch api.ErrorCode(err) {
			case api.EINVALID, api.ETOOLARGE:
			default:
				t.Fatalf("code %s for %q", api.ErrorCode(err), body)
			}
		}
	})
}
