// Talking to /api/v1: the bearer token kept in sessionStorage, JSON and problem+json.

const TOKEN_KEY = 'motcua.token';
const USER_KEY = 'motcua.user';
export const API = '/api/v1';

let serverOffset = 0;

/** The server's clock (from the Date header of the last answer): "how late" is measured on it, not on the
 *  user's computer clock. */
export function serverNow() {
  return Date.now() + serverOffset;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function b64urlDecode(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of the current token (not verified here: the server does that on every call). */
export function claims(tok = token()) {
  if (!tok) return null;
  try {
    return JSON.parse(b64urlDecode(tok.split('.')[1] || ''));
  } catch (e) {
    return null;
  }
}

/** Who is logged in: {username, roles: [], agency, full_name} or null when the token is missing or expired. */
export function currentUser() {
  const tok = token();
  if (!tok) return null;
  const c = claims(tok) || {};
  if (c.exp && c.exp * 1000 < Date.now()) {
    logout();
    return null;
  }
  let saved = {};
  try {
    saved = JSON.parse(sessionStorage.getItem(USER_KEY) || '{}');
  } catch (e) { /* ignore */ }
  const roles = c.roles || saved.roles || [];
  return {
    username: c.sub || c.username || saved.username || '',
    roles: Array.isArray(roles) ? roles : String(roles).split(/[ ,]+/).filter(Boolean),
    agency: c.agency || saved.agency || '',
    full_name: c.name || c.full_name || saved.full_name || '',
  };
}

export function hasRole(user, ...roles) {
  if (!user) return false;
  if (user.roles.includes('admin')) return true;
  return roles.some((r) => user.roles.includes(r));
}

export function saveLogin(tokenValue, user) {
  sessionStorage.setItem(TOKEN_KEY, tokenValue);
  sessionStorage.setItem(USER_KEY, JSON.stringify(user || {}));
}

export function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** An error answer of the API, with the problem+json body kept. */
export class ApiError extends Error {
  constructor(status, body) {
    super(problemMessage(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }

  /** Per-field messages of a 422: {"field.path": "message"}. */
  get fields() {
    const b = this.body || {};
    const cands = [b.fields, b.errors, b.details && b.details.fields, b.invalid_params];
    for (const c of cands) {
      if (c && typeof c === 'object' && !Array.isArray(c)) return flattenFields(c);
      if (Array.isArray(c)) {
        const out = {};
        for (const item of c) {
          if (item && (item.name || item.field)) out[item.name || item.field] = item.reason || item.message || '';
        }
        if (Object.keys(out).length) return out;
      }
    }
    return {};
  }

  /** Problems naming BPMN elements (deploy/validate): [{element, message_vi, message_en}]. */
  get problems() {
    return problemsOf(this.body);
  }
}

function flattenFields(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flattenFields(v, key, out);
    else out[key] = Array.isArray(v) ? v.join('; ') : String(v);
  }
  return out;
}

export function problemsOf(body) {
  if (!body || typeof body !== 'object') return [];
  const cands = [body.problems, body.errors, body.details, body.details && body.details.problems];
  for (const c of cands) {
    if (Array.isArray(c) && c.length && typeof c[0] === 'object') return c;
  }
  return [];
}

export function problemMessage(body) {
  if (!body) return '';
  if (typeof body === 'string') return body;
  return body.message_vi || body.detail || body.title || body.message || '';
}

/**
 * fetch() with the bearer token; JSON in, JSON out. `opts.raw` returns the Response (files);
 * `opts.form` sends a FormData; a 401 sends the user to the login page unless `opts.noRedirect`.
 */
export async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
  const tok = token();
  if (tok && !opts.anonymous) headers.Authorization = `Bearer ${tok}`;
  let body;
  if (opts.form) {
    body = opts.form;
  } else if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(path.startsWith('/') ? path : `${API}/${path}`, {
    method: opts.method || (body ? 'POST' : 'GET'),
    headers,
    body,
  });
  const date = Date.parse(res.headers.get('Date') || '');
  if (!Number.isNaN(date)) serverOffset = date - Date.now();
  if (res.status === 401 && !opts.noRedirect) {
    logout();
    const next = encodeURIComponent(location.pathname + location.search);
    location.href = `/login?next=${next}`;
    throw new ApiError(401, { detail: 'Phiên đăng nhập đã hết hạn' });
  }
  if (opts.raw && res.ok) return res;
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    data = await res.json();
  } else {
    data = await res.text();
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** The items of a list answer, whatever the envelope (items, results, data, or a bare array). */
export function itemsOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const k of [...keys, 'items', 'results', 'data', 'tasks', 'dossiers', 'procedures', 'rows']) {
    if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

/** Download an authenticated file (CSV, XLSX) as if it were a link. */
export async function download(path, fallbackName) {
  const res = await api(path, { raw: true, headers: { Accept: '*/*' } });
  const blob = await res.blob();
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}
