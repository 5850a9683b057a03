// Small DOM and formatting helpers shared by every page. Dates shown to people are in UTC+7.
import { serverNow } from './api.js';
import { formatMoney } from './display.js';

export const TZ = 'Asia/Ho_Chi_Minh';

/** h('div.card#x', {onclick}, children...) → Element. Strings become text nodes (never HTML). */
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(tag) || [];
  const el = document.createElement(m[1] || 'div');
  for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

export function $$(sel, root = document) {
  return Array.from(root.querySelectorAll(sel));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const fmtDateTime = new Intl.DateTimeFormat('vi-VN', {
  timeZone: TZ, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
});
const fmtDate = new Intl.DateTimeFormat('vi-VN', { timeZone: TZ, day: '2-digit', month: '2-digit', year: 'numeric' });
const fmtParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: TZ, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
});

function parts(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  const p = {};
  for (const { type, value } of fmtParts.formatToParts(d)) p[type] = value;
  return p;
}

/** "14:05 ngày 25/02/2026" style: HH:MM dd/mm/yyyy (UTC+7). */
export function dt(iso) {
  if (!iso) return '—';
  const p = parts(iso);
  if (!p) return String(iso);
  return `${p.hour === '24' ? '00' : p.hour}:${p.minute} ${p.day}/${p.month}/${p.year}`;
}

export function dateOnly(iso) {
  if (!iso) return '—';
  const p = parts(iso);
  return p ? `${p.day}/${p.month}/${p.year}` : String(iso);
}

/** Spoken form for slips: "14 giờ 05 phút, ngày 25 tháng 02 năm 2026". */
export function dtLong(iso) {
  if (!iso) return '……';
  const p = parts(iso);
  if (!p) return String(iso);
  return `${p.hour === '24' ? '00' : p.hour} giờ ${p.minute} phút, ngày ${p.day} tháng ${p.month} năm ${p.year}`;
}

export { fmtDateTime, fmtDate };

/** "2 ngày 3 giờ" from milliseconds (wall-clock, for "how late"). */
export function duration(ms) {
  const neg = ms < 0;
  ms = Math.abs(ms);
  const minutes = Math.floor(ms / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  const out = [];
  if (days) out.push(`${days} ngày`);
  if (hours) out.push(`${hours} giờ`);
  if (!days && mins) out.push(`${mins} phút`);
  return (neg ? '-' : '') + (out.join(' ') || '0 phút');
}

export function lateBy(dueIso, now = serverNow()) {
  if (!dueIso) return 0;
  return now - new Date(dueIso).getTime();
}

export const STATUS_VI = {
  new: 'Mới đăng ký',
  received: 'Được tiếp nhận',
  refused: 'Không được tiếp nhận',
  in_process: 'Đang xử lý',
  supplement_requested: 'Yêu cầu bổ sung giấy tờ',
  payment_required: 'Yêu cầu thực hiện nghĩa vụ tài chính',
  withdrawn: 'Công dân yêu cầu rút hồ sơ',
  stopped: 'Dừng xử lý',
  processed: 'Đã xử lý xong',
  returned: 'Đã trả kết quả',
};

export const CHANNEL_VI = { 1: 'Trực tiếp', 2: 'Trực tuyến', 3: 'Bưu chính' };

export function statusBadge(status, label) {
  return h(`span.badge.status-${status || 'unknown'}`, label || STATUS_VI[status] || status || '—');
}

export function dueCell(iso, overdue, finished) {
  if (!iso) return h('span.muted', 'Không thời hạn');
  const late = lateBy(iso);
  const isLate = overdue !== undefined ? overdue : (!finished && late > 0);
  return h(`span.due${isLate ? '.overdue' : ''}`, { title: isLate ? `Quá hạn ${duration(late)}` : '' },
    dt(iso), isLate ? h('span.badge.badge-danger', `Quá hạn ${duration(late)}`) : null);
}

export const ACTION_VI = {
  'dossier.received': 'Tiếp nhận hồ sơ',
  connector_called: 'Đã gọi hệ thống ngoài (bước dịch vụ)',
  connector_incident: 'Sự cố khi gọi hệ thống ngoài',
  connector_retry: 'Yêu cầu gọi lại hệ thống ngoài',
  'task.claimed': 'Nhận xử lý',
  'task.unclaimed': 'Trả lại việc',
  'task.completed': 'Hoàn thành bước',
  'supplement.requested': 'Yêu cầu bổ sung hồ sơ',
  'supplement.received': 'Nhận hồ sơ bổ sung',
  'dossier.refused': 'Từ chối',
  'dossier.stopped': 'Dừng xử lý',
  'dossier.withdrawn': 'Rút hồ sơ',
  'deadline.extended': 'Xin lỗi, hẹn lại ngày trả',
  'deadline.reminder': 'Nhắc sắp đến hạn',
  'deadline.overdue': 'Quá hạn',
  'timer.fired': 'Hẹn giờ kích hoạt',
  'timer.failed': 'Hẹn giờ lỗi',
  'timer.incident': 'Sự cố hẹn giờ',
};

export function flash(message, kind = 'info', where = document.getElementById('flash')) {
  if (!where) return;
  mount(where, h(`div.alert.alert-${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, message));
  where.scrollIntoView({ block: 'nearest' });
}

export function clearFlash(where = document.getElementById('flash')) {
  if (where) clear(where);
}

export function errorText(err) {
  if (!err) return '';
  return err.message || String(err);
}

export function qs(name) {
  return new URLSearchParams(location.search).get(name);
}

/** A fee: "20.000 ₫", or "Miễn phí" (lib/display.js writes every amount). */
export function money(v) {
  return formatMoney(v, { free: 'Miễn phí' });
}

export function table(headers, rows, opts = {}) {
  // Each cell knows its column's name, so that narrow screens can show rows as cards (CSS .stack).
  for (const row of rows) {
    if (!(row instanceof Element)) continue;
    Array.from(row.children).forEach((td, i) => { if (headers[i] && !td.dataset.label) td.dataset.label = headers[i]; });
  }
  return h(`table.table${opts.class ? '.' + opts.class : ''}`,
    h('thead', h('tr', headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', rows.length ? rows : h('tr', h('td.muted', { colSpan: headers.length }, opts.empty || 'Không có dữ liệu'))));
}

export const LEVEL_VI = { 2: 'Mức 2', 3: 'Mức 3', 4: 'Mức 4', toan_trinh: 'Toàn trình', mot_phan: 'Một phần' };

/** "15 working days" → "15 ngày làm việc" (the product's deadline syntax, read aloud in Vietnamese). */
export function deadlineVi(text) {
  if (!text) return '—';
  const m = /^\s*(\d+(?:[.,]\d+)?)\s*(working days?|working hours?|days?|hours?)\s*$/i.exec(String(text));
  if (!m) return String(text);
  const unit = m[2].toLowerCase();
  const vi = unit.startsWith('working day') ? 'ngày làm việc' : unit.startsWith('working hour') ? 'giờ làm việc'
    : unit.startsWith('day') ? 'ngày' : 'giờ';
  return `${m[1]} ${vi}`;
}
