package skills

import (
	"fmt"
	"strings"
)

// utterance is one thing a skill says: the text, and the dialog name and
// data that ovos-workshop's speak_dialog puts in speak's data.meta.
type utterance struct {
	text   string
	dialog string
	data   map[string]any
}

// defaultJokes are told in order, round and round, when Config.Jokes is
// empty.
func defaultJokes() []string {
	return []string{
		"Why did the robot go on holiday? It needed to recharge its batteries.",
		"I told my computer a joke about UDP. I'm not sure it got it.",
		"Why do programmers prefer dark mode? Because light attracts bugs.",
		"What do you call a fish with no eyes? A fsh.",
		"Why was the math book sad? It had too many problems.",
	}
}

// Quiz dialogs: the question asked with expect_response, then the answer or
// the give-up line.
const (
	quizQuestion = "What is your favourite colour?"
	quizTimeout  = "Never mind, maybe another time."
)

// greet answers HelloIntent, echoing a "good morning" style greeting.
func greet(in Intent) utterance {
	if g := in.entity("Hello"); strings.HasPrefix(g, "good ") {
		return utterance{
			text:   capitalize(g) + "! How can I help you?",
			dialog: "greeting.timed",
			data:   map[string]any{"greeting": g},
		}
	}
	return utterance{text: "Hello! How can I help you?", dialog: "hello", data: map[string]any{}}
}

func (s *Skills) tellTime() utterance {
	now := s.cfg.Now().In(s.cfg.Location)
	t := now.Format("3:04 PM")
	return utterance{text: "It's " + t + ".", dialog: "time.current", data: map[string]any{"time": t}}
}

func (s *Skills) tellDate() utterance {
	now := s.cfg.Now().In(s.cfg.Location)
	d := now.Format("Monday, January 2, 2006")
	return utterance{text: "Today is " + d + ".", dialog: "date.current", data: map[string]any{"date": d}}
}

func (s *Skills) tellJoke() utterance {
	n := s.jokeN.Add(1) - 1
	j := s.jokes[n%uint64(len(s.jokes))]
	return utterance{text: j, dialog: "joke", data: map[string]any{}}
}

func say(in Intent) utterance {
	w := in.entity("Words")
	return utterance{text: w, dialog: "say", data: map[string]any{"words": w}}
}

// countTo3 is what the count skill says, one speak each.
func countTo3() []utterance {
	var out []utterance
	for i, w := range []string{"One.", "Two.", "Three."} {
		out = append(out, utterance{text: w, dialog: "count", data: map[string]any{"number": i + 1}})
	}
	return out
}

func quizAsk() utterance {
	return utterance{text: quizQuestion, dialog: "quiz.question", data: map[string]any{}}
}

func quizAnswered(answer string) utterance {
	return utterance{
		text:   fmt.Sprintf("You said %s. Thank you for answering!", answer),
		dialog: "quiz.answer",
		data:   map[string]any{"answer": answer},
	}
}

func quizGaveUp() utterance {
	return utterance{text: quizTimeout, dialog: "quiz.timeout", data: map[string]any{}}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
