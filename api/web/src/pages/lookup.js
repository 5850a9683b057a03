// Citizens: look a dossier up by its code (details when the ID number matches). No login.
import { api } from '../lib/api.js';
import { $, h, mount, dt, flash, clearFlash, statusBadge } from '../lib/ui.js';

export function lookupPage() {
  const form = $('#lookup-form');
  const out = $('#lookup-result');
  const params = new URLSearchParams(location.search);
  if (params.get('code')) $('#code').value = params.get('code');

  async function run() {
    clearFlash();
    const code = $('#code').value.trim().toUpperCase();
    $('#code').value = code;
    const idNumber = $('#id_number').value.trim();
    if (!code) {
      flash('Vui lòng nhập mã hồ sơ.', 'error');
      return;
    }
    const shown = new URLSearchParams({ code });
    history.replaceState(null, '', `${location.pathname}?${shown}`);
    mount(out, h('p.muted', 'Đang tra cứu…'));
    try {
      const q = idNumber ? `?id_number=${encodeURIComponent(idNumber)}` : '';
      const d = await api(`public/dossiers/${encodeURIComponent(code)}${q}`, { anonymous: true, noRedirect: true });
      const a = d.applicant || null;
      const steps = d.steps || d.tasks || [];
      mount(out, h('article.card.lookup-card',
        h('h2', 'Hồ sơ ', h('span.code', d.code || code)),
        h('p', statusBadge(d.status, d.status_label)),
        h('dl.facts',
          d.procedure_name || d.procedure_code ? [h('dt', 'Thủ tục'), h('dd', d.procedure_name || d.procedure_code)] : null,
          h('dt', 'Ngày tiếp nhận'), h('dd', dt(d.received_at)),
          h('dt', 'Ngày hẹn trả'), h('dd', dt(d.due_at)),
          d.returned_at ? [h('dt', 'Đã trả kết quả'), h('dd', dt(d.returned_at))] : null,
          a && a.name ? [h('dt', 'Người nộp'), h('dd#lookup-applicant', a.name)] : null,
          null),
        !a && idNumber ? h('p.help', 'Số định danh không khớp nên chỉ hiển thị thông tin chung.') : null,
        !idNumber ? h('p.help', 'Nhập thêm số định danh (CCCD) của người nộp để xem thông tin chi tiết.') : null,
        steps.length ? [h('h3', 'Các bước xử lý'), h('ol.timeline', steps.map((s) => h('li.timeline-item',
          h('time', dt(s.completed_at || s.started_at || s.created_at)),
          h('div', h('strong', s.name || s.title || s.step || ''), ' ',
            s.completed_at ? h('span.badge.status-returned', 'Đã xong') : h('span.badge.status-in_process', 'Đang xử lý'),
            s.due_at ? h('div.muted', `Hạn: ${dt(s.due_at)}`) : null))))] : null));
    } catch (err) {
      mount(out);
      flash(err.status === 404 ? `Không tìm thấy hồ sơ có mã ${code}. Vui lòng kiểm tra lại mã trên giấy tiếp nhận.`
        : `Không tra cứu được: ${err.message}`, 'error');
    }
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
  if (params.get('code') && params.get('auto') !== '0') run();
}
