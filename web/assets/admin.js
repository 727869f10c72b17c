// Running the gateway with the admin token: clients, the IP blacklist,
// protected intents, and the assistants' buses (read-only). The token lives in this module's memory only. A route
// this gateway does not serve shows as unavailable; nothing is made up.

import {ApiError, call, explain, routes, seg} from './api.js';
import {busy, button, confirmAction, copyText, h, icon, openDialog, showError, timeEl, toast} from './dom.js';

const ID_RE = /^[a-z0-9_-]{1,63}$/;

/** createAdmin wires the admin views; onLock is told when the token is forgotten. */
export function createAdmin({onUnlock, onLock} = {}) {
  const $ = (id) => document.getElementById(id);
  let token = null;
  let clients = [];

  // ---- the token ----

  $('unlock-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('admin-token');
    const err = $('unlock-error');
    const value = input.value.trim();
    if (!value) {
      showError(err, 'Enter the admin token.');
      input.focus();
      return;
    }
    showError(err, '');
    await busy($('unlock-submit'), async () => {
      try {
        await call('GET', '/v1/admin/clients', {token: value});
        token = value;
        input.value = '';
        onUnlock?.();
      } catch (e) {
        showError(err, e instanceof ApiError && (e.status === 401 || e.status === 403) && e.code !== 'blacklisted'
          ? 'That is not the admin token.' : explain(e));
        input.select();
      }
    });
  });

  for (const b of document.querySelectorAll('[data-lock]')) b.addEventListener('click', () => lock(''));

  function lock(reason) {
    token = null;
    clients = [];
    for (const id of ['clients-body', 'blacklist-body', 'intents-body', 'buses-body']) $(id).replaceChildren();
    showError($('unlock-error'), reason);
    onLock?.();
  }

  // admin runs an admin call; a refused token locks the console.
  async function admin(method, path, body) {
    try {
      return await call(method, path, {token, body});
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) lock('The admin token was refused. Enter it again.');
      throw e;
    }
  }

  // ---- shared view pieces ----

  // whileBusy marks a list as loading (aria-busy) while load runs.
  async function whileBusy(box, load) {
    box.setAttribute('aria-busy', 'true');
    try {
      await load();
    } finally {
      box.removeAttribute('aria-busy');
    }
  }

  function loading(box) {
    box.replaceChildren(h('div', {class: 'loading'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), h('span', {}, 'Loading…')));
  }

  function empty(box, {iconName, title, text, action}) {
    box.replaceChildren(h('div', {class: 'empty card'},
      h('div', {class: 'empty-icon'}, icon(iconName)), h('h2', {}, title), h('p', {class: 'muted'}, text), action || null));
  }

  function unavailable(box, what, path, retry) {
    empty(box, {
      iconName: 'plug',
      title: `${what} not available on this gateway`,
      text: `This gateway does not serve ${path} yet. Once it does, this page manages it.`,
      action: button('Check again', {iconName: 'refresh', cls: 'btn secondary', onClick: retry}),
    });
  }

  function failure(box, e, retry) {
    empty(box, {
      iconName: 'alert', title: 'Could not load this list', text: explain(e),
      action: button('Try again', {iconName: 'refresh', cls: 'btn secondary', onClick: retry}),
    });
  }

  function table(caption, heads, rows) {
    return h('div', {class: 'table-card card'},
      h('table', {class: 'table'},
        h('caption', {class: 'visually-hidden'}, caption),
        h('thead', {}, h('tr', {}, heads.map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', {}, rows)));
  }

  function cell(label, ...children) {
    return h('td', {'data-label': label}, ...children);
  }

  function splitNames(s) {
    return s.split(/[\s,]+/).map((x) => x.trim().toLowerCase()).filter(Boolean);
  }

  function formError(el, e) {
    if (e instanceof ApiError && e.status === 409) showError(el, e.detail || 'That id or alias is already taken.');
    else showError(el, explain(e));
  }

  // ---- clients ----

  function loadClients() {
    return whileBusy($('clients-body'), loadClientsNow);
  }

  async function loadClientsNow() {
    const box = $('clients-body');
    if (!box.firstChild) loading(box);
    try {
      clients = (await admin('GET', '/v1/admin/clients')) || [];
    } catch (e) {
      if (!token) return;
      if (e instanceof ApiError && e.routeMissing) unavailable(box, 'Clients are', '/v1/admin/clients', loadClients);
      else failure(box, e, loadClients);
      return;
    }
    if (clients.length === 0) {
      empty(box, {
        iconName: 'users', title: 'No clients yet',
        text: 'Create a client for each device or person that talks to the assistant; each gets its own access key.',
        action: button('New client', {iconName: 'plus', cls: 'btn primary', onClick: newClient}),
      });
      return;
    }
    const rows = clients.map((c) => h('tr', {dataset: {client: c.id}},
      cell('Client', h('div', {class: 'who'},
        h('span', {class: 'avatar-sm', 'aria-hidden': 'true'}, (c.name || c.id).slice(0, 1).toUpperCase()),
        h('div', {}, h('strong', {}, c.name || c.id), h('div', {class: 'mono muted small'}, c.id)))),
      cell('Aliases', (c.aliases || []).length
        ? h('div', {class: 'chips'}, c.aliases.map((a) => h('span', {class: 'chip static mono'}, a)))
        : h('span', {class: 'muted'}, 'none')),
      cell('Created', timeEl(c.created_at)),
      cell('Actions', h('div', {class: 'row-actions'},
        button('Rename', {iconName: 'pencil', cls: 'btn small ghost', ariaLabel: `Rename ${c.id}`, onClick: () => rename(c)}),
        button('New key', {iconName: 'key', cls: 'btn small ghost', ariaLabel: `Give ${c.id} a new access key`, onClick: () => rotate(c)}),
        button('Delete', {iconName: 'trash', cls: 'btn small ghost danger-text', ariaLabel: `Delete ${c.id}`, onClick: () => remove(c)}))),
    ));
    box.replaceChildren(
      h('p', {class: 'count muted'}, clients.length === 1 ? '1 client' : `${clients.length} clients`),
      table('Clients', ['Client', 'Aliases', 'Created', h('span', {class: 'visually-hidden'}, 'Actions')], rows));
  }

  $('client-new').addEventListener('click', () => newClient());

  function newClient() {
    const dialog = $('client-dialog');
    const form = $('client-form');
    const err = $('client-error');
    form.reset();
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const id = $('client-id').value.trim();
      if (!ID_RE.test(id)) {
        showError(err, 'The id must be 1 to 63 lowercase letters, digits, - or _.');
        $('client-id').focus();
        return;
      }
      const aliases = splitNames($('client-aliases').value);
      const bad = aliases.find((a) => !ID_RE.test(a));
      if (bad) {
        showError(err, `“${bad}” is not a valid alias: use lowercase letters, digits, - or _.`);
        $('client-aliases').focus();
        return;
      }
      showError(err, '');
      await busy($('client-submit'), async () => {
        try {
          const c = await admin('POST', '/v1/admin/clients', {id, name: $('client-name').value.trim() || id, aliases});
          dialog.close('ok');
          toast(`Client ${c.id} created`);
          await showKey(`Client ${c.id} created`, c);
          loadClients();
        } catch (e) {
          formError(err, e);
        }
      });
    };
    openDialog(dialog);
  }

  // showKey shows an access key this once, with a copy button.
  function showKey(title, c) {
    const input = $('key-value');
    const label = $('key-copy-text');
    $('key-title').textContent = title;
    $('key-client').textContent = c.id;
    input.value = c.access_key;
    label.textContent = 'Copy';
    $('key-copy').onclick = async () => {
      const ok = await copyText(input.value, input);
      label.textContent = ok ? 'Copied' : 'Select and copy';
      if (!ok) input.select();
    };
    const done = openDialog($('key-dialog')).then(() => {
      input.value = '';
    });
    input.focus();
    input.select();
    return done;
  }

  async function rename(c) {
    const dialog = $('rename-dialog');
    const form = $('rename-form');
    const err = $('rename-error');
    const note = $('rename-unavailable');
    const available = (await routes()).has('PATCH /v1/admin/clients/{id}');
    $('rename-title').textContent = `Rename ${c.id}`;
    $('rename-name').value = c.name || '';
    $('rename-aliases').value = (c.aliases || []).join(', ');
    note.hidden = available;
    note.textContent = available ? '' : 'This gateway cannot rename clients yet (it has no PATCH /v1/admin/clients/{id} route). '
      + 'A client can still change its own name and aliases through PUT /v1/clients/me/names.';
    for (const el of [$('rename-name'), $('rename-aliases'), $('rename-submit')]) el.disabled = !available;
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      if (!available) return;
      const aliases = splitNames($('rename-aliases').value);
      const bad = aliases.find((a) => !ID_RE.test(a));
      if (bad) {
        showError(err, `“${bad}” is not a valid alias.`);
        return;
      }
      await busy($('rename-submit'), async () => {
        try {
          await admin('PATCH', `/v1/admin/clients/${seg(c.id)}`, {name: $('rename-name').value.trim(), aliases});
          dialog.close('ok');
          toast(`Client ${c.id} renamed`);
          loadClients();
        } catch (e) {
          formError(err, e);
        }
      });
    };
    openDialog(dialog);
  }

  function rotate(c) {
    let fresh = null;
    confirmAction({
      title: `New access key for ${c.id}?`,
      text: 'Its current key stops working at once and its open sessions end. You will see the new key once.',
      confirm: 'Make a new key',
      run: async () => {
        fresh = await admin('POST', `/v1/admin/clients/${seg(c.id)}/key`);
      },
    }).then(() => {
      if (fresh) showKey(`New key for ${fresh.id}`, fresh);
    });
  }

  function remove(c) {
    confirmAction({
      title: `Delete ${c.id}?`,
      text: 'The client can no longer sign in; its sessions and streams end at once. This cannot be undone.',
      confirm: 'Delete client',
      run: async () => {
        await admin('DELETE', `/v1/admin/clients/${seg(c.id)}`);
        toast(`Client ${c.id} deleted`);
        loadClients();
      },
    });
  }

  // ---- the IP blacklist ----

  const SOURCES = {
    config: ['Configuration', 'From GATEWAY_IP_BLACKLIST'],
    admin: ['Admin', 'Added by an administrator'],
    auto: ['Automatic', 'Banned after repeated failed sign-ins'],
  };

  function loadBlacklist() {
    return whileBusy($('blacklist-body'), loadBlacklistNow);
  }

  async function loadBlacklistNow() {
    const box = $('blacklist-body');
    if (!box.firstChild) loading(box);
    let list;
    try {
      list = (await admin('GET', '/v1/admin/blacklist')) || [];
      $('blacklist-new').hidden = false;
    } catch (e) {
      if (!token) return;
      if (e instanceof ApiError && e.routeMissing) {
        $('blacklist-new').hidden = true;
        unavailable(box, 'The IP blacklist is', '/v1/admin/blacklist', loadBlacklist);
      } else {
        failure(box, e, loadBlacklist);
      }
      return;
    }
    if (list.length === 0) {
      empty(box, {
        iconName: 'ban', title: 'No blocked addresses',
        text: 'Addresses blocked here, by configuration or automatically after repeated failed sign-ins appear in this list.',
        action: button('Block an address', {iconName: 'plus', cls: 'btn primary', onClick: newEntry}),
      });
      return;
    }
    const rows = list.map((e) => {
      const [name, hint] = SOURCES[e.source] || [e.source || 'Unknown', ''];
      return h('tr', {dataset: {cidr: e.cidr}},
        cell('Address', h('span', {class: 'mono strong'}, e.cidr)),
        cell('Source', h('span', {class: `badge src-${e.source || 'unknown'}`, title: hint}, name)),
        cell('Reason', e.reason ? e.reason : h('span', {class: 'muted'}, 'none given')),
        cell('Added', timeEl(e.created_at)),
        cell('Expires', e.expires_at ? timeEl(e.expires_at, true) : h('span', {class: 'muted'}, 'never')),
        cell('Actions', h('div', {class: 'row-actions'},
          button('Remove', {iconName: 'trash', cls: 'btn small ghost danger-text', ariaLabel: `Remove ${e.cidr}`, onClick: () => unblock(e)}))));
    });
    box.replaceChildren(
      h('p', {class: 'count muted'}, list.length === 1 ? '1 entry' : `${list.length} entries`),
      table('Blocked addresses', ['Address', 'Source', 'Reason', 'Added', 'Expires', h('span', {class: 'visually-hidden'}, 'Actions')], rows));
  }

  $('blacklist-new').addEventListener('click', () => newEntry());

  function newEntry() {
    const dialog = $('blacklist-dialog');
    const form = $('blacklist-form');
    const err = $('bl-error');
    form.reset();
    // An entry that covers the admin's own address is refused until
    // confirmed: the first answer says so, the button then blocks anyway.
    let own = false;
    $('bl-submit').textContent = 'Block';
    $('bl-cidr').oninput = () => {
      own = false;
      $('bl-submit').textContent = 'Block';
    };
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const cidr = $('bl-cidr').value.trim();
      if (!cidr) {
        showError(err, 'Enter an address or a range.');
        $('bl-cidr').focus();
        return;
      }
      const body = {cidr, reason: $('bl-reason').value.trim()};
      if ($('bl-ttl').value) body.ttl = $('bl-ttl').value;
      if (own) body.confirm = true;
      await busy($('bl-submit'), async () => {
        try {
          await admin('POST', '/v1/admin/blacklist', body);
          dialog.close('ok');
          toast(`${cidr} blocked`);
          loadBlacklist();
        } catch (e) {
          if (e instanceof ApiError && e.status === 409 && e.code === 'conflict' && !own) {
            own = true;
            showError(err, `${e.detail[0].toUpperCase()}${e.detail.slice(1)}.`);
            return;
          }
          formError(err, e);
        }
      });
      if (own && !body.confirm) $('bl-submit').textContent = 'Block it anyway';
    };
    openDialog(dialog);
  }

  function unblock(e) {
    confirmAction({
      title: `Unblock ${e.cidr}?`,
      text: e.source === 'config'
        ? 'This entry comes from the configuration: it comes back when the gateway restarts unless GATEWAY_IP_BLACKLIST changes.'
        : 'Requests from this address are accepted again at once.',
      confirm: 'Unblock',
      run: async () => {
        await admin('DELETE', `/v1/admin/blacklist/${seg(e.cidr)}`);
        toast(`${e.cidr} unblocked`);
        loadBlacklist();
      },
    });
  }

  // ---- protected intents ----

  function loadIntents() {
    return whileBusy($('intents-body'), loadIntentsNow);
  }

  async function loadIntentsNow() {
    const box = $('intents-body');
    if (!box.firstChild) loading(box);
    let list;
    try {
      list = (await admin('GET', '/v1/admin/protected-intents')) || [];
      $('intent-new').hidden = false;
    } catch (e) {
      if (!token) return;
      if (e instanceof ApiError && e.routeMissing) {
        $('intent-new').hidden = true;
        unavailable(box, 'Protected intents are', '/v1/admin/protected-intents', loadIntents);
      } else {
        failure(box, e, loadIntents);
      }
      return;
    }
    if (list.length === 0) {
      empty(box, {
        iconName: 'shield', title: 'No protected intents',
        text: 'Protect an intent (or a whole skill) with a password: the assistant then runs it only for a speaker who gives that password.',
        action: button('Protect an intent', {iconName: 'plus', cls: 'btn primary', onClick: newIntent}),
      });
      return;
    }
    const rows = list.map((p) => h('tr', {dataset: {pattern: p.pattern}},
      cell('Pattern', h('span', {class: 'mono strong'}, p.pattern)),
      cell('Since', timeEl(p.created_at)),
      cell('Actions', h('div', {class: 'row-actions'},
        button('Change password', {iconName: 'key', cls: 'btn small ghost', ariaLabel: `Change the password of ${p.pattern}`, onClick: () => newIntent(p.pattern)}),
        button('Remove', {iconName: 'trash', cls: 'btn small ghost danger-text', ariaLabel: `Stop protecting ${p.pattern}`, onClick: () => unprotect(p)}))),
    ));
    box.replaceChildren(
      h('p', {class: 'count muted'}, list.length === 1 ? '1 pattern' : `${list.length} patterns`),
      table('Protected intents', ['Pattern', 'Protected since', h('span', {class: 'visually-hidden'}, 'Actions')], rows));
  }

  $('intent-new').addEventListener('click', () => newIntent());

  function newIntent(pattern) {
    const dialog = $('intent-dialog');
    const form = $('intent-form');
    const err = $('intent-error');
    form.reset();
    $('intent-dialog-title').textContent = pattern ? 'Change the password' : 'Protect an intent';
    $('intent-pattern').value = pattern || '';
    $('intent-pattern').readOnly = !!pattern;
    $('intent-submit').textContent = pattern ? 'Save password' : 'Protect';
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const pat = $('intent-pattern').value.trim();
      const pw = $('intent-password').value;
      if (!pat) {
        showError(err, 'Enter an intent pattern.');
        $('intent-pattern').focus();
        return;
      }
      if (!pw) {
        showError(err, 'Enter a password.');
        $('intent-password').focus();
        return;
      }
      if (pw !== $('intent-password2').value) {
        showError(err, 'The two passwords differ.');
        $('intent-password2').focus();
        return;
      }
      await busy($('intent-submit'), async () => {
        try {
          await admin('PUT', `/v1/admin/protected-intents/${seg(pat)}`, {password: pw});
          dialog.close('ok');
          form.reset();
          toast(pattern ? `Password of ${pat} changed` : `${pat} is protected`);
          loadIntents();
        } catch (e) {
          formError(err, e);
        }
      });
    };
    openDialog(dialog).then(() => form.reset());
    if (pattern) $('intent-password').focus();
  }

  function unprotect(p) {
    confirmAction({
      title: `Stop protecting ${p.pattern}?`,
      text: 'Anyone signed in can then run the intents it matches, without a password.',
      confirm: 'Remove protection',
      run: async () => {
        await admin('DELETE', `/v1/admin/protected-intents/${seg(p.pattern)}`);
        toast(`${p.pattern} is no longer protected`);
        loadIntents();
      },
    });
  }

  // ---- buses (read-only) ----

  function loadBuses() {
    return whileBusy($('buses-body'), loadBusesNow);
  }

  async function loadBusesNow() {
    const box = $('buses-body');
    if (!box.firstChild) loading(box);
    let list;
    try {
      list = (await admin('GET', '/v1/admin/buses')) || [];
    } catch (e) {
      if (!token) return;
      if (e instanceof ApiError && e.routeMissing) unavailable(box, 'The list of buses is', '/v1/admin/buses', loadBuses);
      else failure(box, e, loadBuses);
      return;
    }
    const up = list.filter((b) => b.state === 'up').length;
    const rows = list.map((b) => h('tr', {dataset: {bus: b.bus}},
      cell('Bus', h('span', {class: 'strong'}, b.bus)),
      cell('URL', h('span', {class: 'mono'}, b.url)),
      cell('State', h('span', {class: `badge bus-${b.state}`}, b.state === 'up' ? 'Up' : 'Down')),
      cell('Since', b.since ? timeEl(b.since) : h('span', {class: 'muted'}, 'not yet')),
      cell('In flight', String(b.in_flight)),
      cell('Reconnects', String(b.reconnects)),
      cell('Last failure', b.last_error ? b.last_error : h('span', {class: 'muted'}, 'none'))));
    box.replaceChildren(
      h('p', {class: 'count muted'}, `${up} of ${list.length} up`),
      table('Buses', ['Bus', 'URL', 'State', 'Since', 'In flight', 'Reconnects', 'Last failure'], rows));
  }

  $('buses-refresh').addEventListener('click', () => loadBuses());

  return {
    get unlocked() {
      return token !== null;
    },
    load(view) {
      if (view === 'clients') return loadClients();
      if (view === 'blacklist') return loadBlacklist();
      if (view === 'intents') return loadIntents();
      if (view === 'buses') return loadBuses();
      return undefined;
    },
  };
}
