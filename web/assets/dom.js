// Small DOM helpers: elements built from data with textContent only (never
// HTML from a string), icons, toasts, dialogs and dates.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Icons: 24×24 stroke paths.
const ICONS = {
  chat: ['M21 11.5a8.4 8.4 0 0 1-12.3 7.5L3 21l2-5.4A8.5 8.5 0 1 1 21 11.5z'],
  users: ['M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2', 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M22 21v-2a4 4 0 0 0-3-3.9', 'M16 3.1a4 4 0 0 1 0 7.8'],
  ban: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M4.9 4.9l14.2 14.2'],
  shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z', 'M9 12l2 2 4-4'],
  lock: ['M6 11h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1z', 'M8 11V7a4 4 0 1 1 8 0v4'],
  plus: ['M12 5v14', 'M5 12h14'],
  trash: ['M3 6h18', 'M8 6V4h8v2', 'M19 6l-1 14H6L5 6', 'M10 11v6', 'M14 11v6'],
  key: ['M15.5 7.5l3 3L22 7l-3-3', 'M21 2l-9.6 9.6', 'M7.5 21a5.5 5.5 0 1 0 0-11 5.5 5.5 0 0 0 0 11z'],
  pencil: ['M12 20h9', 'M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z'],
  copy: ['M10 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H10a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1z', 'M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'],
  check: ['M20 6L9 17l-5-5'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4z'],
  alert: ['M12 9v4', 'M12 17h.01', 'M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z'],
  refresh: ['M21 4v6h-6', 'M3 20v-6h6', 'M5.5 9a7.5 7.5 0 0 1 12.4-2.8L21 10', 'M3 14l3.1 3.8A7.5 7.5 0 0 0 18.5 15'],
  clock: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 6v6l4 2'],
  help: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3', 'M12 17h.01'],
  x: ['M18 6L6 18', 'M6 6l12 12'],
  bot: ['M12 8V4H8', 'M6 8h12a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2z', 'M2 14h2', 'M20 14h2', 'M15 13v2', 'M9 13v2'],
  book: ['M4 19.5A2.5 2.5 0 0 1 6.5 17H20', 'M6.5 2H20v20H6.5A2.5 2.5 0 0 1 4 19.5v-15A2.5 2.5 0 0 1 6.5 2z'],
  plug: ['M12 22v-5', 'M9 8V2', 'M15 8V2', 'M18 8v5a4 4 0 0 1-4 4h-4a4 4 0 0 1-4-4V8z'],
  user: ['M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2', 'M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z'],
};

/** icon returns an inline SVG icon (decorative: hidden from assistive tech). */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', ('icon ' + cls).trim());
  for (const d of ICONS[name] || ICONS.help) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

/** fillIcons replaces every <span data-icon="name"> under root with its icon. */
export function fillIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    if (el.firstChild) continue;
    el.classList.add('icon-slot');
    el.setAttribute('aria-hidden', 'true');
    el.append(icon(el.dataset.icon));
  }
}

/**
 * h builds an element: h('button', {class: 'btn', on: {click}, dataset: {id}}, 'text', child).
 * Strings become text nodes; null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** button builds a button with an icon and a label. */
export function button(label, {iconName, cls = 'btn', onClick, title, ariaLabel} = {}) {
  return h('button', {type: 'button', class: cls, title, 'aria-label': ariaLabel, on: onClick ? {click: onClick} : null},
    iconName ? icon(iconName) : null, h('span', {}, label));
}

/** showError shows text in a form's error line, or hides it when text is empty. */
export function showError(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

/** busy disables a submit button while work runs, keeping its label. */
export async function busy(btn, fn) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

const MAX_TOASTS = 2;

/** toast shows a short notice in the corner; kind is ok, error or info. */
export function toast(text, kind = 'ok') {
  const box = document.getElementById('toasts');
  const t = h('div', {class: 'toast ' + kind}, icon(kind === 'error' ? 'alert' : 'check'), h('span', {}, text));
  box.append(t);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => t.classList.add('leaving'), 3200);
  setTimeout(() => t.remove(), 3700);
}

/**
 * openDialog shows a modal <dialog> and wires its [data-close] buttons.
 * It resolves when the dialog closes.
 */
export function openDialog(dialog) {
  for (const c of dialog.querySelectorAll('[data-close]')) c.onclick = () => dialog.close('cancel');
  for (const e of dialog.querySelectorAll('.form-error')) showError(e, '');
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue), {once: true});
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/**
 * confirmAction asks to confirm a destructive action; run is called on
 * confirmation and the dialog stays open with the error when it throws.
 */
export function confirmAction({title, text, confirm, run}) {
  const dialog = document.getElementById('confirm-dialog');
  const form = document.getElementById('confirm-form');
  const submit = document.getElementById('confirm-submit');
  const err = document.getElementById('confirm-error');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  submit.textContent = confirm;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    showError(err, '');
    try {
      await busy(submit, run);
      dialog.close('ok');
    } catch (e) {
      showError(err, e.message || String(e));
    }
  };
  return openDialog(dialog);
}

/** copyText copies text to the clipboard; false when the browser refused. */
export async function copyText(text, input) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back to the selection below
  }
  if (input) {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
  return false;
}

const dateFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'});
const timeFmt = new Intl.DateTimeFormat(undefined, {hour: 'numeric', minute: '2-digit'});
const relFmt = new Intl.RelativeTimeFormat(undefined, {numeric: 'auto'});

/** when formats an RFC 3339 time as a local date and time. */
export function when(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '—' : dateFmt.format(t);
}

/** clock formats a Date as a local time of day. */
export function clock(d) {
  return timeFmt.format(d);
}

/** relative formats an RFC 3339 time relative to now ("in 2 hours"). */
export function relative(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = (t - Date.now()) / 1000;
  const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [unit, n] of units) {
    if (Math.abs(s) >= n) return relFmt.format(Math.round(s / n), unit);
  }
  return s >= 0 ? 'in less than a minute' : 'just now';
}

/** timeEl is a <time> element showing a relative time, with the exact one as its title. */
export function timeEl(iso, rel = false) {
  return h('time', {datetime: iso, title: when(iso)}, rel ? relative(iso) : when(iso));
}
