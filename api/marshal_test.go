package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// The reference: Message.MarshalJSON written with encoding/json alone.

func refMarshal(m Message) ([]byte, error) {
	if m.Type == "" {
		return nil, errors.New("no type")
	}
	t, err := json.Marshal(m.Type)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	b.Write(t)
	b.WriteString(`,"data":`)
	if err := refWriteObject(&b, m.Data); err != nil {
		return nil, err
	}
	b.WriteString(`,"context":`)
	if err := refWriteObject(&b, m.Context); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func refWriteObject(b *bytes.Buffer, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		b.WriteString("{}")
		return nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return errors.New("not a JSON object")
	}
	return json.Compact(b, raw)
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	for i, c := range []Message{
		{Type: "x"},
		{Type: "a<b>&\"\\\x01é\xff", Data: json.RawMessage(` {"a" : [1, 2]} `)},
		{Type: "x", Data: json.RawMessage(`null`), Context: json.RawMessage(`{"b":"c d"}`)},
		{Type: "x", Data: json.RawMessage(`[1]`)},
		{Type: "x", Context: json.RawMessage(`{"a":`)},
		{Type: "x", Context: json.RawMessage(`{"a":1}{}`)},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) { compareMarshal(t, c) })
	}
}

func compareMarshal(t *testing.T, m Message) {
	t.Helper()
	got, gerr := m.MarshalJSON()
	want, werr := refMarshal(m)
	if (gerr == nil) != (werr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("%+v: got %s (%v), reference %s (%v)", m, got, gerr, want, werr)
	}
}

func FuzzMarshalMatchesEncodingJSON(f *testing.F) {
	f.Add("x", []byte(`{"a" : 1}`), []byte(`null`))
	f.Add("a<b", []byte(` [1] `), []byte(`{"a":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, typ string, data, ctx []byte) {
		compareMarshal(t, Message{Type: typ, Data: data, Context: ctx})
	})
}

func BenchmarkMarshal(b *testing.B) {
	m := Message{Type: "recognizer_loop:utterance", Data: json.RawMessage(`{"utterances":["hello"],"lang":"en-us"}`),
		Context: json.RawMessage(`{"source":"gateway:kitchen","destination":["skills"],"client_name":"Kitchen","session":{"session_id":"K93y0dhLSv0La-WTmFKMJA","lang":"en-us"},"utterance_id":"GsfsDK-UbMoHILTc36b6bg"}`)}
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := refMarshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
