// Printed documents: the receipt and appointment slip (mẫu 01) and the process control slip (mẫu 05).
import { serverNow } from '../lib/api.js';
import { formatNumber } from '../lib/display.js';
import { $, h, mount, dt, dtLong, duration, flash, money, deadlineVi, table } from '../lib/ui.js';
import { requireLogin } from './common.js';
import { loadDossierBundle } from './dossier.js';

function header(agencyName, agencyId) {
  return h('div.slip-header',
    h('div.slip-agency', h('div', (agencyName || 'CƠ QUAN GIẢI QUYẾT').toUpperCase()),
      h('div.strong', 'BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ'), agencyId ? h('div.muted.small', `Mã cơ quan: ${agencyId}`) : null),
    h('div.slip-nation', h('div.strong', 'CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM'),
      h('div.strong.underline', 'Độc lập - Tự do - Hạnh phúc')));
}

/** A checklist entry's state as the slips print it (the states: engine/attachments.document_states). */
function documentNote(doc) {
  switch (doc.state) {
    case 'attached': return doc.received_on_paper ? 'Đã nộp (bản giấy và bản điện tử)' : 'Đã nộp (bản điện tử)';
    case 'paper': return 'Đã nộp (bản giấy)';
    case 'missing': return 'Chưa nộp (bắt buộc)';
    case 'not_given': return 'Không nộp';
    default: return doc.attached ? 'Đã nộp' : (doc.required ? 'Bắt buộc' : 'Nếu có');
  }
}

function documentsTable(docs) {
  return h('table.table.slip-docs', h('thead', h('tr', h('th', 'STT'), h('th', 'Tên giấy tờ'), h('th', 'Tình trạng'))),
    h('tbody', docs.map((doc, i) => h('tr', h('td', String(i + 1)), h('td', doc.name),
      h('td', { dataset: { key: doc.key, state: doc.state || '' } }, documentNote(doc))))));
}

function deadlineText(proc) {
  return proc && proc.deadline ? deadlineVi(proc.deadline) : 'Theo quy định';
}

export function receiptPage() {
  const user = requireLogin();
  if (!user) return;
  const code = document.body.dataset.code;
  loadDossierBundle(code).then(({ dossier: d, steps }) => {
    const a = d.applicant || {};
    const proc = (steps && steps.procedure) || {};
    const docs = (steps && steps.documents) || [];
    const receiver = (steps && steps.received_by) || {};
    const lookup = `${location.origin}/tra-cuu?code=${encodeURIComponent(d.code)}`;
    document.title = `Giấy tiếp nhận ${d.code}`;
    mount($('#slip'),
      header(proc.agency_name, d.agency),
      h('h1.slip-title', 'GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ'),
      h('p.slip-code', 'Mã hồ sơ: ', h('strong#slip-code', d.code)),
      h('p', 'Bộ phận tiếp nhận và trả kết quả đã tiếp nhận hồ sơ của:'),
      h('dl.slip-lines',
        h('dt', 'Ông/Bà'), h('dd#slip-applicant', a.name || '……'),
        h('dt', 'Số định danh cá nhân / CCCD'), h('dd', a.id_number || '……'),
        h('dt', 'Số điện thoại'), h('dd', a.phone || '……'),
        h('dt', 'Thư điện tử'), h('dd', a.email || '……'),
        h('dt', 'Nội dung yêu cầu giải quyết'), h('dd', `${proc.name || d.procedure_code} (mã thủ tục ${d.procedure_code})`)),
      h('ol.slip-items',
        h('li', 'Thành phần hồ sơ nộp gồm:',
          docs.length ? documentsTable(docs) : h('p.muted', 'Theo danh mục thành phần hồ sơ của thủ tục.')),
        h('li', 'Số lượng hồ sơ: 01 bộ.'),
        h('li', `Thời gian giải quyết hồ sơ theo quy định: ${deadlineText(proc)}.`),
        h('li', 'Thời gian nhận hồ sơ: ', h('strong#slip-received', dtLong(d.received_at)), '.'),
        h('li', 'Thời gian trả kết quả giải quyết hồ sơ: ', h('strong#slip-due', dtLong(d.due_at)), '.'),
        h('li', 'Lệ phí: ', h('strong#slip-fee', money(steps && steps.fee != null ? steps.fee : proc.fee)), '.'),
        h('li', 'Tra cứu tình trạng hồ sơ: ', h('span.url', lookup), ' (nhập mã hồ sơ và số định danh).')),
      h('div.signatures',
        h('div', h('div.strong', 'NGƯỜI NỘP HỒ SƠ'), h('div.muted', '(Ký và ghi rõ họ tên)'), h('div.sign-space'), h('div', a.name || '')),
        h('div', h('div.strong', 'NGƯỜI TIẾP NHẬN HỒ SƠ'), h('div.muted', '(Ký và ghi rõ họ tên)'), h('div.sign-space'),
          h('div', receiver.full_name || receiver.username || ''))));
  }).catch((err) => flash(`Không tải được hồ sơ: ${err.message}`, 'error'));
}

function verdict(s, now) {
  if (s.state === 'waiting') return 'Đang chờ';  // a payment or supplement wait (no due time of its own)
  if (!s.due_at) return s.completed_at ? 'Hoàn thành' : 'Đang xử lý';
  const due = new Date(s.due_at).getTime();
  if (s.completed_at) {
    const done = new Date(s.completed_at).getTime();
    if (done <= due) return h('span.ok', 'Đúng hạn');
    return h('span.late', `Trễ hạn ${duration(done - due)}`);
  }
  if (s.state === 'cancelled') return 'Đã hủy';
  return now > due ? h('span.late', `Quá hạn ${duration(now - due)}`) : 'Đang xử lý';
}

/** Each agency's share of the time (an inter-agency procedure, docs/bpmn-conventions.md 9.5): its steps and
 * its working hours on its own calendar; shown when more than one agency worked the dossier. Steps of two
 * agencies running side by side each count their own hours, so the shares may add up to more than the
 * dossier's elapsed working hours, printed under the table. */
function agencySharesTable(shares, nameOf, elapsed) {
  if (!shares || shares.length < 2) return null;
  const headers = ['Cơ quan', 'Số bước', 'Số giờ làm việc', 'Tỷ lệ thời gian'];
  const total = shares.reduce((sum, a) => sum + (a.working_hours || 0), 0);
  return h('div#control-agencies', h('h2.slip-subtitle', 'Phần thời gian của mỗi cơ quan'),
    table(headers, shares.map((a) => h('tr', { dataset: { agency: a.agency } },
      h('td', nameOf(a.agency)),
      h('td.num', String(a.steps)),
      h('td.num', formatNumber(a.working_hours)),
      h('td.num', a.percent == null ? '—' : `${formatNumber(a.percent)} %`))), { class: 'stack' }),
    elapsed == null ? null : h('p.muted.small#control-elapsed',
      `Thời gian hồ sơ đã qua: ${formatNumber(elapsed)} giờ làm việc`,
      total > elapsed + 0.01 ? ' (các cơ quan làm song song nên tổng số giờ của các cơ quan lớn hơn).' : '.'));
}

export function controlSlipPage() {
  const user = requireLogin();
  if (!user) return;
  const code = document.body.dataset.code;
  loadDossierBundle(code).then(({ dossier: d, steps }) => {
    const a = d.applicant || {};
    const proc = (steps && steps.procedure) || {};
    const list = (steps && steps.steps) || [];
    const shares = (steps && steps.agencies) || [];
    const now = serverNow();
    // agencies by name (a code the agencies table does not know stays a code)
    const names = { [d.agency]: steps && steps.agency_name };
    for (const s of list) if (s.agency_name) names[s.agency] = s.agency_name;
    for (const x of shares) if (x.name) names[x.agency] = x.name;
    const nameOf = (agency) => (agency ? names[agency] || agency : '—');
    const interAgency = shares.length > 1;
    const headers = ['STT', 'Bước xử lý', ...(interAgency ? ['Cơ quan thực hiện'] : []), 'Người / bộ phận xử lý',
      'Thời gian giao, nhận', 'Hạn xử lý', 'Thời gian hoàn thành', 'Kết quả'];
    const rows = list.map((s, i) => h('tr', { dataset: { step: s.spec_name, agency: s.agency || '' } },
      h('td', String(i + 1)),
      h('td', s.title),
      // one child in the cell, so that a phone's card keeps the hand-over beside its label
      interAgency ? h('td', h('span', nameOf(s.agency), s.handed_over_from
        ? h('span.muted.small.handover', `Nhận bàn giao từ ${nameOf(s.handed_over_from)}`)
        : null)) : null,
      h('td', s.completed_by_name || s.completed_by || s.claimed_by || (s.roles || []).join(', ') || '—'),
      h('td', dt(s.created_at)),
      h('td', dt(s.due_at)),
      h('td', s.completed_at ? dt(s.completed_at) : '—'),
      h('td', verdict(s, now))));
    const control = table(headers, rows, { class: 'stack.control-table', empty: 'Chưa có bước nào.' });
    control.id = 'control-table';
    document.title = `Phiếu kiểm soát ${d.code}`;
    mount($('#slip'),
      header(steps && steps.agency_name, d.agency),
      h('h1.slip-title', 'PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ'),
      h('p.slip-code', 'Mã hồ sơ: ', h('strong', d.code)),
      h('dl.slip-lines',
        h('dt', 'Thủ tục'), h('dd', `${proc.name || d.procedure_code} (${d.procedure_code})`),
        h('dt', 'Người nộp'), h('dd', a.name || '……'),
        h('dt', 'Thời gian nhận hồ sơ'), h('dd', dt(d.received_at)),
        h('dt', 'Thời gian hẹn trả kết quả'), h('dd', dt(d.due_at)),
        h('dt', 'Thời hạn giải quyết'), h('dd', deadlineText(proc)),
        interAgency ? [h('dt', 'Số lần bàn giao giữa các cơ quan'),
          h('dd#control-handovers', String(list.filter((s) => s.handed_over_from).length))] : null),
      control,
      agencySharesTable(shares, nameOf, steps && steps.elapsed_working_hours),
      (steps && steps.documents && steps.documents.length)
        ? h('div#control-documents', h('h2.slip-subtitle', 'Thành phần hồ sơ'), documentsTable(steps.documents)) : null,
      h('p.muted.small', `In lúc ${dt(new Date(serverNow()).toISOString())}.`));
  }).catch((err) => flash(err.status === 404 ? `Không tìm thấy hồ sơ ${code}.` : `Không tải được hồ sơ: ${err.message}`, 'error'));
}
