// Analysts: the procedure catalogue, with links to the read-only view and the modeler.
import { api, itemsOf, hasRole } from '../lib/api.js';
import { $, h, mount, flash, table, money, LEVEL_VI, deadlineVi } from '../lib/ui.js';
import { requireLogin } from './common.js';

export function proceduresPage() {
  const user = requireLogin();
  if (!user) return;
  const canModel = hasRole(user, 'analyst');
  $('#new-procedure').hidden = !canModel;
  api('procedures?per_page=500').then((data) => {
    const procs = itemsOf(data, 'procedures');
    const filter = $('#proc-filter');
    function render() {
      const q = filter.value.trim().toLowerCase();
      const shown = procs.filter((p) => !q || `${p.code} ${p.name} ${p.agency}`.toLowerCase().includes(q));
      mount($('#procedures'), table(['Mã', 'Tên thủ tục', 'Phiên bản', 'Cơ quan', 'Thời hạn', 'Mức độ', 'Lệ phí', ''],
        shown.map((p) => h('tr', { dataset: { code: p.code } },
          h('td', h('code', p.code)),
          h('td', h('a', { href: `/procedures/${encodeURIComponent(p.code)}` }, p.name)),
          h('td.num', `v${p.version ?? p.current_version ?? '?'}`),
          h('td', p.agency || '—'),
          h('td', deadlineVi(p.deadline)),
          h('td', LEVEL_VI[p.level] || p.level || '—'),
          h('td', money(p.fee)),
          h('td', canModel ? h('a.btn.btn-small', { href: `/modeler/${encodeURIComponent(p.code)}` }, 'Sửa sơ đồ') : null))),
        { empty: 'Chưa có thủ tục nào.' }));
    }
    filter.addEventListener('input', render);
    render();
  }).catch((err) => flash(`Không tải được danh mục: ${err.message}`, 'error'));
}
