// The console's entry point: icons, the section router (#/talk, #/clients,
// #/blacklist, #/intents, #/buses) and the two sets of credentials, both kept in
// memory only: the client's session (Talk) and the admin token (the rest).

import {createAdmin} from './admin.js';
import {fillIcons} from './dom.js';
import {createTalk} from './talk.js';

const VIEWS = ['talk', 'clients', 'blacklist', 'intents', 'buses'];
const ADMIN_VIEWS = new Set(['clients', 'blacklist', 'intents', 'buses']);

fillIcons();

const talk = createTalk();
const admin = createAdmin({onUnlock: () => route(true), onLock: () => route(true)});

function current() {
  const name = location.hash.replace(/^#\/?/, '');
  return VIEWS.includes(name) ? name : 'talk';
}

let shown = '';

function route(focus = true) {
  const name = current();
  const showing = ADMIN_VIEWS.has(name) && !admin.unlocked ? 'unlock' : name;
  for (const a of document.querySelectorAll('.nav a[data-view]')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const v of document.querySelectorAll('main > .view')) v.hidden = v.dataset.view !== showing;
  const titles = {talk: 'Talk', clients: 'Clients', blacklist: 'IP blacklist', intents: 'Protected intents', buses: 'Assistants'};
  document.title = `${titles[name]} · Voice gateway`;
  if (showing === 'unlock') {
    if (focus) document.getElementById('admin-token').focus();
  } else if (ADMIN_VIEWS.has(showing)) {
    admin.load(showing);
    if (focus && shown !== showing) document.querySelector(`#view-${showing} [data-heading]`).focus();
  } else if (focus) {
    talk.focus();
  }
  shown = showing;
}

window.addEventListener('hashchange', () => route(true));
route(false);
