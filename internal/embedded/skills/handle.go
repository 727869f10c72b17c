package skills

import (
	"context"
	"strings"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Names of the OVOS pipeline stage and matcher reported by intent.get, by
// Adapt confidence tier (ovos-adapt-pipeline-plugin's thresholds), and
// mycroft-core's.
const (
	confHigh   = 0.65
	confMedium = 0.45
)

// handleUtterance answers one recognizer_loop:utterance: the matched intent's
// sequence, or the failure sequence.
func (s *Skills) handleUtterance(ctx context.Context, m *message, text string) {
	lang := m.lang()
	in, ok := match(s.rules, text, blacklistOf(m.session()))
	if !ok {
		s.intentFailure(ctx, m, lang)
		return
	}
	s.runIntent(ctx, m, in, lang)
}

// base is the context every answer to m shares: m's context replied (source
// and destination swapped), and on OVOS the session expanded and
// context.lang set, as ovos-core does before it emits anything.
func (s *Skills) base(m *message, lang string) *message {
	r := m.reply("", nil)
	if s.ovos {
		expandSession(r.Context, lang)
		r.withContext(ctxLang, lang)
	}
	return r
}

// intentFailure is the nothing-matched sequence.
//
// OVOS: mycroft.audio.play_sound {"uri": "snd/error.mp3"}, then
// complete_intent_failure with the utterance's data, then
// ovos.utterance.handled {}, all replies.
//
// Classic mycroft-core: only complete_intent_failure, sent with forward:
// the context is not swapped (its source is still the sender's) and the data
// is {} (Python's forward(type) without data).
func (s *Skills) intentFailure(ctx context.Context, m *message, lang string) {
	if !s.ovos {
		s.emit(ctx, m.forward(api.TypeIntentFailure, nil))
		return
	}
	b := s.base(m, lang)
	s.emit(ctx,
		b.forward(api.TypePlaySound, map[string]any{"uri": errorSound}),
		b.forward(api.TypeIntentFailure, m.Data),
		b.forward(api.TypeUtteranceHandled, map[string]any{}),
	)
}

// runIntent is the matched sequence.
//
// OVOS: <skill_id>.activate {}, <skill_id>:<IntentName> (the utterance's
// data plus the match data), mycroft.skill.handler.start {"name"}, speak,
// mycroft.skill.handler.complete {"name"}, ovos.utterance.handled {"name"}
// (the fixture shows ovos-workshop's handler name there), every one a reply
// carrying context.lang and context.skill_id.
//
// Classic: no .activate; the intent message carries the match data plus
// data.utterances and no context additions; the handler messages and speak
// carry context.skill_id; handler.complete ends it, there is no
// ovos.utterance.handled.
func (s *Skills) runIntent(ctx context.Context, m *message, in Intent, lang string) {
	b := s.base(m, lang)
	var intentMsg *message
	if s.ovos {
		b.withContext(ctxSkillID, in.SkillID)
		data := deepCopyMap(m.Data)
		for k, v := range in.matchData() {
			data[k] = v
		}
		intentMsg = b.forward(in.Type(), data)
		if s.emit(ctx, b.forward(in.SkillID+".activate", map[string]any{})) != nil {
			return
		}
	} else {
		data := in.matchData()
		data["utterances"] = deepCopy(m.Data["utterances"])
		intentMsg = b.forward(in.Type(), data)
		b.withContext(ctxSkillID, in.SkillID)
	}
	handler := map[string]any{"name": in.Handler}
	if s.emit(ctx, intentMsg, b.forward(api.TypeHandlerStart, handler)) != nil {
		return
	}

	var answered *answer
	switch in.Type() {
	case IntentQuiz:
		var ok bool
		if answered, ok = s.quiz(ctx, b, m.sessionID(), lang); !ok {
			return
		}
	case IntentCount:
		// The one built-in skill that speaks more than once in one handler:
		// each number is its own speak, as a skill calling speak_dialog in
		// a loop sends them (and a stream shows them one by one).
		for _, u := range countTo3() {
			if s.emit(ctx, s.speak(b, in.SkillID, lang, u, false)) != nil {
				return
			}
		}
	default:
		if s.emit(ctx, s.speak(b, in.SkillID, lang, s.respond(in), false)) != nil {
			return
		}
	}

	if s.emit(ctx, b.forward(api.TypeHandlerComplete, handler)) != nil || !s.ovos {
		return
	}
	if s.emit(ctx, b.forward(api.TypeUtteranceHandled, handler)) != nil {
		return
	}
	if answered != nil {
		// The answering utterance ends too, in its own context.
		a := s.base(answered.msg, answered.msg.lang()).withContext(ctxSkillID, in.SkillID)
		s.emit(ctx, a.forward(api.TypeUtteranceHandled, map[string]any{}))
	}
}

// respond is what a one-shot skill says.
func (s *Skills) respond(in Intent) utterance {
	switch in.Type() {
	case IntentTime:
		return s.tellTime()
	case IntentDate:
		return s.tellDate()
	case IntentJoke:
		return s.tellJoke()
	case IntentSay:
		return say(in)
	default:
		return greet(in)
	}
}

// quiz is ovos-workshop's get_response: skill.converse.get_response.enable,
// the question spoken with expect_response, a wait for the session's next
// utterance (consumed as the answer, never matched) or the timeout, then
// skill.converse.get_response.disable and a spoken reply. Classic
// mycroft-core has no enable/disable messages (it captured the answer
// through converse), so they are left out there. ok is false when the
// handler must stop (bus failure or shutdown).
func (s *Skills) quiz(ctx context.Context, b *message, sessionID, lang string) (got *answer, ok bool) {
	w := s.waiters.add(sessionID)
	defer s.waiters.remove(sessionID, w)
	toggle := map[string]any{"skill_id": SkillQuiz}
	if s.ovos {
		if s.emit(ctx, b.forward(api.TypeGetResponseEnable, toggle)) != nil {
			return nil, false
		}
	}
	if s.emit(ctx, s.speak(b, SkillQuiz, lang, quizAsk(), true)) != nil {
		return nil, false
	}

	timer := time.NewTimer(s.cfg.ResponseTimeout)
	defer timer.Stop()
	select {
	case a := <-w.ch:
		got = &a
	case <-timer.C:
		s.waiters.remove(sessionID, w)
		select { // an answer delivered just before the removal still counts
		case a := <-w.ch:
			got = &a
		default:
		}
	case <-ctx.Done():
		return nil, false
	}

	if s.ovos {
		if s.emit(ctx, b.forward(api.TypeGetResponseDisable, toggle)) != nil {
			return nil, false
		}
	}
	reply := quizGaveUp()
	if got != nil {
		text := strings.TrimSpace(got.text)
		if text == "" {
			text = "nothing"
		}
		reply = quizAnswered(text)
	}
	if s.emit(ctx, s.speak(b, SkillQuiz, lang, reply, false)) != nil {
		return nil, false
	}
	return got, true
}

// speak is ovos-workshop's speak_dialog: data {"utterance",
// "expect_response", "meta": {"dialog", "data", "skill"}, "lang"}, forwarded
// from the handler's message.
func (s *Skills) speak(b *message, skillID, lang string, u utterance, expectResponse bool) *message {
	return b.forward(api.TypeSpeak, map[string]any{
		"utterance":       u.text,
		"expect_response": expectResponse,
		"meta":            map[string]any{"dialog": u.dialog, "data": u.data, "skill": skillID},
		"lang":            lang,
	})
}

// handleIntentGet answers intent.service.intent.get with
// intent.service.intent.reply, a reply: {"intent": null, "utterance"} when
// nothing matches (or only blacklisted intents do), else the match data plus
// intent_name (the intent type, as the fixture shows), intent_service,
// skill_id and handler (the pipeline matcher's name, e.g. "match_medium").
// OVOS expands the session ("default" when none was sent); classic
// mycroft-core names the service "Adapt" and the matcher "match_intent", and
// omits "utterance". A request whose data.utterance is not a string gets no
// answer (ovos-core fails on it too).
func (s *Skills) handleIntentGet(ctx context.Context, m *message) {
	utt, ok := m.Data["utterance"].(string)
	if !ok {
		s.log.Debug("intent.get without data.utterance ignored")
		return
	}
	var intent any
	if in, ok := match(s.rules, utt, blacklistOf(m.session())); ok {
		d := in.matchData()
		d["intent_name"] = in.Type()
		d["skill_id"] = in.SkillID
		d["intent_service"], d["handler"] = s.pipelineStage(in.Confidence)
		intent = d
	}
	data := map[string]any{"intent": intent}
	r := m.reply(api.TypeIntentReply, nil)
	if s.ovos {
		data["utterance"] = utt
		expandSession(r.Context, m.lang())
	}
	r.Data = data
	s.emit(ctx, r)
}

// pipelineStage names the pipeline stage and matcher that would have matched
// with this confidence.
func (s *Skills) pipelineStage(conf float64) (service, handler string) {
	switch {
	case !s.ovos:
		return "Adapt", "match_intent"
	case conf >= confHigh:
		return "ovos-adapt-pipeline-plugin-high", "match_high"
	case conf >= confMedium:
		return "ovos-adapt-pipeline-plugin-medium", "match_medium"
	default:
		return "ovos-adapt-pipeline-plugin-low", "match_low"
	}
}
