// Package skills is the embedded assistant's built-in skills: when the
// gateway has no real assistant, it runs an embedded messagebus and this bus
// peer, which answers utterances frame for frame as ovos-core with
// ovos-workshop skills does (docs/bus.md; the transcripts in
// testdata/ovos-wire), so the gateway cannot tell it from the real thing.
//
// Skills (English, case-insensitive, punctuation ignored): greeting ("hello",
// "good morning"), time ("what time is it"), date ("what's the date", "what
// day is it"), joke ("tell me a joke"), say ("say X", "repeat X") and a quiz
// ("ask me something", "quiz me") that asks a question and takes the
// session's next utterance as the answer (get_response).
//
// Every answer is built from the received message with reply() (context
// deep-copied, source and destination swapped when both are present) or, on
// the skill side, forward() of that reply, so unknown context members
// (utterance_id, client_name) and the whole session the sender put there
// travel back unchanged. A session's blacklisted_intents
// ("<skill_id>:<IntentName>") and blacklisted_skills are honoured in the real
// run and in intent.service.intent.get.
//
// # OVOS dialect (the default)
//
// Matched: <skill_id>.activate, <skill_id>:<IntentName>,
// mycroft.skill.handler.start, speak, mycroft.skill.handler.complete,
// ovos.utterance.handled. Nothing matched: mycroft.audio.play_sound,
// complete_intent_failure, ovos.utterance.handled. Replies gain context.lang
// and, from skills, context.skill_id; the session gains session_id
// ("default" when absent) and lang when absent. A get_response adds
// skill.converse.get_response.enable before the question and .disable after
// the answer or timeout; the answering utterance gets its own
// ovos.utterance.handled after the question's.
//
// # Classic dialect (mycroft-core)
//
// No ovos.utterance.handled at all: mycroft.skill.handler.complete ends a
// matched intent. No <skill_id>.activate, no error sound, no
// get_response.enable/.disable, no context.lang and no session expansion;
// the intent message carries the match data plus data.utterances and no
// context.skill_id (the handler messages and speak do).
// complete_intent_failure is sent with forward(), so its context is not
// swapped (its source is still the sender's) and its data is {}. The answer
// to a get_response gets no end frame of its own. intent.get answers name the
// service "Adapt" and omit "utterance".
package skills
