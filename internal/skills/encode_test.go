package skills

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// referenceJSON is what appendJSON must produce: json.Encoder without HTML
// escaping, trailing newline trimmed.
func referenceJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func compareJSON(t *testing.T, v any) {
	t.Helper()
	got, gerr := appendJSON(nil, v)
	want, werr := referenceJSON(v)
	if (gerr == nil) != (werr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("%#v: got %s (%v), want %s (%v)", v, got, gerr, want, werr)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{
		nil, true, false, "", "plain", "quote\" back\\ <html> & \u2028\u2029 \x00\x1f\b\f\n\r\t \x7f é \xff\xfe",
		json.Number("12.5e-3"), json.Number(""), json.Number("01"), json.Number("x"),
		map[string]any{"b": 1.5, "a": []any{"x", nil, map[string]any{}}, "c": map[string]any(nil), "é": []any(nil)},
		[]any{1e21, 1e-7, 0.0, math.Copysign(0, -1), 123456789.0, math.NaN()},
		map[string]any{"tags": []string{"<a>"}, "n": 3, "m": map[string]string{"k": "&"}},
		map[string]any{"ch": make(chan int)},
	} {
		compareJSON(t, v)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x\u2028",null,true],"b":{"c":"<&>"}}`))
	f.Add([]byte("\"\xff\x01\""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		compareJSON(t, v)
		var plain any // float64 numbers, as the skills' own match data has
		if json.Unmarshal(raw, &plain) == nil {
			compareJSON(t, plain)
		}
	})
}
