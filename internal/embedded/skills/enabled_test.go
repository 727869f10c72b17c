package skills

import (
	"slices"
	"testing"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		name    string
		enabled []string
		ok      bool
		matches map[string]string // utterance -> intent type ("" = no match)
	}{
		{name: "empty loads all", ok: true, matches: map[string]string{"hello": IntentHello, "tell me a joke": IntentJoke}},
		{name: "greeting only", enabled: []string{SkillGreeting}, ok: true, matches: map[string]string{"hello": IntentHello, "tell me a joke": "", "what time is it": ""}},
		{name: "joke and time", enabled: []string{SkillJoke, SkillTime}, ok: true, matches: map[string]string{"hello": "", "tell me a joke": IntentJoke, "what time is it": IntentTime}},
		{name: "unknown id", enabled: []string{SkillGreeting, "weather.builtin"}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Enabled: slices.Clone(tt.enabled)}, &loopBus{})
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			for utt, want := range tt.matches {
				in, ok := s.Match(utt)
				got := ""
				if ok {
					got = in.Type()
				}
				if got != want {
					t.Errorf("Match(%q) = %q, want %q", utt, got, want)
				}
			}
		})
	}
}
