// Log in: POST /api/v1/auth/token, keep the JWT in sessionStorage, go where the user wanted to go.
import { api, saveLogin, claims, hasRole } from '../lib/api.js';
import { $, flash, qs } from '../lib/ui.js';

function home(user) {
  if (hasRole(user, 'supervisor') && !user.roles.includes('admin')) return '/supervisor';
  if (hasRole(user, 'analyst') && !user.roles.includes('admin')) return '/procedures';
  return '/inbox';
}

// Where to go after login: only a path of this very site. The candidate is resolved the way the browser
// would resolve it (which drops tabs and newlines, and reads //host and /\host as another site), and kept
// only if it stays on this origin; anything else (https://…, //evil, /%09/evil, javascript:) goes home.
export function sameOriginPath(next) {
  if (!next || next[0] !== '/' || /[\u0000-\u001f\u007f\\]/.test(next)) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin) return null;
  return url.pathname + url.search + url.hash;
}

export function loginPage() {
  const form = $('#login-form');
  $('#username').focus();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const res = await api('auth/token', { json: { username, password }, noRedirect: true, anonymous: true });
      const c = claims(res.access_token) || {};
      const user = {
        username: c.sub || username,
        roles: c.roles || res.roles || (res.user && res.user.roles) || [],
        agency: c.agency || res.agency || (res.user && res.user.agency) || '',
        full_name: c.name || res.full_name || (res.user && res.user.full_name) || '',
      };
      saveLogin(res.access_token, user);
      location.href = sameOriginPath(qs('next')) || home(user);
    } catch (err) {
      flash(err.status === 401 ? 'Sai tên đăng nhập hoặc mật khẩu.' : `Không đăng nhập được: ${err.message}`, 'error');
      btn.disabled = false;
    }
  });
}
