// Supervisors: the overdue board (counts, Chart.js charts by agency and procedure with drill-down agency →
// procedure → dossier, the on-time rate of the last 12 months, the due-soon list, each list paged) and the
// period report.
import { api, itemsOf, download, serverNow } from '../lib/api.js';
import { $, h, mount, dt, flash, table, duration, statusBadge } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { PER_PAGE, pager, procedurePicker } from '../lib/lists.js';
// Chart.js comes in its own bundle (charts.js, loaded by the board page before app.js).
const chartsLib = () => window.motcuaChartsLib;

/** The procedure filter: one page of the catalogue, searched on the server (lib/lists.js). */
function procedureFilter(prefix, value) {
  const picker = procedurePicker({
    search: $(`#${prefix}-procedure-search`), select: $(`#${prefix}-procedure`), emptyLabel: 'Tất cả', value,
  });
  picker.ready.catch(() => { /* the filter still takes a code from the URL */ });
  return picker;
}

export function boardPage() {
  const user = requireLogin();
  if (!user) return;
  const form = $('#filters');
  const params = new URLSearchParams(location.search);
  $('#f-agency').value = params.get('agency') || '';
  const procPicker = procedureFilter('f', params.get('procedure_code') || '');
  // the code of the URL counts from the first load, before the picker's page of the catalogue arrives
  ensureOption($('#f-procedure'), params.get('procedure_code'));
  $('#f-procedure').value = params.get('procedure_code') || '';
  let page = 1;  // the overdue dossiers' page
  let tasksPage = 1;  // the overdue steps' page
  let soonPage = 1;  // the due-soon dossiers' page

  async function loadDueSoon(agency, proc) {
    const q = new URLSearchParams({ page: String(soonPage), per_page: String(PER_PAGE) });
    if (agency) q.set('agency', agency);
    if (proc) q.set('procedure_code', proc);
    try {
      const data = await api(`monitor/due-soon?${q}`);
      const items = data.items || [];
      mount($('#due-soon'), h('h2', `Hồ sơ đến hạn trong ${data.due_soon_hours || 24} giờ tới (${data.total ?? items.length})`),
        table(['Mã hồ sơ', 'Người nộp', 'Thủ tục', 'Cơ quan', 'Hạn trả', 'Còn lại', 'Đang giữ'],
          items.map((d) => h('tr.row-soon', { dataset: { code: d.code } },
            h('td', h('a', { href: `/dossiers/${encodeURIComponent(d.code)}` }, d.code)),
            h('td', d.applicant_name || '—'),
            h('td', d.procedure_code),
            h('td', d.agency),
            h('td', dt(d.due_at)),
            h('td', duration((d.hours_left || 0) * 3600000)),
            h('td', (d.held_by || []).map((t) => h('div', `${t.title}: ${t.claimed_by || t.assignee || (t.roles || []).join(', ')}`))))),
          { class: 'stack', empty: 'Không có hồ sơ sắp đến hạn.' }),
        pager({ page: soonPage, perPage: PER_PAGE, total: data.total, id: 'due-soon-pager',
          onGo: (n) => { soonPage = n; loadDueSoon(agency, proc); } }));
    } catch (err) {
      mount($('#due-soon'), h('p.muted', `Không tải được danh sách sắp đến hạn: ${err.message}`));
    }
  }

  async function load() {
    const q = new URLSearchParams({ page: String(page), tasks_page: String(tasksPage), per_page: String(PER_PAGE) });
    const agency = $('#f-agency').value.trim();
    const proc = $('#f-procedure').value;
    if (agency) q.set('agency', agency);
    if (proc) q.set('procedure_code', proc);
    loadDueSoon(agency, proc);
    const shown = new URLSearchParams();
    if (agency) shown.set('agency', agency);
    if (proc) shown.set('procedure_code', proc);
    history.replaceState(null, '', `${location.pathname}${shown.toString() ? '?' + shown : ''}`);
    try {
      const data = await api(`monitor/overdue?${q}`);
      const counts = data.counts || {};
      const totals = counts.totals || {};
      const dossiers = itemsOf(data, 'dossiers');
      const tasks = data.tasks || [];
      mount($('#kpis'),
        kpi('Hồ sơ quá hạn', totals.overdue_dossiers ?? data.total_dossiers ?? dossiers.length, 'danger', 'kpi-overdue-dossiers'),
        kpi('Bước xử lý quá hạn', totals.overdue_tasks ?? data.total_tasks ?? tasks.length, 'danger', 'kpi-overdue-tasks'),
        kpi(`Hồ sơ đến hạn trong ${counts.due_soon_hours || 24} giờ`, totals.due_soon_dossiers ?? 0, 'warning', 'kpi-due-soon',
          h('a.btn.btn-link.btn-small#show-due-soon', {
            href: '#due-soon', onclick: (ev) => { ev.preventDefault(); const hd = $('#due-soon h2'); if (hd) { hd.tabIndex = -1; hd.focus(); } },
          }, 'Xem danh sách')),
        kpi('Bước đến hạn sắp tới', totals.due_soon_tasks ?? 0, 'warning', 'kpi-due-soon-tasks'));
      const series = [
        { key: 'overdue_dossiers', label: 'Hồ sơ quá hạn', color: '#b3261e' },
        { key: 'overdue_tasks', label: 'Bước quá hạn', color: '#e06c5f' },
        { key: 'due_soon_dossiers', label: 'Sắp đến hạn', color: '#c98a12' },
      ];
      const figs = [
        chartsLib().barChart('chart-agency', 'Quá hạn theo cơ quan', counts.by_agency || [], {
          label: (e) => e.agency, series, empty: 'Không có hồ sơ quá hạn.',
          onPick: (e) => drill(e.agency, ''),
        }),
        chartsLib().barChart('chart-procedure', agency ? `Quá hạn theo thủ tục — ${agency}` : 'Quá hạn theo thủ tục', counts.by_procedure || [], {
          label: (e) => e.procedure_code, series, empty: 'Không có hồ sơ quá hạn.',
          onPick: (e) => drill(agency, e.procedure_code, true),
        }),
      ];
      mount($('#charts'), figs);
      figs.forEach((f) => f.draw());
      crumbs(agency, proc);
      onTimeChart(agency, proc);
      mount($('#overdue-dossiers'), h('h2', `Hồ sơ quá hạn (${data.total_dossiers ?? dossiers.length})`),
        table(['Mã hồ sơ', 'Thủ tục', 'Cơ quan', 'Trạng thái', 'Hạn trả', 'Trễ', 'Đang giữ'],
          dossiers.map((d) => h('tr.row-overdue', { dataset: { code: d.code } },
            h('td', h('a', { href: `/dossiers/${encodeURIComponent(d.code)}` }, d.code)),
            h('td', d.procedure_name || d.procedure_code),
            h('td', d.agency),
            h('td', statusBadge(d.status, d.status_label)),
            h('td', dt(d.due_at)),
            h('td', lateText(d)),
            h('td', (d.held_by || []).map((t) => h('div', `${t.title}: ${t.claimed_by || t.assignee || (t.roles || []).join(', ')}`))))),
          { class: 'stack', empty: 'Không có hồ sơ quá hạn.' }),
        pager({ page, perPage: PER_PAGE, total: data.total_dossiers, id: 'overdue-dossiers-pager',
          onGo: (n) => { page = n; load(); } }));
      mount($('#overdue-tasks'), h('h2', `Bước xử lý quá hạn (${data.total_tasks ?? tasks.length})`),
        table(['Bước', 'Hồ sơ', 'Thủ tục', 'Người giữ / vai trò', 'Hạn bước', 'Trễ'],
          tasks.map((t) => h('tr.row-overdue',
            h('td', t.title),
            h('td', h('a', { href: `/dossiers/${encodeURIComponent(t.dossier_code)}` }, t.dossier_code)),
            h('td', t.procedure_code),
            h('td', t.claimed_by || t.assignee || (t.roles || []).join(', ')),
            h('td', dt(t.due_at)),
            h('td', lateText(t)))),
          { class: 'stack', empty: 'Không có bước quá hạn.' }),
        pager({ page: tasksPage, perPage: PER_PAGE, total: data.total_tasks, id: 'overdue-tasks-pager',
          onGo: (n) => { tasksPage = n; load(); } }));
      $('#as-of').textContent = `Số liệu lúc ${dt(data.now || new Date().toISOString())}`;
    } catch (err) {
      flash(err.status === 403 ? 'Trang này dành cho cán bộ giám sát.' : `Không tải được số liệu: ${err.message}`, 'error');
    }
  }

  // Drill-down: agency → its procedures → the procedure's overdue dossiers (the filters, kept in the URL).
  function drill(agency, proc, toList) {
    $('#f-agency').value = agency || '';
    ensureOption($('#f-procedure'), proc);
    $('#f-procedure').value = proc || '';
    procPicker.setValue(proc || '').catch(() => {});
    page = 1; tasksPage = 1; soonPage = 1;
    load().then(() => { if (toList) $('#overdue-dossiers').scrollIntoView({ block: 'start' }); });
  }

  function crumbs(agency, proc) {
    const up = (label, a) => h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); drill(a, ''); } }, label);
    const items = [h('li', agency || proc ? up('Toàn tỉnh', '') : h('span', { 'aria-current': 'page' }, 'Toàn tỉnh'))];
    if (agency) items.push(h('li', proc ? up(agency, agency) : h('span', { 'aria-current': 'page' }, agency)));
    if (proc) items.push(h('li', h('span', { 'aria-current': 'page' }, proc)));
    mount($('#drill'), h('ol.drill-crumbs', items));
  }

  async function onTimeChart(agency, proc) {
    const q = new URLSearchParams({ months: '12' });
    if (agency) q.set('agency', agency);
    if (proc) q.set('procedure_code', proc);
    try {
      const data = await api(`reports/on-time-by-month?${q}`);
      const fig = chartsLib().rateChart('chart-ontime', 'Tỷ lệ giải quyết đúng hạn 12 tháng gần nhất', data.months || []);
      mount($('#charts-rate'), fig);
      fig.draw();
    } catch (err) {
      mount($('#charts-rate'), h('p.muted', `Không tải được tỷ lệ đúng hạn: ${err.message}`));
    }
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); page = 1; tasksPage = 1; soonPage = 1; load(); });
  $('#reset').addEventListener('click', () => {
    $('#f-agency').value = '';
    $('#f-procedure-search').value = '';
    procPicker.setValue('').catch(() => {});
    $('#f-procedure').value = '';
    page = 1; tasksPage = 1; soonPage = 1;
    load();
  });
  load();
}

function lateText(x) {
  const wh = x.working_hours_late;
  const hours = x.hours_late;
  const parts = [];
  if (wh !== undefined && wh !== null) parts.push(`${Number(wh).toLocaleString('vi-VN')} giờ làm việc`);
  if (hours !== undefined && hours !== null) parts.push(`(${duration(hours * 3600000)})`);
  return parts.join(' ') || '—';
}

function kpi(label, value, kind, id, extra) {
  return h(`div.kpi.kpi-${kind}`, { id }, h('div.kpi-value', String(value ?? 0)), h('div.kpi-label', label), extra || null);
}

function ensureOption(select, code) {
  if (code && !Array.from(select.options).some((o) => o.value === code)) select.appendChild(h('option', { value: code }, code));
}

function pad(n) { return String(n).padStart(2, '0'); }

function todayVN() {
  // YYYY-MM-DD in UTC+7, on the server's clock
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Ho_Chi_Minh' }).format(new Date(serverNow()));
}

export async function reportPage() {
  const user = requireLogin();
  if (!user) return;
  const params = new URLSearchParams(location.search);
  $('#r-agency').value = params.get('agency') || '';
  await procedureFilter('r', params.get('procedure_code') || '').ready.catch(() => {}); // also reads the server's clock

  const today = todayVN();
  $('#r-from').value = params.get('from') || `${today.slice(0, 8)}01`;
  $('#r-to').value = params.get('to') || today;

  function query(format) {
    const q = new URLSearchParams({ from: $('#r-from').value, to: $('#r-to').value });
    if ($('#r-agency').value.trim()) q.set('agency', $('#r-agency').value.trim());
    if ($('#r-procedure').value) q.set('procedure_code', $('#r-procedure').value);
    if (format) q.set('format', format);
    return q;
  }

  function exportLinks() {
    for (const fmt of ['csv', 'xlsx']) {
      const a = $(`#export-${fmt}`);
      a.href = `/api/v1/reports/summary?${query(fmt)}`;
    }
  }

  const cols = [
    ['received.total', 'Tổng nhận'], ['received.online', 'Trực tuyến'], ['received.in_person', 'Trực tiếp'],
    ['received.postal', 'Bưu chính'], ['carried_over', 'Kỳ trước chuyển sang'],
    ['completed.early', 'Trước hạn'], ['completed.on_time', 'Đúng hạn'], ['completed.late', 'Quá hạn'],
    ['in_process.within', 'Trong hạn'], ['in_process.overdue', 'Quá hạn'],
    ['supplement_requested', 'Bổ sung'], ['refused', 'Từ chối'], ['stopped', 'Dừng'], ['withdrawn', 'Rút'],
    ['returned', 'Đã trả KQ'], ['on_time_rate', 'Tỷ lệ đúng hạn (%)'],
  ];
  const get = (row, path) => path.split('.').reduce((o, k) => (o == null ? o : o[k]), row);
  const cell = (v) => h('td.num', v === null || v === undefined ? '—' : Number(v).toLocaleString('vi-VN'));

  async function load() {
    exportLinks();
    history.replaceState(null, '', `${location.pathname}?${query()}`);
    try {
      const r = await api(`reports/summary?${query()}`);
      const rows = r.rows || [];
      const head = h('thead',
        h('tr', h('th', { rowSpan: 2 }, 'Cơ quan'), h('th', { rowSpan: 2 }, 'Thủ tục'),
          h('th', { colSpan: 5 }, 'Tiếp nhận'), h('th', { colSpan: 3 }, 'Đã giải quyết'), h('th', { colSpan: 2 }, 'Đang giải quyết'),
          h('th', { colSpan: 6 }, 'Khác')),
        h('tr', cols.map(([, label]) => h('th', label))));
      const body = h('tbody', rows.length ? rows.map((row) => h('tr',
        h('td.nowrap', row.agency), h('td.proc-cell', h('div.code', row.procedure_code), row.procedure_name ? h('div.small.muted', row.procedure_name) : null),
        cols.map(([k]) => cell(get(row, k)))))
        : h('tr', h('td.muted', { colSpan: cols.length + 2 }, 'Không có hồ sơ trong kỳ.')));
      const foot = h('tfoot', h('tr', h('th', { colSpan: 2 }, 'Tổng cộng'), cols.map(([k]) => cell(get(r.totals || {}, k)))));
      mount($('#report'), h('p.muted', `Kỳ báo cáo: ${r.from} đến ${r.to}`),
        h('div.table-wrap', { tabIndex: 0, role: 'region', 'aria-label': 'Bảng báo cáo (cuộn ngang)' }, h('table.table.report-table#report-table', head, body, foot)));
    } catch (err) {
      flash(`Không lập được báo cáo: ${err.message}`, 'error');
    }
  }

  for (const fmt of ['csv', 'xlsx']) {
    $(`#export-${fmt}`).addEventListener('click', async (ev) => {
      ev.preventDefault();
      try {
        await download(`/api/v1/reports/summary?${query(fmt)}`, `bao-cao-${$('#r-from').value}-${$('#r-to').value}.${fmt}`);
      } catch (err) {
        flash(`Không tải được tệp: ${err.message}`, 'error');
      }
    });
  }
  $('#report-form').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  load();
}

export { pad };
