// Talk: sign in as a client, say things, and watch the assistant's answers
// arrive on the client's event stream. The stream is the source of truth:
// the POST only returns the utterance's id; `speak` and `done` events carry
// that id back. The session token lives in this module's memory only; the
// EventSource is authenticated by the HttpOnly session cookie and resumes
// with Last-Event-ID on its own after a network drop. A reload resumes the
// session the cookie names (POST /v1/sessions/current/refresh, which only
// the gateway's own pages may do with the cookie), and the token is
// refreshed before it expires, so the key is typed once per sign-in.

import {ApiError, call, explain} from './api.js';
import {busy, clock, h, icon, showError} from './dom.js';

const READY_POLL_MS = 10000;
const MAX_RETRY_MS = 30000;
const SEEN_IDS = 512;
const EARLY = 128;
const REFRESH_AT = 0.8; // of a token's remaining life
const REFRESH_RETRY_MS = 5000;

// What each outcome looks like under the user's message.
const STATUS = {
  sending: {label: 'Sending…', tone: 'pending'},
  waiting: {label: 'Waiting for the assistant…', tone: 'pending'},
  question: {label: 'The assistant asked you a question', tone: 'question'},
  password: {label: 'Password needed', tone: 'warn'},
  handled: {label: 'Answered', tone: 'ok', icon: 'check'},
  intent_failure: {label: 'Not understood', tone: 'warn', icon: 'help'},
  timeout: {label: 'Timed out', tone: 'warn', icon: 'clock'},
  error: {label: 'Failed: the assistant could not handle it', tone: 'bad', icon: 'alert'},
  refused: {label: 'Refused', tone: 'bad', icon: 'ban'},
  unsent: {label: 'Not sent', tone: 'bad', icon: 'alert'},
};

/** createTalk wires the Talk view. */
export function createTalk() {
  const $ = (id) => document.getElementById(id);
  const els = {
    signin: $('talk-signin'), chat: $('talk-chat'), loginForm: $('login-form'), loginClient: $('login-client'),
    loginKey: $('login-key'), loginError: $('login-error'), loginSubmit: $('login-submit'), who: $('talk-who'),
    pill: $('link-pill'), linkText: $('link-text'), logout: $('logout'), conversation: $('conversation'),
    empty: $('chat-empty'), composer: $('composer'), input: $('composer-input'), followup: $('followup'),
    pwDialog: $('password-dialog'), pwForm: $('password-form'), pwText: $('password-text'), pwInput: $('password-input'),
    pwError: $('password-error'), pwSubmit: $('password-submit'),
  };

  let session = null; // {token, clientId, sessionId, expiresAt, name}
  let es = null;
  let streamState = 'idle'; // idle, connecting, open, reconnecting
  let assistant = 'unknown'; // unknown, up, down
  let retryMs = 1000;
  let retryTimer = 0;
  let readyTimer = 0;
  let expiryTimer = 0;
  let refreshTimer = 0;
  let recreated = false;
  let byId = new Map(); // utterance id → item
  let early = new Map(); // utterance id → {asked, done}: events that came before the POST answered
  let seen = new Set();
  let seenOrder = [];
  let asking = null; // the item whose utterance the assistant's open question belongs to
  let askingTag = null; // the "waiting for your answer" tag of that question

  // ---- signing in and out ----

  els.loginForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const clientId = els.loginClient.value.trim();
    const key = els.loginKey.value.trim();
    if (!clientId || !key) {
      showError(els.loginError, 'Enter the client id and the access key.');
      (clientId ? els.loginKey : els.loginClient).focus();
      return;
    }
    showError(els.loginError, '');
    await busy(els.loginSubmit, async () => {
      try {
        const s = await call('POST', '/v1/sessions', {body: {client_id: clientId, access_key: key}});
        els.loginKey.value = '';
        await start(s);
      } catch (e) {
        showError(els.loginError, loginMessage(e));
        els.loginKey.focus();
        els.loginKey.select();
      }
    });
  });

  function loginMessage(e) {
    if (e instanceof ApiError && e.status === 401) return 'That client id and access key do not match.';
    if (e instanceof ApiError && e.status === 429) {
      return e.retryAfter ? `Too many attempts. Try again in ${e.retryAfter} s.` : 'Too many attempts. Try again later.';
    }
    return explain(e);
  }

  async function start(s) {
    session = {token: s.token, clientId: s.client_id, sessionId: s.session_id, expiresAt: Date.parse(s.expires_at), name: ''};
    try {
      const me = await call('GET', '/v1/clients/me', {token: session.token});
      session.name = me.name || '';
    } catch {
      // the profile is only for the header
    }
    resetConversation();
    els.who.replaceChildren(h('span', {}, 'Signed in as ', h('strong', {}, session.name || session.clientId),
      session.name && session.name !== session.clientId ? h('span', {class: 'mono muted'}, ` · ${session.clientId}`) : null));
    els.signin.hidden = true;
    els.chat.hidden = false;
    document.getElementById('view-talk').classList.add('chat-mode');
    scheduleRefresh();
    connect();
    pollReady();
    els.input.focus();
  }

  // ---- keeping the session ----

  // scheduleRefresh asks for a new token at REFRESH_AT of the current one's
  // remaining life, and ends the session when it runs out regardless.
  function scheduleRefresh(delay) {
    clearTimeout(refreshTimer);
    clearTimeout(expiryTimer);
    const left = session.expiresAt - Date.now();
    if (!(left > 0)) {
      end('Your session has expired. Sign in again.');
      return;
    }
    expiryTimer = setTimeout(() => end('Your session has expired. Sign in again.'), Math.min(left, 2 ** 31 - 1));
    refreshTimer = setTimeout(refresh, Math.min(delay ?? left * REFRESH_AT, left, 2 ** 31 - 1));
  }

  async function refresh() {
    if (!session) return;
    const token = session.token;
    try {
      const s = await call('POST', '/v1/sessions/current/refresh', {token});
      if (!session || session.token !== token) return;
      session.token = s.token;
      session.expiresAt = Date.parse(s.expires_at);
      scheduleRefresh();
    } catch (e) {
      if (!session || session.token !== token) return;
      if (e instanceof ApiError && e.status === 401) {
        end('Your session has ended (logged out elsewhere, key changed or client removed). Sign in again.');
        return;
      }
      // Unreachable for now: try again, until the token runs out.
      scheduleRefresh(REFRESH_RETRY_MS);
    }
  }

  // resume picks up the session this browser's cookie names, if any, when
  // the page loads: the token itself was never stored.
  async function resume() {
    try {
      const s = await call('POST', '/v1/sessions/current/refresh');
      if (!session) await start(s);
    } catch {
      // No session to resume: the sign-in form stays.
    } finally {
      els.signin.setAttribute('aria-busy', 'false');
    }
  }

  els.logout.addEventListener('click', async () => {
    const token = session?.token;
    closeStream();
    if (token) {
      try {
        await call('DELETE', '/v1/sessions/current', {token});
      } catch {
        // signed out locally anyway; the token expires on its own
      }
    }
    end('');
  });

  /** end forgets the session and shows the sign-in form, with a reason when given. */
  function end(reason) {
    closeStream();
    clearTimeout(readyTimer);
    clearTimeout(expiryTimer);
    clearTimeout(refreshTimer);
    clearTimeout(retryTimer);
    session = null;
    setStream('idle');
    resetConversation();
    els.chat.hidden = true;
    els.signin.hidden = false;
    document.getElementById('view-talk').classList.remove('chat-mode');
    showError(els.loginError, reason);
    if (!document.getElementById('view-talk').hidden) els.loginClient.focus();
  }

  // ---- the event stream ----

  function connect() {
    closeStream();
    if (!session) return;
    const src = new EventSource(`/v1/clients/${encodeURIComponent(session.clientId)}/events`);
    es = src;
    if (streamState !== 'reconnecting') setStream('connecting');
    src.addEventListener('ready', () => {
      if (es !== src) return;
      retryMs = 1000;
      setStream('open');
      checkReady();
      if (recreated && [...byId.values()].some((it) => !it.final)) {
        note('The connection was lost for a while: answers given meanwhile may be missing.');
      }
      recreated = false;
    });
    src.addEventListener('speak', (e) => fresh(src, e) && onSpeak(parse(e)));
    src.addEventListener('done', (e) => fresh(src, e) && onDone(parse(e)));
    src.addEventListener('gap', (e) => {
      if (fresh(src, e)) note('Some events were lost while the connection was down: answers may be missing.');
    });
    src.onerror = () => {
      if (es !== src) return;
      if (src.readyState === EventSource.CLOSED) {
        onClosed();
      } else {
        // The browser reconnects by itself, sending Last-Event-ID.
        setStream('reconnecting');
        checkReady();
      }
    };
  }

  // fresh drops an event already handled (a replay after a resume can
  // overlap what arrived before the drop).
  function fresh(src, e) {
    if (es !== src) return false;
    if (!e.lastEventId) return true;
    if (seen.has(e.lastEventId)) return false;
    seen.add(e.lastEventId);
    seenOrder.push(e.lastEventId);
    if (seenOrder.length > SEEN_IDS) seen.delete(seenOrder.shift());
    return true;
  }

  function parse(e) {
    try {
      return JSON.parse(e.data);
    } catch {
      return {};
    }
  }

  // The stream was refused (not a network drop): find out whether the
  // session is over, else open a new stream after a backoff.
  async function onClosed() {
    closeStream();
    if (!session) return;
    setStream('reconnecting');
    const token = session.token;
    try {
      await call('GET', '/v1/clients/me', {token});
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && session && session.token === token) {
        end('Your session has ended (logged out elsewhere, key changed or client removed). Sign in again.');
        return;
      }
    }
    checkReady();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      recreated = true;
      connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }

  function closeStream() {
    clearTimeout(retryTimer);
    if (es) {
      es.onerror = null;
      es.close();
      es = null;
    }
  }

  // ---- link state ----

  function setStream(s) {
    streamState = s;
    renderLink();
  }

  function renderLink() {
    let state;
    let text;
    let title;
    if (streamState === 'reconnecting') {
      [state, text, title] = ['reconnecting', 'Reconnecting…', 'The link to the gateway dropped; the console is reconnecting and will catch up on what was said meanwhile.'];
    } else if (streamState !== 'open') {
      [state, text, title] = ['connecting', 'Connecting…', 'Opening the event stream.'];
    } else if (assistant === 'down') {
      [state, text, title] = ['unavailable', 'Assistant unavailable', 'The gateway is up but its link to the assistant is down.'];
    } else {
      [state, text, title] = ['connected', 'Connected', 'Answers arrive as the assistant speaks.'];
    }
    els.pill.dataset.state = state;
    els.pill.title = title;
    if (els.linkText.textContent !== text) els.linkText.textContent = text;
  }

  function pollReady() {
    clearTimeout(readyTimer);
    readyTimer = setTimeout(async () => {
      await checkReady();
      if (session) pollReady();
    }, READY_POLL_MS);
  }

  async function checkReady() {
    try {
      const r = await fetch('/readyz', {cache: 'no-store'});
      assistant = r.ok ? 'up' : r.status === 503 ? 'down' : assistant;
    } catch {
      // unreachable: the stream's state says so
    }
    renderLink();
  }

  // ---- the conversation ----

  els.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = els.input.value.trim();
    if (!text || !session) return;
    els.input.value = '';
    say(text);
  });

  for (const chip of document.querySelectorAll('#suggestions [data-say]')) {
    chip.addEventListener('click', () => {
      if (session) say(chip.dataset.say);
      els.input.focus();
    });
  }

  function resetConversation() {
    byId = new Map();
    early = new Map();
    seen = new Set();
    seenOrder = [];
    recreated = false;
    setAsking(null);
    for (const el of [...els.conversation.children]) if (el !== els.empty) el.remove();
    els.empty.hidden = false;
  }

  function say(text) {
    const item = addUser(text);
    if (asking) setAsking(null);
    deliver(item);
  }

  async function deliver(item, password) {
    setStatus(item, 'sending');
    const token = session?.token;
    if (!token) return;
    try {
      const body = {utterance: item.text};
      if (password) body.password = password;
      const r = await call('POST', '/v1/utterances', {token, body});
      accept(item, r.id);
      if (assistant === 'down') checkReady();
      return 'ok';
    } catch (e) {
      if (e instanceof ApiError && e.status === 403 && (e.code === 'password-required' || e.code === 'password-invalid')) {
        if (password !== undefined && e.code === 'password-invalid') return 'invalid';
        setStatus(item, 'password');
        const ok = await askPassword(item, e.intent);
        if (!ok) setStatus(item, 'refused', 'no password given');
        return 'ok';
      }
      failed(item, e);
      return 'ok';
    }
  }

  function failed(item, e) {
    if (!(e instanceof ApiError)) {
      setStatus(item, 'unsent', String(e), true);
      return;
    }
    if (e.status === 401) {
      end('Your session has ended. Sign in again.');
    } else if (e.status === 403) {
      setStatus(item, 'refused', e.detail || '');
    } else if (e.status === 503) {
      assistant = 'down';
      renderLink();
      setStatus(item, 'unsent', 'the assistant is unavailable', true);
    } else if (e.status === 429) {
      setStatus(item, 'refused', e.retryAfter ? `too many requests, try again in ${e.retryAfter} s` : 'too many requests', true);
    } else if (e.status === 0) {
      setStatus(item, 'unsent', 'the gateway cannot be reached', true);
    } else {
      setStatus(item, 'unsent', e.detail || e.message, e.status >= 500);
    }
  }

  // The password prompt stays open on a wrong password and retries.
  function askPassword(item, intent) {
    const d = els.pwDialog;
    els.pwText.textContent = '';
    els.pwText.append(intent ? h('code', {}, intent) : 'This request', ' is protected. Enter its password to send ',
      h('q', {}, item.text), '.');
    els.pwInput.value = '';
    showError(els.pwError, '');
    return new Promise((resolve) => {
      let sent = false;
      els.pwForm.onsubmit = async (ev) => {
        ev.preventDefault();
        const pw = els.pwInput.value;
        if (!pw) {
          showError(els.pwError, 'Enter the password.');
          els.pwInput.focus();
          return;
        }
        const outcome = await busy(els.pwSubmit, () => deliver(item, pw));
        if (outcome === 'invalid') {
          showError(els.pwError, 'That password is not right. Try again.');
          setStatus(item, 'password');
          els.pwInput.select();
          els.pwInput.focus();
          return;
        }
        sent = true;
        els.pwInput.value = '';
        d.close('ok');
      };
      for (const c of d.querySelectorAll('[data-close]')) c.onclick = () => d.close('cancel');
      d.addEventListener('close', () => {
        els.pwInput.value = '';
        els.input.focus();
        resolve(sent);
      }, {once: true});
      d.showModal();
      els.pwInput.focus();
    });
  }

  function accept(item, id) {
    item.id = id;
    item.el.dataset.utterance = id;
    byId.set(id, item);
    if (byId.size > 500) byId.delete(byId.keys().next().value);
    const e = early.get(id);
    early.delete(id);
    if (e?.spoke) {
      item.spoke = true;
      item.asked = e.asked;
      if (e.asked && asking && !asking.el) setAsking(item, askingTag);
    }
    if (e?.done) finish(item, e.done);
    else setStatus(item, item.asked ? 'question' : 'waiting');
  }

  function onSpeak(d) {
    if (typeof d.utterance !== 'string') return;
    // The stream is the client's, shared by its sessions: what is said to
    // another of them (another tab, a device) is shown marked as such, and
    // is never this session's answer or question.
    if (d.session_id && session && d.session_id !== session.sessionId) {
      addAssistant(d.utterance, false, true);
      return;
    }
    const item = d.utterance_id ? byId.get(d.utterance_id) : null;
    const tag = addAssistant(d.utterance, !!d.expect_response);
    if (!item && d.utterance_id) Object.assign(remember(d.utterance_id), {spoke: true, asked: !!d.expect_response});
    if (item) {
      item.spoke = true;
      item.asked = !!d.expect_response;
      if (!item.final) setStatus(item, d.expect_response ? 'question' : 'waiting');
    }
    if (d.expect_response) setAsking(item || {}, tag);
    else if (asking && (!item || asking === item)) setAsking(null);
  }

  function onDone(d) {
    if (!d.utterance_id) return;
    const item = byId.get(d.utterance_id);
    if (!item) {
      remember(d.utterance_id).done = d.status;
      return;
    }
    finish(item, d.status);
  }

  // remember keeps what the stream said about an utterance whose POST has
  // not answered yet (or that another tab or device of this client sent).
  function remember(id) {
    let e = early.get(id);
    if (!e) {
      e = {spoke: false, asked: false, done: ''};
      early.set(id, e);
      if (early.size > EARLY) early.delete(early.keys().next().value);
    }
    return e;
  }

  function finish(item, status) {
    item.final = true;
    if (status === 'error') checkReady();
    setStatus(item, STATUS[status] ? status : 'error');
    if (asking === item) setAsking(null);
  }

  function setAsking(item, tag = null) {
    if (askingTag && askingTag !== tag) {
      askingTag.textContent = 'Question';
      askingTag.classList.add('settled');
    }
    askingTag = tag;
    asking = item;
    els.followup.hidden = !item;
    els.input.placeholder = item ? 'Type your answer…' : 'Say something…';
    els.composer.classList.toggle('answering', !!item);
  }

  // ---- rendering ----

  function stick() {
    const c = els.conversation;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }

  // The conversation follows the newest message while the reader is at the
  // bottom: only the reader scrolling up stops it (content growing below,
  // a status line say, never does), and scrolling back down resumes it.
  let following = true;
  let lastTop = 0;
  els.conversation.addEventListener('scroll', () => {
    const c = els.conversation;
    if (c.scrollTop < lastTop - 2) following = stick();
    else if (stick()) following = true;
    lastTop = c.scrollTop;
  }, {passive: true});

  function follow() {
    if (following) els.conversation.scrollTop = els.conversation.scrollHeight;
  }

  function place(el) {
    els.empty.hidden = true;
    els.conversation.append(el);
    follow();
  }

  function addUser(text) {
    const status = h('p', {class: 'status'});
    const el = h('div', {class: 'msg user'},
      h('div', {class: 'bubble'}, text),
      h('div', {class: 'meta'}, h('time', {}, clock(new Date())), status));
    const item = {text, el, statusEl: status, status: '', id: '', final: false, spoke: false, asked: false};
    place(el);
    return item;
  }

  // addAssistant shows what the assistant said; for a question it returns
  // the tag that says the assistant is waiting.
  function addAssistant(text, question, other = false) {
    const tag = question ? h('span', {class: 'tag question'}, 'Waiting for your answer') : null;
    const el = h('div', {class: 'msg assistant' + (question ? ' asks' : '') + (other ? ' other' : '')},
      h('div', {class: 'avatar', 'aria-hidden': 'true'}, icon('bot')),
      h('div', {class: 'body'},
        h('div', {class: 'bubble'}, h('span', {class: 'visually-hidden'}, 'Assistant: '), text),
        h('div', {class: 'meta'}, h('time', {}, clock(new Date())),
          tag, other ? h('span', {class: 'tag other'}, 'To another session of this client') : null)));
    place(el);
    return tag;
  }

  function note(text) {
    place(h('div', {class: 'note', role: 'note'}, icon('alert'), h('span', {}, text)));
  }

  function setStatus(item, key, reason = '', retry = false) {
    const s = STATUS[key] || STATUS.error;
    item.status = key;
    item.el.dataset.status = key;
    const line = item.statusEl;
    line.className = 'status ' + s.tone;
    line.textContent = '';
    if (s.tone === 'pending') line.append(h('span', {class: 'spinner', 'aria-hidden': 'true'}));
    else if (s.tone === 'question') line.append(h('span', {class: 'pulse', 'aria-hidden': 'true'}));
    else if (s.icon) line.append(icon(s.icon));
    line.append(h('span', {}, reason ? `${s.label}: ${reason}` : s.label));
    if (retry) {
      line.append(h('button', {type: 'button', class: 'link', on: {click: () => deliver(item)}}, 'Try again'));
    }
    follow();
  }

  resume();

  return {
    /** focus puts the keyboard where the view starts. */
    focus() {
      if (session) els.input.focus();
      else els.loginClient.focus();
    },
  };
}
