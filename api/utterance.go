package api

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUtteranceRunes is the longest utterance a client may say.
const MaxUtteranceRunes = 1000

// DefaultLang is the language of an utterance, a reply or a bus message that
// names none: the assistants' own default (ovos-core and mycroft-core use
// "en-us", lower case, as the bus carries it).
const DefaultLang = "en-us"

// CheckUtterance says what is wrong with an utterance request, as an EINVALID
// *Error, or nil: the one check of what any client says, through whichever
// API.
func CheckUtterance(req UtteranceRequest) error {
	switch {
	case req.Utterance == "":
		return Errorf(EINVALID, "utterance must be a non-empty string")
	case utf8.RuneCountInString(req.Utterance) > MaxUtteranceRunes:
		return Errorf(EINVALID, "utterance is longer than %d characters", MaxUtteranceRunes)
	case strings.IndexFunc(req.Utterance, unicode.IsControl) >= 0:
		return Errorf(EINVALID, "utterance must not contain control characters")
	case req.Lang != "" && !ValidLang(req.Lang):
		return Errorf(EINVALID, "lang must be a language tag such as en-us")
	case len(req.Password) > 1024:
		return Errorf(EINVALID, "password is too long")
	}
	return nil
}

// ValidLang accepts BCP 47-shaped tags: a 2-3 letter language and up to four
// alphanumeric subtags.
func ValidLang(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) > 5 || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return false
	}
	for i, p := range parts {
		if p == "" || len(p) > 8 {
			return false
		}
		for _, c := range p {
			isLetter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !isLetter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}
