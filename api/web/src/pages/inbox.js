// The officer's inbox: ready tasks held by me, or open to my roles; due times, overdue highlighted; searched
// and paged on the server (one page of PER_PAGE rows at a time).
import { api, itemsOf } from '../lib/api.js';
import { $, $$, h, mount, dueCell, flash, table, qs } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { PER_PAGE, pager } from '../lib/lists.js';

export function inboxPage() {
  const user = requireLogin();
  if (!user) return;
  const out = $('#inbox');
  let tab = qs('tab') || 'role';
  let onlyOverdue = qs('overdue') === '1';
  const overdueBox = $('#only-overdue');
  overdueBox.checked = onlyOverdue;
  const roleSelect = $('#role-filter');
  const ownRoles = user.roles.filter((r) => !['admin', 'supervisor', 'analyst'].includes(r));
  for (const r of ownRoles) roleSelect.appendChild(h('option', { value: r }, r));
  roleSelect.value = qs('role') || '';
  roleSelect.closest('.field-inline').hidden = ownRoles.length < 2;
  const search = $('#inbox-q');
  search.value = qs('q') || '';
  let page = Math.max(1, Number(qs('page')) || 1);

  function setTab(t) {
    tab = t;
    for (const b of $$('[data-tab]')) {
      const on = b.dataset.tab === t;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    const params = new URLSearchParams();
    if (t !== 'role') params.set('tab', t);
    if (onlyOverdue) params.set('overdue', '1');
    if (roleSelect.value && t === 'role') params.set('role', roleSelect.value);
    if (search.value.trim()) params.set('q', search.value.trim());
    if (page > 1) params.set('page', String(page));
    roleSelect.disabled = t !== 'role';
    history.replaceState(null, '', `${location.pathname}${params.toString() ? '?' + params : ''}`);
    load();
  }

  async function load() {
    mount(out, h('p.muted', 'Đang tải…'));
    const params = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    if (tab === 'mine') params.set('mine', 'true');
    if (search.value.trim()) params.set('q', search.value.trim());
    if (onlyOverdue) params.set('overdue', 'true');
    if (tab === 'role' && roleSelect.value) params.set('role', roleSelect.value);
    try {
      const data = await api(`tasks?${params}`);
      const tasks = itemsOf(data, 'tasks');
      const total = data.total ?? tasks.length;
      const overdue = tasks.filter((t) => t.overdue).length;
      $('#inbox-count').textContent = `${total.toLocaleString('vi-VN')} việc${overdue && !onlyOverdue ? ` (trang này: ${overdue} quá hạn)` : ''}${onlyOverdue ? ' quá hạn' : ''}`;
      const rows = tasks.map((t) => h(`tr${t.overdue ? '.row-overdue' : ''}`, { dataset: { task: t.id } },
        h('td', h('a.task-link', { href: `/tasks/${encodeURIComponent(t.id)}` }, t.name || t.title || t.spec_name)),
        h('td', h('a', { href: `/dossiers/${encodeURIComponent(t.dossier_code)}` }, t.dossier_code),
          t.applicant_name ? h('div.muted', t.applicant_name) : null),
        h('td', t.procedure_name || t.procedure_code),
        h('td', (t.roles || []).join(', ') || t.assignee || '—'),
        h('td', t.claimed_by ? (t.claimed_by === user.username ? h('strong', 'Tôi') : t.claimed_by) : h('span.muted', 'Chưa ai nhận')),
        h('td', dueCell(t.due_at, t.overdue))));
      mount(out, table(['Công việc', 'Hồ sơ', 'Thủ tục', 'Vai trò', 'Người giữ', 'Hạn xử lý'], rows,
        { class: 'inbox-table.stack', empty: tab === 'mine' ? 'Bạn chưa nhận việc nào.' : 'Không có việc nào đang chờ.' }),
      pager({ page, perPage: PER_PAGE, total, id: 'inbox-pager', onGo: (n) => { page = n; setTab(tab); } }));
    } catch (err) {
      mount(out);
      flash(`Không tải được hộp việc: ${err.message}`, 'error');
    }
  }

  for (const b of $$('[data-tab]')) b.addEventListener('click', () => { page = 1; setTab(b.dataset.tab); });
  overdueBox.addEventListener('change', () => { onlyOverdue = overdueBox.checked; page = 1; setTab(tab); });
  roleSelect.addEventListener('change', () => { page = 1; setTab(tab); });
  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { page = 1; setTab(tab); }, 300);
  });
  $('#refresh').addEventListener('click', load);
  setTab(tab);
}
