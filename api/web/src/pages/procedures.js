// Analysts: the procedure catalogue, searched, filtered and paged on the server (a province runs about a
// thousand procedures), with links to the read-only view and the modeler.
import { api, itemsOf, hasRole } from '../lib/api.js';
import { $, h, mount, flash, table, money, LEVEL_VI, deadlineVi } from '../lib/ui.js';
import { PER_PAGE, pager } from '../lib/lists.js';
import { requireLogin } from './common.js';

export function proceduresPage() {
  const user = requireLogin();
  if (!user) return;
  const canModel = hasRole(user, 'analyst');
  $('#new-procedure').hidden = !canModel;
  const params = new URLSearchParams(location.search);
  $('#proc-filter').value = params.get('q') || '';
  $('#proc-agency').value = params.get('agency') || '';
  $('#proc-level').value = params.get('level') || '';
  let page = Math.max(1, Number(params.get('page')) || 1);

  async function load() {
    const q = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    const text = $('#proc-filter').value.trim();
    const agency = $('#proc-agency').value.trim();
    if (text) q.set('q', text);
    if (agency) q.set('agency', agency);
    if ($('#proc-level').value) q.set('level', $('#proc-level').value);
    const shown = new URLSearchParams(q);
    shown.delete('per_page');
    if (page === 1) shown.delete('page');
    history.replaceState(null, '', `${location.pathname}${shown.toString() ? `?${shown}` : ''}`);
    try {
      const data = await api(`procedures?${q}`);
      const procs = itemsOf(data, 'procedures');
      const total = data.total ?? procs.length;
      $('#proc-count').textContent = `${total.toLocaleString('vi-VN')} thủ tục`;
      mount($('#procedures'), table(['Mã', 'Tên thủ tục', 'Phiên bản', 'Cơ quan', 'Thời hạn', 'Mức độ', 'Lệ phí', ''],
        procs.map((p) => h('tr', { dataset: { code: p.code } },
          h('td', h('code', p.code)),
          h('td', h('a', { href: `/procedures/${encodeURIComponent(p.code)}` }, p.name)),
          h('td.num', `v${p.version ?? p.current_version ?? '?'}`),
          h('td', p.agency || 'Toàn tỉnh'),
          h('td', deadlineVi(p.deadline)),
          h('td', LEVEL_VI[p.level] || p.level || '—'),
          h('td', money(p.fee)),
          h('td', canModel ? h('a.btn.btn-small', { href: `/modeler/${encodeURIComponent(p.code)}` }, 'Sửa sơ đồ') : null))),
        { empty: text || agency || $('#proc-level').value ? 'Không có thủ tục nào khớp.' : 'Chưa có thủ tục nào.' }),
      pager({ page, perPage: PER_PAGE, total, id: 'proc-pager', onGo: (n) => { page = n; load(); } }));
    } catch (err) {
      flash(`Không tải được danh mục: ${err.message}`, 'error');
    }
  }

  $('#proc-filters').addEventListener('submit', (ev) => { ev.preventDefault(); page = 1; load(); });
  $('#proc-level').addEventListener('change', () => { page = 1; load(); });
  load();
}
