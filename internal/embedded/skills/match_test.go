package skills

import (
	"math"
	"testing"
)

func newTestSkills(tb testing.TB, cfg Config) *Skills {
	tb.Helper()
	s, err := New(cfg, &loopBus{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestMatch(t *testing.T) {
	s := newTestSkills(t, Config{})
	tests := []struct {
		utterance string
		want      string // intent type, "" for no match
	}{
		{"hello", IntentHello},
		{"Hello there!", IntentHello},
		{"hi", IntentHello},
		{"Hey, Mycroft", IntentHello},
		{"good morning", IntentHello},
		{"  GOOD   EVENING.  ", IntentHello},
		{"what time is it", IntentTime},
		{"What time is it?", IntentTime},
		{"time", IntentTime},
		{"what's the time", IntentTime},
		{"what's the date", IntentDate},
		{"What’s the date?", IntentDate},
		{"what day is it", IntentDate},
		{"today's date", IntentDate},
		{"date", IntentDate},
		{"tell me a joke", IntentJoke},
		{"Joke!", IntentJoke},
		{"say hello world", IntentSay},
		{"Say: Hello, World!", IntentSay},
		{"please say something nice", IntentSay},
		{"repeat after me I am a robot", IntentSay},
		{"repeat the cat sat", IntentSay},
		{"ask me something", IntentQuiz},
		{"Quiz me!", IntentQuiz},
		{"ask me a question", IntentQuiz},
		// no match
		{"", ""},
		{"   ", ""},
		{"?!", ""},
		{"what is the airspeed of a swallow", ""},
		{"say", ""},
		{"say !!!", ""},
		{"sayonara", ""},
		{"this", ""},
		{"timer", ""},
		{"update", ""},
		{"chill", ""},
	}
	for _, tt := range tests {
		t.Run(tt.utterance, func(t *testing.T) {
			in, ok := s.Match(tt.utterance)
			if tt.want == "" {
				if ok {
					t.Fatalf("Match(%q) = %s, want no match", tt.utterance, in.Type())
				}
				return
			}
			if !ok {
				t.Fatalf("Match(%q): no match, want %s", tt.utterance, tt.want)
			}
			if in.Type() != tt.want {
				t.Errorf("Match(%q) = %s, want %s", tt.utterance, in.Type(), tt.want)
			}
			if in.Utterance != tt.utterance {
				t.Errorf("Utterance = %q", in.Utterance)
			}
			if in.Handler == "" || in.Confidence <= 0 || in.Confidence > 1 || len(in.Entities) == 0 {
				t.Errorf("incomplete intent %+v", in)
			}
		})
	}
}

// TestMatchConfidenceLikeAdapt: the fixture's Adapt match of "hello there"
// had confidence 5/11 and the entity hello_intent_peersHello.
func TestMatchConfidenceLikeAdapt(t *testing.T) {
	in, ok := newTestSkills(t, Config{}).Match("hello there")
	if !ok {
		t.Fatal("no match")
	}
	if want := 5.0 / 11.0; math.Abs(in.Confidence-want) > 1e-12 {
		t.Errorf("confidence = %v, want %v", in.Confidence, want)
	}
	d := in.matchData()
	if d["greeting_builtinHello"] != "hello" || d["intent_type"] != IntentHello || d["utterance"] != "hello there" {
		t.Errorf("match data = %v", d)
	}
	tags, _ := d["__tags__"].([]any)
	if len(tags) != 1 {
		t.Fatalf("__tags__ = %v", d["__tags__"])
	}
	if tag := tags[0].(map[string]any); tag["start_token"] != 0 || tag["end_token"] != 0 || tag["match"] != "hello" {
		t.Errorf("tag = %v", tag)
	}
}

func TestMatchSayKeepsWords(t *testing.T) {
	s := newTestSkills(t, Config{})
	tests := []struct{ utterance, words string }{
		{"Say: Hello, World!", "Hello, World!"},
		{"say \"quoted words\"", "quoted words"},
		{"SAY It's 5 o'clock", "It's 5 o'clock"},
		{"repeat after me  I am a robot ", "I am a robot"},
		{"can you say hi", "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.utterance, func(t *testing.T) {
			in, ok := s.Match(tt.utterance)
			if !ok || in.Type() != IntentSay {
				t.Fatalf("Match = %v %v", in.Type(), ok)
			}
			if got := say(in).text; got != tt.words {
				t.Errorf("says %q, want %q", got, tt.words)
			}
		})
	}
}

func TestBlacklistSkipsToNextCandidate(t *testing.T) {
	s := newTestSkills(t, Config{})
	tests := []struct {
		name      string
		utterance string
		bl        blacklist
		want      string
	}{
		{"intent", "hello", blacklist{intents: map[string]bool{IntentHello: true}}, ""},
		{"skill", "what time is it", blacklist{skills: map[string]bool{SkillTime: true}}, ""},
		{"other intent", "hello", blacklist{intents: map[string]bool{IntentTime: true}}, IntentHello},
		{"next candidate", "say hello", blacklist{skills: map[string]bool{SkillSay: true}}, IntentHello},
		{"bare name is not enough", "hello", blacklist{intents: map[string]bool{"HelloIntent": true}}, IntentHello},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, ok := match(s.rules, tt.utterance, tt.bl)
			got := ""
			if ok {
				got = in.Type()
			}
			if got != tt.want {
				t.Errorf("match = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBlacklistOf(t *testing.T) {
	m := mustMessage(t, []byte(`{"type":"t","context":{"session":{"blacklisted_intents":[1,"a:B",null],"blacklisted_skills":"odd"}}}`))
	bl := blacklistOf(m.session())
	if !bl.intents["a:B"] || len(bl.intents) != 1 || len(bl.skills) != 0 {
		t.Errorf("blacklist = %+v", bl)
	}
	if bl := blacklistOf(nil); bl.intents != nil || bl.skills != nil {
		t.Errorf("nil session blacklist = %+v", bl)
	}
}

func BenchmarkMatch(b *testing.B) {
	s := newTestSkills(b, Config{})
	utts := []string{"Hello there!", "what is the airspeed of a swallow", "say the quick brown fox", "what time is it"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Match(utts[i%len(utts)])
		i++
	}
}
