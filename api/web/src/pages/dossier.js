// A dossier: its summary, open steps and timeline; and the receiver's page that starts a new one.
import { api, itemsOf, hasRole } from '../lib/api.js';
import { renderDataView } from '../lib/display.js';
import {
  $, h, mount, dt, dueCell, flash, statusBadge, table, CHANNEL_VI, ACTION_VI, STATUS_VI,
} from '../lib/ui.js';
import { requireLogin } from './common.js';
import { procedurePicker } from '../lib/lists.js';
import { documentsPanel } from './documents.js';

export async function loadDossierBundle(code) {
  const [dossier, steps] = await Promise.all([
    api(`dossiers/${encodeURIComponent(code)}`),
    api(`dossiers/${encodeURIComponent(code)}/steps`).catch(() => null),
  ]);
  return { dossier: dossier.dossier || dossier, steps };
}

function timelineItem(e, stepsById) {
  const d = e.details || {};
  const step = e.task_id && stepsById[e.task_id];
  const title = d.title || (step && step.title) || d.task;
  const what = ACTION_VI[e.action] || e.action;
  const statusChange = e.from_status !== e.to_status && e.to_status
    ? h('span.muted', ` · ${STATUS_VI[e.from_status] || e.from_status || '∅'} → ${STATUS_VI[e.to_status] || e.to_status}`)
    : null;
  return h('li.timeline-item', h('time', { datetime: e.at }, dt(e.at)),
    h('div', h('strong', what), title ? ` — ${title}` : '', statusChange,
      h('div.muted', `bởi ${e.actor || 'hệ thống'}`)));
}

const ACTIONS = [
  { path: 'supplement-request', label: 'Yêu cầu bổ sung hồ sơ', roles: ['receiver'], when: (d) => !d.finished && !d.paused,
    fields: [['reason', 'Lý do, nội dung cần bổ sung', true], ['documents', 'Giấy tờ cần bổ sung (mỗi dòng một giấy tờ)', false]] },
  { path: 'supplement-received', label: 'Đã nhận hồ sơ bổ sung', roles: ['receiver'], when: (d) => d.status === 'supplement_requested',
    fields: [['note', 'Ghi chú', false]] },
  { path: 'extend', label: 'Xin lỗi và hẹn lại ngày trả', roles: ['receiver'], when: (d) => !d.finished && !d.extended,
    fields: [['reason', 'Lý do chậm trễ (in trên phiếu xin lỗi)', true], ['extra_working_days', 'Số ngày làm việc gia hạn', true, 'number']] },
  { path: 'refuse', label: 'Từ chối tiếp nhận', roles: ['receiver'], when: (d) => !d.finished && ['new', 'received'].includes(d.status),
    fields: [['reason', 'Lý do từ chối', true]] },
  { path: 'withdraw', label: 'Rút hồ sơ (theo yêu cầu người nộp)', roles: ['receiver'], when: (d) => !d.finished,
    fields: [['reason', 'Lý do', true]] },
  { path: 'stop', label: 'Dừng xử lý', roles: ['receiver', 'leader'], when: (d) => !d.finished,
    fields: [['reason', 'Lý do', true]] },
];

function actionsPanel(user, d, code) {
  const usable = ACTIONS.filter((a) => hasRole(user, ...a.roles) && a.when(d));
  if (!usable.length) return null;
  return h('div', h('h2', 'Thao tác trên hồ sơ'), usable.map((a) => {
    const inputs = {};
    const form = h('form.form.action-form', { dataset: { action: a.path } },
      a.fields.map(([name, label, required, type]) => {
        const id = `act-${a.path}-${name}`;
        inputs[name] = type === 'number'
          ? h('input', { id, type: 'number', min: '0.5', step: '0.5', required })
          : h('textarea', { id, rows: 2, required, maxlength: 2000 });
        return h('div.field', h('label', { for: id }, label, required ? h('span.req', ' *') : null), inputs[name],
          h('p.field-error', { id: `${id}-error`, hidden: true }));
      }),
      h('button.btn.btn-primary.btn-small', { type: 'submit' }, 'Xác nhận'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const [name, , , type] of a.fields) {
        const v = inputs[name].value.trim();
        if (!v) continue;
        body[name] = type === 'number' ? Number(v) : name === 'documents' ? v.split('\n').map((x) => x.trim()).filter(Boolean) : v;
      }
      try {
        await api(`dossiers/${encodeURIComponent(code)}/${a.path}`, { json: body });
        location.href = `/dossiers/${encodeURIComponent(code)}?done=${encodeURIComponent(a.path)}`;
      } catch (err) {
        for (const [path, msg] of Object.entries(err.fields || {})) {
          const slot = form.querySelector(`#act-${a.path}-${CSS.escape(path)}-error`);
          if (slot) { slot.textContent = msg; slot.hidden = false; }
        }
        flash(`Không thực hiện được: ${err.message}`, 'error');
      }
    });
    return h('details.action', h('summary', a.label), form);
  }));
}

const DONE_VI = {
  'supplement-request': 'Đã gửi yêu cầu bổ sung; thời hạn tạm dừng.',
  'supplement-received': 'Đã nhận hồ sơ bổ sung; thời hạn tiếp tục.',
  extend: 'Đã gia hạn và hẹn lại ngày trả kết quả.',
  refuse: 'Đã từ chối tiếp nhận hồ sơ.',
  withdraw: 'Đã ghi nhận rút hồ sơ.',
  stop: 'Đã dừng xử lý hồ sơ.',
};

const CHANNEL_NAME_VI = {
  sms: 'SMS', email: 'Thư điện tử', zalo: 'Zalo', zalo_oa: 'Zalo OA', national_portal: 'Cổng DVC quốc gia',
  national_report: 'Hệ thống báo cáo', officer: 'Hộp thư cán bộ', portal: 'Trang tra cứu',
};
const RESULT_VI = { sent: 'Đã gửi', pending: 'Chờ gửi', retrying: 'Đang thử lại', dead: 'Thất bại (thư chết)' };

export function deliveryRows(items) {
  return items.map((n) => h(`tr.delivery-${n.result}`,
    h('td', CHANNEL_NAME_VI[n.channel] || n.channel),
    h('td', n.recipient || '—'),
    h('td', dt(n.sent_at || n.dead_at || n.created_at)),
    h('td.num', String(n.tries)),
    h('td', { title: n.last_error || '' }, RESULT_VI[n.result] || n.result)));
}

// The dossier's delivery log: every message about it, on which channel, to whom, when, how many tries.
async function deliveryLog(code) {
  const box = $('#deliveries');
  try {
    const page = await api(`dossiers/${encodeURIComponent(code)}/deliveries?per_page=50`);
    mount(box, h('h2', 'Nhật ký gửi tin'), page.items.length
      ? table(['Kênh', 'Người nhận', 'Thời gian', 'Số lần', 'Kết quả'], deliveryRows(page.items), { class: 'stack' })
      : h('p.muted', 'Chưa có tin nào.'));
  } catch (err) {
    mount(box, h('h2', 'Nhật ký gửi tin'), h('p.muted', `Không tải được: ${err.message}`));
  }
}

const CALL_VI = { pending: 'Đang chờ gọi', running: 'Đang gọi', incident: 'Sự cố' };

// A service task's connector calls still open: waiting for the worker, or an incident an officer of the
// dossier's agency retries (docs/bpmn-conventions.md, 9.6). Hidden when there is none.
async function incidentsPanel(code) {
  const box = $('#incidents');
  let items = [];
  try {
    items = await api(`dossiers/${encodeURIComponent(code)}/incidents`);
  } catch (err) { /* the rest of the page stands without it */ }
  box.hidden = !items.length;
  if (!items.length) return;
  const retry = async (i) => {
    try {
      await api(`dossiers/${encodeURIComponent(code)}/incidents/${encodeURIComponent(i.id)}/retry`, { method: 'POST' });
      flash(`Đã yêu cầu gọi lại: ${i.title}. Hệ thống sẽ gọi lại trong lượt quét tới.`, 'success');
    } catch (err) {
      flash(`Không thử lại được: ${err.message}`, 'error');
    }
    incidentsPanel(code);
  };
  mount(box, h('h2', 'Bước dịch vụ (kết nối hệ thống ngoài)'),
    table(['Bước', 'Kết nối', 'Trạng thái', 'Số lần gọi', 'Lỗi', ''], items.map((i) => h(`tr.call-${i.state}`,
      h('td', i.title),
      h('td', i.connector),
      h('td', CALL_VI[i.state] || i.state),
      h('td.num', String(i.attempts)),
      h('td', i.error || '—'),
      h('td', i.state === 'incident'
        ? h('button.retry', { type: 'button', onclick: () => retry(i) }, 'Thử lại')
        : null))), { class: 'stack' }));
}

export function dossierPage() {
  const user = requireLogin();
  if (!user) return;
  const code = document.body.dataset.code;
  (async () => {
    try {
      const { dossier: d, steps } = await loadDossierBundle(code);
      let history = d.timeline || [];
      try {
        const hist = await api(`dossiers/${encodeURIComponent(code)}/history`);
        const items = itemsOf(hist, 'events', 'history', 'timeline');
        if (items.length) history = items;
      } catch (e) { /* the summary's timeline is enough */ }
      const stepList = (steps && steps.steps) || [];
      const byId = Object.fromEntries(stepList.map((s) => [s.id, s]));
      const a = d.applicant || {};
      document.title = `Hồ sơ ${d.code}`;
      mount($('#dossier-head'),
        h('h1', 'Hồ sơ ', h('span.code', d.code), ' ', statusBadge(d.status, d.status_label)),
        h('p.lead', (steps && steps.procedure && steps.procedure.name) || d.procedure_name || d.procedure_code));
      mount($('#dossier-facts'),
        h('dl.facts',
          h('dt', 'Người nộp'), h('dd', a.name || '—'),
          h('dt', 'Số định danh'), h('dd', a.id_number || '—'),
          h('dt', 'Điện thoại'), h('dd', a.phone || '—'),
          h('dt', 'Kênh nộp'), h('dd', CHANNEL_VI[d.channel] || '—'),
          h('dt', 'Cơ quan'), h('dd', d.agency),
          h('dt', 'Ngày tiếp nhận'), h('dd', dt(d.received_at)),
          h('dt', 'Hẹn trả kết quả'), h('dd', dueCell(d.due_at, d.overdue, d.finished)),
          d.returned_at ? [h('dt', 'Đã trả kết quả'), h('dd', dt(d.returned_at))] : null,
          d.finished_at ? [h('dt', 'Kết thúc'), h('dd', dt(d.finished_at))] : null));
      const open = d.tasks || [];
      mount($('#open-tasks'), h('h2', 'Bước đang xử lý'),
        open.length ? table(['Bước', 'Vai trò', 'Người giữ', 'Hạn'], open.map((t) => h(`tr${t.overdue ? '.row-overdue' : ''}`,
          h('td', h('a', { href: `/tasks/${encodeURIComponent(t.id)}` }, t.name || t.title)),
          h('td', (t.roles || []).join(', ')),
          h('td', t.claimed_by || '—'),
          h('td', dueCell(t.due_at, t.overdue)))), { class: 'stack' })
          : h('p.muted', d.finished ? 'Hồ sơ đã kết thúc.' : 'Không có bước nào đang chờ.'));
      const view = d.data_view || [];
      mount($('#dossier-data'), h('h2', 'Dữ liệu hồ sơ'), view.length
        ? renderDataView(view)
        : h('p.muted', 'Chưa có dữ liệu.'));
      mount($('#timeline'), h('h2', 'Quá trình xử lý'),
        h('ol.timeline', history.map((e) => timelineItem(e, byId))));
      deliveryLog(code);
      incidentsPanel(code);
      documentsPanel($('#dossier-documents'), code);
      const panel = actionsPanel(user, d, code);
      const box = $('#dossier-actions');
      if (panel) mount(box, panel);
      box.hidden = !panel;
      const params = new URLSearchParams(location.search);
      if (params.get('created')) flash(`Đã tiếp nhận hồ sơ ${d.code}. In giấy tiếp nhận và hẹn trả kết quả cho người nộp.`, 'success');
      if (params.get('done') && DONE_VI[params.get('done')]) flash(DONE_VI[params.get('done')], 'success');
    } catch (err) {
      flash(err.status === 404 ? `Không tìm thấy hồ sơ ${code}.` : `Không tải được hồ sơ: ${err.message}`, 'error');
    }
  })();
}

export function newDossierPage() {
  const user = requireLogin();
  if (!user) return;
  if (!hasRole(user, 'receiver')) flash('Chỉ cán bộ tiếp nhận (receiver) được tiếp nhận hồ sơ mới.', 'warning');
  // one page of the catalogue at a time, searched on the server as the receiver types (lib/lists.js)
  procedurePicker({
    search: $('#procedure_search'),
    select: $('#procedure_code'),
    status: $('#procedure_matches'),
    value: new URLSearchParams(location.search).get('procedure') || '',
  }).ready.catch((err) => flash(`Không tải được danh mục thủ tục: ${err.message}`, 'error'));

  const form = $('#new-dossier');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll('.field-error')) { el.textContent = ''; el.hidden = true; }
    const val = (id) => $(`#${id}`).value.trim() || undefined;
    const body = {
      procedure_code: val('procedure_code'),
      applicant: { name: val('applicant_name'), id_number: val('applicant_id_number'), phone: val('applicant_phone'), email: val('applicant_email') },
      channel: Number($('#channel').value || 1),
      data: {},
    };
    const note = val('note');
    if (note) body.data.note = note;
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const res = await api('dossiers', { json: body });
      location.href = `/dossiers/${encodeURIComponent(res.code)}?created=1`;
    } catch (err) {
      btn.disabled = false;
      const fields = err.fields || {};
      for (const [path, msg] of Object.entries(fields)) {
        const id = { 'applicant.name': 'applicant_name', 'applicant.id_number': 'applicant_id_number', 'applicant.phone': 'applicant_phone', 'applicant.email': 'applicant_email' }[path] || path;
        const slot = $(`#${CSS.escape(id)}-error`);
        if (slot) { slot.textContent = msg; slot.hidden = false; }
      }
      flash(`Không tiếp nhận được: ${err.message}`, 'error');
    }
  });
}
