// How values are written for people, in one place: dates dd/mm/yyyy (UTC+7), amounts "20.000 ₫", numbers
// with Vietnamese separators, yes/no — all through the browser's Intl. The labels, choice titles and document
// names come already resolved from the server (`data_view` of GET /api/v1/dossiers/{code}, built by
// forms/display.py from the procedure's forms); this module only writes them out.
import { h, dt } from './ui.js';

const money = new Intl.NumberFormat('vi-VN', { style: 'currency', currency: 'VND', maximumFractionDigits: 0 });
const number = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 6 });
const plainDate = new Intl.DateTimeFormat('vi-VN', { timeZone: 'UTC', day: '2-digit', month: '2-digit', year: 'numeric' });

/** 20000 → "20.000 ₫"; 0 → "Miễn phí" when `free` is given. */
export function formatMoney(v, { free } = {}) {
  if (v === undefined || v === null || v === '') return '—';
  const n = Number(v);
  if (Number.isNaN(n)) return String(v);
  if (n === 0 && free) return free;
  return money.format(n);
}

export function formatNumber(v) {
  const n = Number(v);
  return Number.isNaN(n) ? String(v) : number.format(n);
}

/** "2026-02-10" (a calendar date, no time zone) → "10/02/2026". */
export function formatDate(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(v || ''));
  if (!m) return v ? String(v) : '—';
  return plainDate.format(new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))));
}

/** A date-time: with an offset → shown in UTC+7; without one (datetime-local) → as written. */
export function formatDateTime(v) {
  const s = String(v || '');
  if (/[zZ]$|[+-]\d{2}:?\d{2}$/.test(s)) return dt(s);
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})/.exec(s);
  return m ? `${m[2]}:${m[3]} ${formatDate(m[1])}` : (s || '—');
}

export function formatTime(v) {
  const m = /^(\d{2}):(\d{2})/.exec(String(v || ''));
  return m ? `${m[1]}:${m[2]}` : String(v || '—');
}

/** One labelled field's value as text (kinds of forms/display.py). */
export function fieldText(f) {
  switch (f.kind) {
    case 'choice': case 'document': return f.text;
    case 'choices': case 'documents': return (f.texts || []).join('; ') || '—';
    case 'date': return formatDate(f.value);
    case 'datetime': return formatDateTime(f.value);
    case 'time': return formatTime(f.value);
    case 'money': return formatMoney(f.value);
    case 'number': return formatNumber(f.value);
    case 'boolean': return f.value ? 'Có' : 'Không';
    case 'empty': return '—';
    case 'text': return f.value === '' ? '—' : String(f.value);
    default: return JSON.stringify(f.value);
  }
}

function staffMark(f) {
  return f.staff_only
    ? h('span.badge.badge-staff', { title: 'Chỉ cán bộ xem được, không hiển thị cho người nộp / staff only' }, 'Nội bộ')
    : null;
}

function fieldValue(f) {
  if (f.kind === 'group') return h('dl.facts.nested', (f.fields || []).map((x) => [h('dt', x.label), h('dd', fieldValue(x))]));
  if (f.kind === 'rows') {
    return h('div.table-wrap', { tabIndex: 0, role: 'region', 'aria-label': f.label }, h('table.table.rows-table',
      h('thead', h('tr', f.columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', f.rows.map((row) => h('tr', row.map((cell) => h('td', { dataset: { label: cell.label } }, fieldValue(cell))))))));
  }
  if (f.kind === 'choices' || f.kind === 'documents') {
    return (f.texts || []).length ? h('ul.plain', f.texts.map((t) => h('li', t))) : '—';
  }
  return fieldText(f);
}

/** The sections of `data_view` as definition lists; staff-only fields carry a "Nội bộ" badge. */
export function renderDataView(sections) {
  return (sections || []).map((sec) => h('section.data-section', { dataset: { form: sec.form || '' } },
    h('h3', sec.title || 'Dữ liệu khác'),
    h('dl.facts', sec.fields.map((f) => [
      h('dt', { dataset: { key: f.key } }, f.label, ' ', staffMark(f)),
      h('dd', { dataset: { key: f.key, kind: f.kind } }, fieldValue(f)),
    ]))));
}
