// Staff: the dossiers of my agency (every agency for supervisors), searchable, filterable, paged.
import { api, itemsOf } from '../lib/api.js';
import { $, h, mount, dt, dueCell, flash, table, statusBadge, STATUS_VI, CHANNEL_VI } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { PER_PAGE, pager } from '../lib/lists.js';

export function dossiersPage() {
  const user = requireLogin();
  if (!user) return;
  const params = new URLSearchParams(location.search);
  const status = $('#d-status');
  for (const [value, label] of Object.entries(STATUS_VI)) status.appendChild(h('option', { value }, label));
  $('#d-q').value = params.get('q') || '';
  status.value = params.get('status') || '';
  $('#d-overdue').checked = params.get('overdue') === 'true';
  let page = Number(params.get('page') || 1);

  async function load() {
    const q = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    if ($('#d-q').value.trim()) q.set('q', $('#d-q').value.trim());
    if (status.value) q.set('status', status.value);
    if ($('#d-overdue').checked) q.set('overdue', 'true');
    history.replaceState(null, '', `${location.pathname}?${q}`);
    try {
      const data = await api(`dossiers?${q}`);
      const items = itemsOf(data, 'dossiers');
      const total = data.total ?? items.length;
      $('#d-count').textContent = `${total.toLocaleString('vi-VN')} hồ sơ`;
      mount($('#dossiers'), table(['Mã hồ sơ', 'Người nộp', 'Thủ tục', 'Kênh', 'Trạng thái', 'Ngày nhận', 'Hẹn trả'],
        items.map((d) => h(`tr${d.overdue ? '.row-overdue' : ''}`, { dataset: { code: d.code } },
          h('td', h('a', { href: `/dossiers/${encodeURIComponent(d.code)}` }, d.code)),
          h('td', d.applicant_name || '—'),
          h('td', d.procedure_code),
          h('td', CHANNEL_VI[d.channel] || '—'),
          h('td', statusBadge(d.status, d.status_label)),
          h('td', dt(d.received_at)),
          h('td', dueCell(d.due_at, d.overdue, d.finished)))),
        { class: 'stack', empty: 'Không có hồ sơ nào khớp.' }),
        pager({ page, perPage: PER_PAGE, total, id: 'dossiers-pager', onGo: (n) => { page = n; load(); } }));
    } catch (err) {
      flash(`Không tải được danh sách hồ sơ: ${err.message}`, 'error');
    }
  }

  $('#dossier-filters').addEventListener('submit', (ev) => { ev.preventDefault(); page = 1; load(); });
  load();
}
