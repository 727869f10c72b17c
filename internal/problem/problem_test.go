package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ovosgw/gateway/api"
)

// TestShape: under WithShape, Write sends the shape's body (the dialect's
// members beside the problem's), with the same status and media type; the
// shape sees the refusal, and an internal cause still shows as "internal
// error".
func TestShape(t *testing.T) {
	shape := func(p api.Problem, err error) any {
		return struct {
			api.Problem
			Extra string `json:"extra"`
		}{p, api.ErrorCode(err)}
	}
	cases := []struct {
		err    error
		status int
		detail string
	}{
		{api.Errorf(api.EINVALID, "bad n"), http.StatusBadRequest, "bad n"},
		{api.Errorf(api.EASSISTANTTIMEOUT, "slow"), http.StatusGatewayTimeout, "slow"},
		{api.Errorf(api.EASSISTANT, "gone"), http.StatusBadGateway, "gone"},
		{errTest("secret cause"), http.StatusInternalServerError, "internal error"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(WithShape(r.Context(), shape))
		w := httptest.NewRecorder()
		Write(w, r, c.err)
		var got struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
			Extra  string `json:"extra"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status || got.Status != c.status || got.Detail != c.detail || got.Extra != api.ErrorCode(c.err) || w.Header().Get("Content-Type") != ContentType {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
	}
	// Without a shape: the plain problem.
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), api.Errorf(api.EINVALID, "x"))
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	if _, ok := m["extra"]; ok || m["detail"] != "x" {
		t.Errorf("plain: %s", w.Body)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
