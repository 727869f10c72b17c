// The gateway's HTTP API, same origin. Every error body is
// application/problem+json (RFC 9457); ApiError carries its code (the last
// segment of `type`), detail and, for protected intents, the intent.

/** ApiError is a refused or failed call. status 0 means the gateway could not be reached. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || (status ? `The gateway answered ${status}.` : 'The gateway cannot be reached.'));
    this.status = status;
    this.code = typeof p.type === 'string' ? p.type.slice(p.type.lastIndexOf('/') + 1) : '';
    this.detail = p.detail || '';
    this.intent = typeof p.intent === 'string' ? p.intent : '';
    this.retryAfter = Number.parseInt(retryAfter || '', 10) || 0;
  }

  /** routeMissing: this gateway does not serve the route (yet). */
  get routeMissing() {
    return this.status === 405 || (this.status === 404 && /no such route/i.test(this.detail));
  }
}

/**
 * call sends a JSON request and returns the decoded answer (null for 204).
 * token, when given, goes in the Authorization header, never in the URL.
 */
export async function call(method, path, {token, body, signal} = {}) {
  const headers = {Accept: 'application/json, application/problem+json'};
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store', signal};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    const text = await res.text();
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
  return data;
}

/** seg escapes one path segment (a CIDR's "/" included). */
export function seg(s) {
  return encodeURIComponent(s);
}

let routesPromise = null;

/**
 * routes reads the gateway's own /openapi.yaml once and returns the set of
 * "METHOD /path" it documents, so that the console offers only what this
 * gateway serves.
 */
export function routes() {
  if (!routesPromise) {
    routesPromise = fetch('/openapi.yaml', {cache: 'no-store'})
      .then((r) => (r.ok ? r.text() : ''))
      .then((text) => {
        const set = new Set();
        let path = '';
        for (const line of text.split('\n')) {
          const p = /^ {2}(\/\S*):\s*$/.exec(line);
          if (p) {
            path = p[1];
            continue;
          }
          if (/^\S/.test(line)) path = '';
          const m = /^ {4}(get|put|post|patch|delete):/.exec(line);
          if (m && path) set.add(m[1].toUpperCase() + ' ' + path);
        }
        return set;
      })
      .catch(() => new Set());
  }
  return routesPromise;
}

/** explain turns an ApiError into a sentence for a person. */
export function explain(e) {
  if (!(e instanceof ApiError)) return String((e && e.message) || e);
  switch (e.status) {
    case 0:
      return 'The gateway cannot be reached. Check the connection and try again.';
    case 401:
      return 'Not signed in, or the session has ended.';
    case 403:
      // The gateway says until when, or that only its admin can lift it.
      if (e.code === 'blacklisted') return e.detail ? `${e.detail[0].toUpperCase()}${e.detail.slice(1)}.` : 'This address is blocked by the gateway.';
      return e.detail || 'Refused.';
    case 429:
      return e.retryAfter ? `Too many requests. Try again in ${e.retryAfter} s.` : 'Too many requests. Try again shortly.';
    case 503:
      return 'The assistant is unavailable right now. Try again shortly.';
    default:
      return e.detail || e.message;
  }
}
