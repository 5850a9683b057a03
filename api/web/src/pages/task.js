// One task: its form rendered from the JSON Schema, claim / give back / complete, per-field 422 errors.
import { api } from '../lib/api.js';
import { renderAnyForm } from '../lib/form.js';
import { $, h, mount, dt, dueCell, flash, clearFlash, statusBadge, CHANNEL_VI } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { documentsPanel } from './documents.js';

function pick(data) {
  const task = data.task || data;
  const form = data.form || task.form || {};
  const schema = form.schema || data.schema || (form.properties ? form : null);
  const uiSchema = form.ui_schema || form.uiSchema || data.ui_schema || null;
  const values = data.values || data.prefill || data.prefilled || form.values || form.prefill || {};
  const dossier = data.dossier || task.dossier || {};
  return { task, form, schema, uiSchema, values, dossier, canWork: data.can_work };
}

export function taskPage() {
  const user = requireLogin();
  if (!user) return;
  const id = document.body.dataset.taskId;
  let current = null;
  let form = null;
  let freeData = null;

  async function load(message) {
    try {
      const data = await api(`tasks/${encodeURIComponent(id)}`);
      current = pick(data);
      await render(message);
      const docs = current.schema && current.schema['x-documents'];
      const box = $('#task-documents');
      if (box && box.hidden && Array.isArray(docs) && docs.length) {
        // the intake step: the desk scans the papers in beside the checklist it ticks
        box.hidden = false;
        documentsPanel(box, current.task.dossier_code);
      }
    } catch (err) {
      flash(err.status === 404 ? 'Không tìm thấy công việc.' : `Không tải được công việc: ${err.message}`, 'error');
    }
  }

  async function render(message) {
    const { task, schema, uiSchema, values, dossier } = current;
    const done = task.state && task.state !== 'ready';
    const mine = task.claimed_by === user.username;
    const heldByOther = task.claimed_by && !mine;
    const mayWork = current.canWork !== false || mine;
    document.title = `${task.name || task.title} · ${task.dossier_code}`;
    mount($('#task-head'),
      h('h1', task.name || task.title || task.spec_name),
      h('dl.facts',
        h('dt', 'Hồ sơ'), h('dd', h('a', { href: `/dossiers/${encodeURIComponent(task.dossier_code)}` }, task.dossier_code)),
        h('dt', 'Thủ tục'), h('dd', dossier.procedure_name || task.procedure_name || task.procedure_code),
        dossier.applicant_name ? [h('dt', 'Người nộp'), h('dd', dossier.applicant_name)] : null,
        h('dt', 'Vai trò'), h('dd', (task.roles || []).join(', ') || task.assignee || '—'),
        h('dt', 'Hạn bước'), h('dd', dueCell(task.due_at, task.overdue)),
        h('dt', 'Người giữ'), h('dd#holder', task.claimed_by ? (mine ? `Tôi (${user.username})` : task.claimed_by) : 'Chưa ai nhận'),
        h('dt', 'Trạng thái'), h('dd', done ? 'Đã hoàn thành' : 'Đang chờ xử lý')));
    if (dossier && (dossier.code || dossier.applicant)) {
      const a = dossier.applicant || {};
      mount($('#dossier-summary'), h('h2', 'Tóm tắt hồ sơ'),
        h('dl.facts',
          h('dt', 'Người nộp'), h('dd', a.name || dossier.applicant_name || '—'),
          a.id_number ? [h('dt', 'Số định danh'), h('dd', a.id_number)] : null,
          h('dt', 'Kênh nộp'), h('dd', CHANNEL_VI[dossier.channel] || '—'),
          h('dt', 'Trạng thái'), h('dd', statusBadge(dossier.status, dossier.status_label)),
          h('dt', 'Ngày nhận'), h('dd', dt(dossier.received_at)),
          h('dt', 'Hẹn trả'), h('dd', dueCell(dossier.due_at, dossier.overdue, dossier.finished))));
    }
    const area = $('#form-area');
    if (schema && schema.properties) {
      mount(area, schema.title ? h('h2', schema.title) : h('h2', 'Biểu mẫu'),
        schema.description ? h('p.help', schema.description) : null);
      const docs = schema['x-documents'];
      if (Array.isArray(docs) && docs.length) {
        area.appendChild(h('details.documents', { open: true }, h('summary', 'Thành phần hồ sơ cần kiểm tra'),
          h('ul', docs.map((d) => h('li', d.name, d.required ? h('span.req', ' (bắt buộc)') : h('span.muted', ' (nếu có)'),
            d.description ? h('div.help', d.description) : null)))));
      }
      const holder = h('div');
      area.appendChild(holder);
      const readOnly = done || heldByOther || !mayWork;
      form = await renderAnyForm(holder, { schema, uiSchema, values, readOnly });
      freeData = null;
    } else {
      form = null;
      mount(area, h('h2', 'Dữ liệu hoàn thành bước'),
        h('p.help', 'Bước này không có biểu mẫu; có thể ghi dữ liệu dạng JSON (không bắt buộc).'));
      freeData = h('textarea#free-data.json', { rows: 5, disabled: done, 'aria-label': 'Dữ liệu JSON' });
      freeData.value = '{}';
      area.appendChild(freeData);
    }
    $('#claim').hidden = done || !!task.claimed_by || !mayWork;
    $('#unclaim').hidden = done || !mine;
    $('#complete').hidden = done || heldByOther || !mayWork;
    if (!done && !mayWork && !heldByOther) flash('Bạn không có vai trò thực hiện bước này; chỉ xem.', 'info');
    if (heldByOther) flash(`Công việc đang do ${task.claimed_by} giữ; chỉ xem.`, 'info');
    $('#complete').disabled = false;
    if (message) flash(message, 'success');
  }

  async function act(kind) {
    clearFlash();
    try {
      await api(`tasks/${encodeURIComponent(id)}/${kind}`, { method: 'POST', json: {} });
      await load(kind === 'claim' ? 'Bạn đã nhận xử lý công việc này.' : 'Đã trả lại công việc.');
    } catch (err) {
      flash(err.status === 409 ? `Không thực hiện được: ${err.message}` : err.message, 'error');
      if (err.status === 409) load();
    }
  }

  async function complete() {
    clearFlash();
    let data = {};
    if (form) {
      data = form.getData();
      const missing = form.checkRequired();
      if (Object.keys(missing).length) {
        form.setErrors(missing);
        flash('Vui lòng điền các trường bắt buộc (đánh dấu *).', 'error');
        return;
      }
      form.clearErrors();
    } else if (freeData) {
      try {
        data = JSON.parse(freeData.value.trim() || '{}');
      } catch (e) {
        flash('Dữ liệu JSON không hợp lệ.', 'error');
        return;
      }
    }
    const btn = $('#complete');
    btn.disabled = true;
    try {
      if (!current.task.claimed_by) {
        await api(`tasks/${encodeURIComponent(id)}/claim`, { method: 'POST', json: {} });
      }
      const res = await api(`tasks/${encodeURIComponent(id)}/complete`, { method: 'POST', json: { data } });
      const d = res.dossier || res;
      const next = (d.tasks || []).find((t) => t.state === 'ready' || !t.state);
      mount($('#form-area'),
        h('div.alert.alert-success#done', { role: 'status' },
          h('p', h('strong', 'Đã hoàn thành bước. '), 'Hồ sơ ', h('a', { href: `/dossiers/${encodeURIComponent(d.code || current.task.dossier_code)}` }, d.code || current.task.dossier_code),
            ' chuyển sang trạng thái: ', statusBadge(d.status, d.status_label)),
          next ? h('p', 'Bước tiếp theo: ', h('a#next-task', { href: `/tasks/${encodeURIComponent(next.id)}` }, next.name || next.title),
            ` (${(next.roles || []).join(', ')})`) : null,
          h('p', h('a.btn', { href: '/inbox' }, 'Về hộp việc'))));
      $('#claim').hidden = $('#unclaim').hidden = $('#complete').hidden = true;
    } catch (err) {
      btn.disabled = false;
      if (err.status === 422 && form) {
        const fields = err.fields;
        form.setErrors(Object.keys(fields).length ? fields : { _form: err.message });
        flash('Dữ liệu chưa hợp lệ, xem lỗi bên cạnh từng trường.', 'error');
      } else {
        flash(err.message, 'error');
        if (err.status === 409) load();
      }
    }
  }

  $('#task-form').addEventListener('submit', (ev) => ev.preventDefault());
  $('#claim').addEventListener('click', () => act('claim'));
  $('#unclaim').addEventListener('click', () => act('unclaim'));
  $('#complete').addEventListener('click', complete);
  load();
}
