// Lists at a province's volumes: a pager for a server-paged list, and a procedure picker that searches the
// catalogue on the server (one page of matches at a time) instead of fetching every procedure.
import { api, itemsOf } from './api.js';
import { h, mount } from './ui.js';

/** A page of at most this many rows is all any page asks for (engine/paging.py caps lists at 100). */
export const PER_PAGE = 25;
export const PICKER_SIZE = 20;

/** ← Trước · Trang k/n (total) · Sau →, or nothing when everything fits on one page. */
export function pager({ page, perPage, total, onGo, label = 'Phân trang', id }) {
  const pages = Math.max(1, Math.ceil((total || 0) / perPage));
  if (pages <= 1) return null;
  return h('nav.pager', { 'aria-label': label, id, dataset: { page: String(page), pages: String(pages) } },
    h('button.btn.btn-small.pager-prev', { type: 'button', disabled: page <= 1, onclick: () => onGo(page - 1) }, '← Trước'),
    h('span.pager-at', { 'aria-live': 'polite' }, ` Trang ${page}/${pages} (${Number(total).toLocaleString('vi-VN')}) `),
    h('button.btn.btn-small.pager-next', { type: 'button', disabled: page >= pages, onclick: () => onGo(page + 1) }, 'Sau →'));
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/**
 * A <select> of procedures filled from the server: one page of the catalogue matching what is typed in
 * `search` (a code prefix or part of the name). `value` is kept selected (fetched by its code when it is not
 * among the matches). Returns {ready, setValue(code)}; `ready` resolves after the first page arrived.
 */
export function procedurePicker({ search, select, emptyLabel = '— Chọn thủ tục —', value = '', status, onChange }) {
  let wanted = value || '';
  let seq = 0;

  async function fill(q) {
    const mine = ++seq;
    const params = new URLSearchParams({ per_page: String(PICKER_SIZE) });
    if (q) params.set('q', q);
    const data = await api(`procedures?${params}`);
    if (mine !== seq) return;
    const procs = itemsOf(data, 'procedures');
    const current = wanted;
    const label = (p) => `${p.code} — ${p.name}${p.agency ? ` (${p.agency})` : ''}`;
    const options = procs.map((p) => h('option', { value: p.code }, label(p)));
    if (current && !procs.some((p) => p.code === current)) {
      // the chosen procedure stays choosable (with its name) whatever the matches are
      let chosen = null;
      try {
        const one = await api(`procedures?${new URLSearchParams({ q: current, per_page: '1' })}`);
        chosen = itemsOf(one, 'procedures').find((p) => p.code === current);
      } catch (e) { /* its code alone */ }
      if (mine !== seq) return;
      options.unshift(h('option', { value: current }, chosen ? label(chosen) : current));
    }
    mount(select, h('option', { value: '' }, emptyLabel), options);
    select.value = current;
    const total = data.total ?? procs.length;
    if (status) {
      status.textContent = q
        ? `${total.toLocaleString('vi-VN')} thủ tục khớp${total > procs.length ? `, hiện ${procs.length} đầu tiên` : ''}`
        : `${total.toLocaleString('vi-VN')} thủ tục; gõ mã hoặc tên để tìm`;
    }
  }

  if (search) {
    search.addEventListener('input', debounce(() => { fill(search.value.trim()).catch(() => {}); }, 250));
    search.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown' || ev.key === 'Enter') {
        ev.preventDefault();
        select.focus();
      }
    });
  }
  select.addEventListener('change', () => { wanted = select.value; if (onChange) onChange(select.value); });
  const ready = fill(search ? search.value.trim() : '');
  return {
    ready,
    setValue(code) { wanted = code || ''; return fill(search ? search.value.trim() : ''); },
  };
}
