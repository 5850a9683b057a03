// Citizens online, made for phones: find a procedure, fill its form, attach documents, submit; sign in by a
// code sent by SMS (or the national identity); my dossiers; supplement; pay; download the result.
// The citizen's token is kept in sessionStorage under its own key, apart from an officer's.
import { api, ApiError } from '../lib/api.js';
import { renderAnyForm } from '../lib/form.js';
import { formatMoney, renderDataView } from '../lib/display.js';
import { $, h, mount, dt, flash, clearFlash, statusBadge } from '../lib/ui.js';
import { PER_PAGE, pager } from '../lib/lists.js';

const KEY = 'motcua.citizen';

function citizenToken() {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    const t = JSON.parse(raw);
    if (t.expires_at && t.expires_at < Date.now()) {
      sessionStorage.removeItem(KEY);
      return null;
    }
    return t;
  } catch (e) {
    return null;
  }
}

function saveCitizen(answer) {
  const expires = Date.now() + (Number(answer.expires_in) || 900) * 1000;
  sessionStorage.setItem(KEY, JSON.stringify({
    token: answer.access_token, phone: answer.phone || null, id_number: answer.id_number || null,
    name: answer.name || null, expires_at: expires,
  }));
}

/** A call as the signed-in citizen (or anonymous): never the officer's token, never the officer's login page. */
function capi(path, opts = {}) {
  const t = citizenToken();
  const headers = Object.assign({}, opts.headers || {});
  if (t && !opts.noCitizen) headers.Authorization = `Bearer ${t.token}`;
  return api(path, Object.assign({}, opts, { headers, anonymous: true, noRedirect: true }));
}

function requireCitizen() {
  const t = citizenToken();
  if (!t) {
    location.replace(`/cong-dan/dang-nhap?next=${encodeURIComponent(location.pathname)}`);
    return null;
  }
  return t;
}

const money = (n) => formatMoney(n || 0);

// -- catalogue ---------------------------------------------------------------------------------------
export function citizenHomePage() {
  if (citizenToken()) $('#citizen-signin-link').hidden = true;
  const out = $('#catalogue');
  let page = 1;
  async function load() {
    const q = $('#q').value.trim();
    const params = new URLSearchParams({ page: String(page), per_page: '20' });
    if (q) params.set('q', q);
    mount(out, h('p.muted', 'Đang tải…'));
    try {
      const data = await capi(`public/procedures?${params}`, { noCitizen: true });
      const onlineOnly = $('#online-only').checked;
      const items = data.items.filter((p) => !onlineOnly || p.online);
      mount(out, items.length ? h('ul.procedure-list', items.map((p) => h('li.card.procedure-item',
        h('h2', h('a', { href: `/cong-dan/thu-tuc/${encodeURIComponent(p.code)}` }, p.name)),
        h('p.muted', `${p.code} · ${p.agency || ''}`),
        h('p', p.level_label || '', ' · Thời hạn: ', p.deadline || '—', ' · Lệ phí: ', p.fee ? money(p.fee) : 'Miễn phí'),
        p.online ? h('a.btn.btn-primary', { href: `/cong-dan/thu-tuc/${encodeURIComponent(p.code)}#nop` }, 'Nộp trực tuyến') : null)))
        : h('p.muted', 'Không tìm thấy thủ tục phù hợp.'));
      const pages = Math.max(1, Math.ceil(data.total / data.per_page));
      mount($('#catalogue-pager'), pages > 1 ? [
        h('button.btn', { type: 'button', disabled: page <= 1, onclick: () => { page -= 1; load(); } }, '‹ Trước'),
        ` Trang ${page}/${pages} `,
        h('button.btn', { type: 'button', disabled: page >= pages, onclick: () => { page += 1; load(); } }, 'Sau ›')] : null);
    } catch (err) {
      mount(out);
      flash(`Không tải được danh mục: ${err.message}`, 'error');
    }
  }
  $('#catalogue-form').addEventListener('submit', (ev) => { ev.preventDefault(); page = 1; load(); });
  load();
}

// -- one procedure: facts, the applicant's form, documents, submit --------------------------------------
export function citizenProcedurePage() {
  const code = document.body.dataset.code;
  let form = null;
  let proc = null;
  async function load() {
    try {
      proc = await capi(`public/procedures/${encodeURIComponent(code)}`, { noCitizen: true });
    } catch (err) {
      flash(err.status === 404 ? 'Không tìm thấy thủ tục.' : err.message, 'error');
      return;
    }
    document.title = proc.name;
    mount($('#procedure'), h('article.card',
      h('h1', proc.name),
      h('dl.facts',
        h('dt', 'Mã thủ tục'), h('dd', proc.code),
        h('dt', 'Cơ quan giải quyết'), h('dd', proc.agency || '—'),
        h('dt', 'Thời hạn giải quyết'), h('dd', proc.deadline || '—'),
        h('dt', 'Lệ phí'), h('dd', proc.fee ? money(proc.fee) : 'Miễn phí'),
        h('dt', 'Mức độ'), h('dd', proc.level_label || proc.level || '—')),
      h('h2', 'Trình tự thực hiện'),
      h('ol', proc.steps.map((s) => h('li', s.name, s.deadline ? h('span.muted', ` (${s.deadline})`) : null))),
      h('h2', 'Thành phần hồ sơ'),
      h('ul', proc.documents.map((d) => h('li', d.name, d.required ? h('span.req', ' (bắt buộc)') : h('span.muted', ' (nếu có)')))),
      proc.forms.length ? h('p', h('a.btn#download-form', { href: `/api/v1/public/procedures/${encodeURIComponent(code)}/${proc.forms[0].download}` }, 'Tải biểu mẫu'), ' ',
        h('button.btn', { type: 'button', 'data-print': '', onclick: () => window.print() }, 'In tờ khai')) : null,
      !proc.online ? h('p.alert.alert-info', 'Thủ tục này chưa nhận hồ sơ trực tuyến; vui lòng nộp tại bộ phận một cửa.') : null));
    if (!proc.online) return;
    const t = citizenToken();
    if (t && t.phone) $('#a-phone').value = t.phone;
    if (t && t.name) $('#a-name').value = t.name;
    if (t && t.id_number) $('#a-id').value = t.id_number;
    $('#submit-form').hidden = false;
    if (proc.form && proc.form.schema && Object.keys(proc.form.schema.properties || {}).length) {
      const holder = $('#applicant-form');
      mount(holder, h('h3', 'Thông tin khai'));
      const inner = h('div');
      holder.appendChild(inner);
      form = await renderAnyForm(inner, { schema: proc.form.schema, uiSchema: proc.form.ui_schema });
    }
    mount($('#documents'), proc.documents.length ? [h('h3', 'Đính kèm giấy tờ (PDF, JPEG, PNG)'),
      proc.documents.map((d) => h('div.field', { dataset: { field: d.key } },
        h('label', { for: `doc-${d.key}` }, d.name, d.required ? h('span.req', ' *') : null),
        h('input', { type: 'file', id: `doc-${d.key}`, name: d.key, accept: (d.accept || []).join(',') }),
        h('p.field-error', { hidden: true })))] : null);
    if (location.hash === '#nop') $('#submit-form').scrollIntoView();
  }

  function showErrors(fields) {
    const applicantInputs = { 'applicant.name': '#a-name', 'applicant.phone': '#a-phone', 'applicant.id_number': '#a-id', 'applicant.email': '#a-email' };
    const formFields = {};
    for (const [k, msg] of Object.entries(fields || {})) {
      let wrap = null;
      if (applicantInputs[k]) wrap = $(applicantInputs[k]).closest('.field');
      else if ($(`#documents [data-field="${k}"]`)) wrap = $(`#documents [data-field="${k}"]`);
      if (wrap) {
        const e = wrap.querySelector('.field-error');
        e.textContent = msg;
        e.hidden = false;
      } else {
        formFields[k] = msg;
      }
    }
    if (form) form.setErrors(formFields);
  }

  async function submit(ev) {
    ev.preventDefault();
    clearFlash();
    for (const e of document.querySelectorAll('#submit-form .field-error')) { e.hidden = true; e.textContent = ''; }
    const data = form ? form.getData() : {};
    if (form) {
      const missing = form.checkRequired();
      if (Object.keys(missing).length) {
        form.setErrors(missing);
        flash('Vui lòng điền các trường bắt buộc (đánh dấu *).', 'error');
        return;
      }
    }
    const applicant = { name: $('#a-name').value.trim(), phone: $('#a-phone').value.trim() };
    if ($('#a-id').value.trim()) applicant.id_number = $('#a-id').value.trim();
    if ($('#a-email').value.trim()) applicant.email = $('#a-email').value.trim();
    const body = new FormData();
    body.append('payload', JSON.stringify({ procedure_code: code, applicant, data }));
    for (const input of document.querySelectorAll('#documents input[type=file]')) {
      if (input.files.length) body.append(input.name, input.files[0]);
    }
    const btn = $('#submit');
    btn.disabled = true;
    try {
      const d = await capi('public/dossiers', { method: 'POST', form: body });
      $('#submit-form').hidden = true;
      mount($('#submitted'), h('div.card.alert.alert-success#submitted-ok', { role: 'status' },
        h('h2', 'Đã nộp hồ sơ'),
        h('p', 'Mã hồ sơ: ', h('strong.code#dossier-code', d.code)),
        h('p', 'Trạng thái: ', statusBadge(d.status, d.status_label)),
        h('p', 'Hãy ghi lại mã hồ sơ. Cán bộ một cửa sẽ kiểm tra và thông báo cho bạn qua tin nhắn.'),
        h('p', h('a.btn.btn-primary', { href: citizenToken() ? `/cong-dan/ho-so/${encodeURIComponent(d.code)}` : '/cong-dan/dang-nhap' },
          citizenToken() ? 'Xem hồ sơ' : 'Đăng nhập để theo dõi hồ sơ'))));
    } catch (err) {
      btn.disabled = false;
      if (err.status === 422) {
        showErrors(err.fields);
        flash(`Hồ sơ chưa hợp lệ: ${err.message}`, 'error');
      } else {
        flash(err.message, 'error');
      }
    }
  }
  $('#submit-form').addEventListener('submit', submit);
  load();
}

// -- sign in -------------------------------------------------------------------------------------------
export function citizenSigninPage() {
  const params = new URLSearchParams(location.search);
  const next = params.get('next') && params.get('next').startsWith('/cong-dan') ? params.get('next') : '/cong-dan/ho-so';
  if (location.hash.includes('access_token=')) {
    const f = new URLSearchParams(location.hash.slice(1));
    saveCitizen({ access_token: f.get('access_token'), expires_in: f.get('expires_in'), id_number: f.get('id_number'), name: f.get('name') });
    history.replaceState(null, '', location.pathname);
    location.replace(next);
    return;
  }
  let phone = '';
  $('#otp-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFlash();
    try {
      const r = await capi('public/otp', { method: 'POST', json: { phone: $('#phone').value.trim() }, noCitizen: true });
      phone = r.phone;
      $('#verify-form').hidden = false;
      $('#code').focus();
      flash(`Đã gửi mã xác thực đến ${r.phone}; mã có hiệu lực ${Math.round(r.expires_in / 60)} phút.`, 'success');
    } catch (err) {
      flash(err.message, 'error');
    }
  });
  $('#verify-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFlash();
    try {
      const r = await capi('public/otp/verify', { method: 'POST', json: { phone, code: $('#code').value.trim() }, noCitizen: true });
      saveCitizen(r);
      location.href = next;
    } catch (err) {
      flash(err.message, 'error');
    }
  });
}

// -- my dossiers -----------------------------------------------------------------------------------------
export function citizenDossiersPage() {
  if (!requireCitizen()) return;
  $('#citizen-signout').addEventListener('click', () => { sessionStorage.removeItem(KEY); location.href = '/cong-dan'; });
  let page = 1;
  const load = () => capi(`public/my/dossiers?page=${page}&per_page=${PER_PAGE}`).then((data) => {
    mount($('#my-dossiers'), data.items.length ? h('ul.procedure-list', data.items.map((d) => h('li.card',
      h('h2', h('a', { href: `/cong-dan/ho-so/${encodeURIComponent(d.code)}` }, d.code)),
      h('p', d.procedure_name || d.procedure_code),
      h('p', statusBadge(d.status, d.status_label), ' · Nộp lúc ', dt(d.received_at)))))
      : h('p.muted', 'Chưa có hồ sơ nào gắn với số điện thoại hoặc số định danh của bạn.'),
    pager({ page, perPage: PER_PAGE, total: data.total, id: 'my-dossiers-pager', onGo: (n) => { page = n; load(); } }));
  }).catch((err) => {
    if (err.status === 401) { sessionStorage.removeItem(KEY); requireCitizen(); return; }
    flash(err.message, 'error');
  });
  load();
}

async function downloadFile(code, f) {
  const t = citizenToken();
  const res = await fetch(`/api/v1/public/my/dossiers/${encodeURIComponent(code)}/files/${f.id}`, {
    headers: { Authorization: `Bearer ${t.token}` },
  });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: f.filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function citizenDossierPage() {
  if (!requireCitizen()) return;
  const code = document.body.dataset.code;
  async function load(message) {
    let d;
    try {
      d = await capi(`public/my/dossiers/${encodeURIComponent(code)}`);
    } catch (err) {
      if (err.status === 401) { sessionStorage.removeItem(KEY); requireCitizen(); return; }
      flash(err.status === 404 ? 'Không tìm thấy hồ sơ của bạn có mã này.' : err.message, 'error');
      return;
    }
    const fileList = (files, id) => h(`ul#${id}`, files.map((f) => h('li',
      f.document_name ? h('span', `${f.document_name}: `) : null,
      h('button.btn.btn-link', { type: 'button', onclick: () => downloadFile(code, f).catch((e) => flash(e.message, 'error')) }, f.filename),
      h('span.muted', ` (${Math.ceil(f.size / 1024)} KB)`))));
    const pending = (d.payments || []).find((p) => p.status === 'pending');
    const paid = (d.payments || []).filter((p) => p.status === 'paid');
    mount($('#my-dossier'),
      h('article.card',
        h('h1', 'Hồ sơ ', h('span.code', d.code)),
        h('p#dossier-status', statusBadge(d.status, d.status_label)),
        h('dl.facts',
          h('dt', 'Thủ tục'), h('dd', d.procedure_name || d.procedure_code),
          h('dt', 'Ngày nộp'), h('dd', dt(d.received_at)),
          h('dt', 'Ngày hẹn trả'), h('dd', dt(d.due_at)),
          h('dt', 'Người nộp'), h('dd', d.applicant.name))),
      d.status === 'payment_required' && pending ? h('section.card#pay-box',
        h('h2', 'Nộp lệ phí'),
        h('p', 'Số tiền: ', h('strong', money(pending.amount))),
        h('button.btn.btn-primary.btn-block#pay', { type: 'button', onclick: pay }, 'Thanh toán trực tuyến')) : null,
      paid.length ? h('section.card#receipts', h('h2', 'Biên lai'), h('ul', paid.map((p) => h('li',
        `Biên lai ${p.receipt_no}: ${money(p.amount)}, lúc ${dt(p.paid_at)}`)))) : null,
      d.can_supplement ? h('section.card#supplement-box',
        h('h2', 'Bổ sung giấy tờ'),
        d.supplement_request ? h('p', 'Yêu cầu: ', h('strong', d.supplement_request.reason || ''),
          (d.supplement_request.documents || []).length ? ` (${d.supplement_request.documents.join('; ')})` : '') : null,
        h('form#supplement-form.form', { onsubmit: supplement },
          h('div.field', h('label', { for: 'supplement-key' }, 'Loại giấy tờ'),
            h('select#supplement-key', (d.checklist || DOCS).map((x) => h('option', { value: x.key }, x.name)))),
          h('div.field', h('label', { for: 'supplement-file' }, 'Tệp (PDF, JPEG, PNG)'), h('input#supplement-file', { type: 'file', required: true })),
          h('button.btn.btn-primary.btn-block#send-supplement', { type: 'submit' }, 'Gửi giấy tờ bổ sung'))) : null,
      (d.data_view || []).length ? h('section.card#my-data', h('h2', 'Thông tin đã khai'), renderDataView(d.data_view)) : null,
      d.result_files.length ? h('section.card#results', h('h2', 'Kết quả điện tử'), fileList(d.result_files, 'result-files')) : null,
      d.documents.length ? h('section.card', h('h2', 'Giấy tờ đã nộp'), fileList(d.documents, 'my-documents')) : null,
      h('section.card', h('h2', 'Các bước xử lý'), h('ol.timeline', d.steps.map((s) => h('li.timeline-item',
        h('strong', s.name), ' ', s.completed_at ? h('span.badge.status-returned', 'Đã xong')
          : (s.state === 'waiting' ? h('span.badge.status-payment_required', 'Đang chờ bạn') : h('span.badge.status-in_process', 'Đang xử lý')))))),
      d.can_withdraw ? h('section.card', h('details', h('summary', 'Rút hồ sơ'),
        h('form#withdraw-form.form', { onsubmit: withdraw },
          h('div.field', h('label', { for: 'withdraw-reason' }, 'Lý do rút hồ sơ'), h('textarea#withdraw-reason', { required: true, maxlength: 2000 })),
          h('button.btn#withdraw', { type: 'submit' }, 'Rút hồ sơ')))) : null);
    if (message) flash(message, 'success');
  }
  let DOCS = [];
  async function pay() {
    clearFlash();
    try {
      const r = await capi(`public/my/dossiers/${encodeURIComponent(code)}/payment`, { method: 'POST', json: {} });
      location.href = r.payment_url;
    } catch (err) {
      flash(err.message, 'error');
    }
  }
  async function supplement(ev) {
    ev.preventDefault();
    clearFlash();
    const input = $('#supplement-file');
    if (!input.files.length) { flash('Vui lòng chọn tệp.', 'error'); return; }
    const body = new FormData();
    body.append($('#supplement-key').value, input.files[0]);
    try {
      await capi(`public/my/dossiers/${encodeURIComponent(code)}/supplement`, { method: 'POST', form: body });
      await load('Đã gửi giấy tờ bổ sung; cán bộ một cửa sẽ kiểm tra.');
    } catch (err) {
      flash(err.message, 'error');
    }
  }
  async function withdraw(ev) {
    ev.preventDefault();
    clearFlash();
    try {
      await capi(`public/my/dossiers/${encodeURIComponent(code)}/withdraw`, { method: 'POST', json: { reason: $('#withdraw-reason').value.trim() } });
      await load('Đã rút hồ sơ.');
    } catch (err) {
      flash(err.message, 'error');
    }
  }
  // the documents checklist names the files a supplement may carry
  capi(`public/my/dossiers/${encodeURIComponent(code)}`).then((d) => capi(`public/procedures/${encodeURIComponent(d.procedure_code)}`, { noCitizen: true }))
    .then((p) => { DOCS = p.documents; load(); })
    .catch(() => load());
}
