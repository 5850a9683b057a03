// Administrators: the dead letters of the outbox (messages given up after their last try), re-sent from here.
import { api, hasRole } from '../lib/api.js';
import { $, h, mount, dt, flash, table, errorText } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { PER_PAGE, pager } from '../lib/lists.js';

export function deadLettersPage() {
  const user = requireLogin();
  if (!user) return;
  if (!hasRole(user, 'admin')) {
    flash('Chỉ quản trị viên xem được trang này.', 'error');
    return;
  }
  const box = $('#dead-letters');
  const button = $('#resend');
  let at = 1;
  const load = async () => {
    try {
      const page = await api(`notifications/dead?page=${at}&per_page=${PER_PAGE}`);
      $('#dead-count').textContent = `${page.total} tin`;
      mount(box, page.items.length
        ? table(['', 'Kênh', 'Người nhận', 'Loại', 'Lần thử', 'Thất bại lúc', 'Lỗi cuối'], page.items.map((n) => h('tr',
          h('td', h('input', { type: 'checkbox', value: String(n.id), 'aria-label': `Chọn tin ${n.id}` })),
          h('td', n.channel), h('td', n.recipient || '—'), h('td', n.kind), h('td.num', String(n.tries)),
          h('td', dt(n.dead_at)), h('td', n.last_error || ''))), { class: 'stack' })
        : h('p.muted', 'Không có tin nào thất bại.'),
      pager({ page: at, perPage: PER_PAGE, total: page.total, id: 'dead-pager', onGo: (n) => { at = n; load(); } }));
      button.disabled = !page.items.length;
    } catch (err) {
      flash(errorText(err), 'error');
    }
  };
  button.addEventListener('click', async () => {
    const ids = [...box.querySelectorAll('input[type=checkbox]:checked')].map((c) => Number(c.value));
    if (!ids.length) { flash('Chưa chọn tin nào.', 'error'); return; }
    try {
      const r = await api('notifications/resend', { method: 'POST', json: { ids } });
      flash(`Đã đưa ${r.resent} tin vào hàng đợi gửi lại.`, 'success');
      load();
    } catch (err) {
      flash(errorText(err), 'error');
    }
  });
  $('#refresh').addEventListener('click', load);
  load();
}
