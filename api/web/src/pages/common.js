// What every page shares: who is logged in, the navigation by role, logging out.
import { currentUser, hasRole, logout } from '../lib/api.js';
import { $, $$, h, mount } from '../lib/ui.js';

export const ROLE_VI = {
  admin: 'Quản trị',
  analyst: 'Phân tích quy trình',
  supervisor: 'Giám sát',
  receiver: 'Tiếp nhận (một cửa)',
};

export function initLayout() {
  const user = currentUser();
  const box = $('#userbox');
  if (box) {
    if (user) {
      mount(box,
        h('span.user', { title: user.roles.join(', ') }, h('strong', user.full_name || user.username),
          user.agency ? h('span.muted', ` · ${user.agency}`) : null),
        ' ',
        h('button.btn.btn-link#logout', {
          type: 'button',
          onclick: () => { logout(); location.href = '/login'; },
        }, 'Đăng xuất'));
    } else {
      mount(box, h('a.btn.btn-small', { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, 'Đăng nhập'));
    }
  }
  // Staff links are shown to whoever may use them (the server checks every call anyway).
  for (const a of $$('[data-roles]')) {
    const roles = a.dataset.roles.split(/\s+/).filter(Boolean);
    a.hidden = !(user && (roles.includes('*') || hasRole(user, ...roles)));
  }
  const menu = $('#menu-toggle');
  if (menu) {
    menu.addEventListener('click', () => {
      const nav = $('#mainnav');
      const open = nav.classList.toggle('open');
      menu.setAttribute('aria-expanded', open ? 'true' : 'false');
    });
  }
  for (const a of $$('#mainnav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
  }
  for (const b of $$('[data-print]')) b.addEventListener('click', () => window.print());
  return user;
}

/** The logged-in user, or a redirect to the login page (returns null then). */
export function requireLogin() {
  const user = currentUser();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return null;
  }
  return user;
}
