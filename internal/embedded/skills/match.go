package skills

import (
	"regexp"
	"strings"
	"unicode"
)

// Skill ids and intent types of the built-in skills, as they appear on the
// bus: the intent type `<skill_id>:<IntentName>` is the intent message's type
// and what a session's blacklisted_intents lists; a skill id is what
// blacklisted_skills lists.
const (
	SkillGreeting = "greeting.builtin"
	SkillTime     = "time.builtin"
	SkillDate     = "date.builtin"
	SkillJoke     = "joke.builtin"
	SkillSay      = "say.builtin"
	SkillQuiz     = "quiz.builtin"
	SkillCount    = "count.builtin"

	IntentHello = SkillGreeting + ":HelloIntent"
	IntentTime  = SkillTime + ":TimeIntent"
	IntentDate  = SkillDate + ":DateIntent"
	IntentJoke  = SkillJoke + ":JokeIntent"
	IntentSay   = SkillSay + ":SayIntent"
	IntentQuiz  = SkillQuiz + ":QuizIntent"
	IntentCount = SkillCount + ":CountIntent"
)

// Intent is what the matcher found for an utterance: enough to build the
// intent message (`<SkillID>:<Name>` with Adapt-like match data) and the
// handler messages, and to answer intent.service.intent.get.
type Intent struct {
	SkillID string // e.g. "greeting.builtin"
	Name    string // e.g. "HelloIntent"
	Handler string // e.g. "GreetingSkill.handle_hello"
	// Confidence is Adapt's: the share of the normalized utterance covered by
	// the matched words ("hello there" → 5/11 ≈ 0.4545, as in the fixtures).
	Confidence float64
	// Utterance is the utterance as it was matched.
	Utterance string
	// Entities are the matched keywords (and, for SayIntent, the words to
	// say), keyed Adapt-style by the munged skill id plus a keyword name.
	Entities []Entity
}

// Entity is one matched keyword of an Intent: Key is Adapt's munged entity
// name (e.g. "greeting_builtinHello"), Value the matched text, StartToken and
// EndToken its token span in the normalized utterance.
type Entity struct {
	Key        string
	Value      string
	StartToken int
	EndToken   int
}

// Type is the intent type as the bus names it: "<skill_id>:<IntentName>".
func (i Intent) Type() string { return i.SkillID + ":" + i.Name }

// entity returns the value of the entity whose key ends in name.
func (i Intent) entity(name string) string {
	for _, e := range i.Entities {
		if strings.HasSuffix(e.Key, name) {
			return e.Value
		}
	}
	return ""
}

// matchData is the Adapt match data ovos-core merges into the intent message
// and returns (with more members) from intent.service.intent.get:
// intent_type, the entities, target, confidence, __tags__ and utterance.
func (i Intent) matchData() map[string]any {
	d := map[string]any{
		"intent_type": i.Type(),
		"target":      nil,
		"confidence":  i.Confidence,
		"utterance":   i.Utterance,
	}
	tags := make([]any, 0, len(i.Entities))
	for _, e := range i.Entities {
		d[e.Key] = e.Value
		tags = append(tags, map[string]any{
			"match":       e.Value,
			"key":         e.Value,
			"start_token": e.StartToken,
			"end_token":   e.EndToken,
			"entities": []any{map[string]any{
				"key":        e.Value,
				"match":      e.Value,
				"data":       []any{[]any{e.Value, e.Key}},
				"confidence": 1.0,
			}},
			"from_context": false,
		})
	}
	d["__tags__"] = tags
	return d
}

// rule is one built-in intent: its names and a matcher over the normalized
// tokens (and the original text, for SayIntent's free words).
type rule struct {
	skillID, name, handler string
	match                  func(tokens []string, original string) []Entity
}

// builtinRules are the built-in intents, tried in this order; the first match
// that is not blacklisted wins (OVOS likewise skips a blacklisted intent and
// goes on with the next candidate). "say hello" is a SayIntent, not a
// greeting; "ask me the time" a QuizIntent.
func builtinRules() []rule {
	return []rule{
		{SkillSay, "SayIntent", "SaySkill.handle_say", matchSay},
		{SkillQuiz, "QuizIntent", "QuizSkill.handle_quiz", phrases(SkillQuiz, "Quiz",
			"ask me something", "ask me anything", "ask me a question", "quiz me", "quiz")},
		{SkillCount, "CountIntent", "CountSkill.handle_count", phrases(SkillCount, "Count",
			"count to three", "count to 3", "count")},
		{SkillJoke, "JokeIntent", "JokeSkill.handle_joke", phrases(SkillJoke, "Joke",
			"joke", "jokes")},
		{SkillDate, "DateIntent", "DateSkill.handle_date", phrases(SkillDate, "Date",
			"todays date", "date", "what day", "which day", "day is it", "day is today", "day of the week")},
		{SkillTime, "TimeIntent", "TimeSkill.handle_time", phrases(SkillTime, "Time",
			"time")},
		{SkillGreeting, "HelloIntent", "GreetingSkill.handle_hello", phrases(SkillGreeting, "Hello",
			"good morning", "good afternoon", "good evening", "good day",
			"hello", "hi", "hey", "hiya", "howdy", "greetings")},
	}
}

// blacklist is a session's blacklisted_intents and blacklisted_skills.
type blacklist struct {
	intents map[string]bool // "<skill_id>:<IntentName>"
	skills  map[string]bool
}

func (b blacklist) blocks(r *rule) bool {
	return b.skills[r.skillID] || b.intents[r.skillID+":"+r.name]
}

// blacklistOf reads the session's blacklists. Members that are not strings
// are skipped, not allowed to void the rest of the list.
func blacklistOf(session map[string]any) blacklist {
	return blacklist{
		intents: stringSet(session["blacklisted_intents"]),
		skills:  stringSet(session["blacklisted_skills"]),
	}
}

func stringSet(v any) map[string]bool {
	arr, _ := v.([]any)
	if len(arr) == 0 {
		return nil
	}
	set := make(map[string]bool, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			set[s] = true
		}
	}
	return set
}

// match finds the first of rules that matches utterance and is not
// blacklisted.
func match(rules []rule, utterance string, bl blacklist) (Intent, bool) {
	tokens := normalize(utterance)
	if len(tokens) == 0 {
		return Intent{}, false
	}
	for i := range rules {
		r := &rules[i]
		if bl.blocks(r) {
			continue
		}
		ents := r.match(tokens, utterance)
		if ents == nil {
			continue
		}
		return Intent{
			SkillID:    r.skillID,
			Name:       r.name,
			Handler:    r.handler,
			Confidence: confidence(tokens, ents),
			Utterance:  utterance,
			Entities:   ents,
		}, true
	}
	return Intent{}, false
}

// normalize lower-cases the utterance and splits it into words: punctuation
// separates words, apostrophes vanish ("What's" → "whats"), so "Hello,
// there!" and "hello there" are the same tokens.
func normalize(s string) []string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\'' || r == '’':
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteByte(' ')
		}
	}
	return strings.Fields(b.String())
}

// confidence is the share of the normalized utterance the entities cover.
func confidence(tokens []string, ents []Entity) float64 {
	total := len(strings.Join(tokens, " "))
	covered := 0
	for _, e := range ents {
		covered += len(e.Value)
	}
	if total == 0 || covered >= total {
		return 1
	}
	return float64(covered) / float64(total)
}

// mungeSkillID is Adapt's entity prefix: the skill id with '.' and '-' as '_'.
func mungeSkillID(id string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(id)
}

// phrases builds a matcher that finds the first of the phrases (in the order
// given) among the tokens.
func phrases(skillID, keyword string, list ...string) func([]string, string) []Entity {
	key := mungeSkillID(skillID) + keyword
	split := make([][]string, len(list))
	for i, p := range list {
		split[i] = strings.Fields(p)
	}
	return func(tokens []string, _ string) []Entity {
		for i, p := range split {
			if at := indexOf(tokens, p); at >= 0 {
				return []Entity{{Key: key, Value: list[i], StartToken: at, EndToken: at + len(p) - 1}}
			}
		}
		return nil
	}
}

func indexOf(tokens, phrase []string) int {
outer:
	for i := 0; i+len(phrase) <= len(tokens); i++ {
		for j, w := range phrase {
			if tokens[i+j] != w {
				continue outer
			}
		}
		return i
	}
	return -1
}

// sayPattern is "say X" / "repeat X" / "repeat after me X", optionally
// after "please" or "can you", X keeping its case and punctuation.
var sayPattern = regexp.MustCompile(`(?is)^[\s\p{P}]*(?:(?:please|can you|could you)[\s,]+)?(say|repeat(?:\s+after\s+me)?)(?:[\s,:;]+|$)(.*)$`)

func matchSay(tokens []string, original string) []Entity {
	m := sayPattern.FindStringSubmatch(original)
	if m == nil {
		return nil
	}
	words := strings.TrimSpace(m[2])
	if len(words) >= 2 && (words[0] == '"' || words[0] == '\'') && words[len(words)-1] == words[0] {
		words = strings.TrimSpace(words[1 : len(words)-1])
	}
	if normalizedEmpty(words) {
		return nil
	}
	verb := strings.ToLower(strings.Join(strings.Fields(m[1]), " "))
	at := indexOf(tokens, strings.Fields(verb))
	if at < 0 {
		at = 0
	}
	end := at + len(strings.Fields(verb)) - 1
	munged := mungeSkillID(SkillSay)
	return []Entity{
		{Key: munged + "Say", Value: verb, StartToken: at, EndToken: end},
		{Key: munged + "Words", Value: words, StartToken: end + 1, EndToken: len(tokens) - 1},
	}
}

// normalizedEmpty reports whether s has no letter or digit: "say !!!" is
// not something to say.
func normalizedEmpty(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0
}
