package api

import "testing"

func TestFormatFingerprint(t *testing.T) {
	for in, want := range map[string]string{"": "", "\xab": "AB", "\xab\x01\xff": "AB:01:FF"} {
		if got := FormatFingerprint([]byte(in)); got != want {
			t.Errorf("FormatFingerprint(%x) = %q, want %q", in, got, want)
		}
	}
}
