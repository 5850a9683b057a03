// Charts of the supervisors' board, drawn by Chart.js (bundled from npm, nothing from a CDN). Each chart is a
// <figure> with its canvas (role=img, a spoken summary) and the same figures as a table for screen readers,
// keyboards and print; clicking a bar (or the link in its table row) drills down.
import {
  Chart, BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale,
  Tooltip, Legend, Filler,
} from 'chart.js';
import { h } from './ui.js';
import { formatNumber } from './display.js';

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale,
  Tooltip, Legend, Filler);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font') || 'system-ui, sans-serif';
Chart.defaults.animation = false; // the board refreshes on every filter; no motion needed

/** Charts drawn on the page, by figure id (read by the browser tests and the console). */
export const charts = {};

function figure(id, title, summary, tableEl) {
  const canvas = h('canvas', { role: 'img', 'aria-label': `${title}: ${summary}` });
  const fig = h('figure.chart', { id },
    h('figcaption', title),
    h('div.chart-box', canvas),
    h('details.chart-data', h('summary', 'Xem số liệu dạng bảng'), tableEl));
  return { fig, canvas };
}

function draw(id, canvas, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(canvas, config);
  return charts[id];
}

/**
 * A horizontal stacked bar chart of counts: `entries` [{…}], `label(e)` the bar's name, `series`
 * [{key, label, color}]; `onPick(e)` when a bar or its table link is chosen.
 */
export function barChart(id, title, entries, { label, series, onPick, limit = 15, empty = 'Không có dữ liệu.' }) {
  const shown = entries.slice(0, limit);
  const total = (e) => series.reduce((s, k) => s + (e[k.key] || 0), 0);
  const tableEl = h('table.table.chart-table',
    h('thead', h('tr', h('th', { scope: 'col' }, 'Tên'), series.map((k) => h('th.num', { scope: 'col' }, k.label)))),
    h('tbody', entries.length ? entries.map((e) => h('tr', { dataset: { name: label(e) } },
      h('th', { scope: 'row' }, onPick ? h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); onPick(e); } }, label(e)) : label(e)),
      series.map((k) => h('td.num', formatNumber(e[k.key] || 0)))))
      : h('tr', h('td.muted', { colSpan: series.length + 1 }, empty))));
  const summary = entries.length
    ? shown.map((e) => `${label(e)} ${total(e)}`).join(', ')
    : empty;
  const { fig, canvas } = figure(id, title, summary, tableEl);
  fig.querySelector('.chart-box').style.height = `${Math.max(120, 28 * shown.length + 60)}px`;
  // drawn once the figure is in the page (Chart.js measures its box)
  fig.draw = () => draw(id, canvas, {
    type: 'bar',
    data: {
      labels: shown.map(label),
      datasets: series.map((k) => ({ label: k.label, data: shown.map((e) => e[k.key] || 0), backgroundColor: k.color })),
    },
    options: {
      indexAxis: 'y',
      maintainAspectRatio: false,
      scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } },
      plugins: { legend: { position: 'bottom' } },
      onHover: (ev, els) => { ev.native.target.style.cursor = els.length && onPick ? 'pointer' : 'default'; },
      onClick: (ev, els) => { if (els.length && onPick) onPick(shown[els[0].index]); },
    },
  });
  return fig;
}

/** A line chart of the on-time rate (%) by month: `months` [{month: 'YYYY-MM', on_time_rate, completed, …}]. */
export function rateChart(id, title, months) {
  const name = (m) => `${m.month.slice(5, 7)}/${m.month.slice(0, 4)}`;
  const pct = (v) => (v === null || v === undefined ? '—' : `${formatNumber(v)} %`);
  const tableEl = h('table.table.chart-table',
    h('thead', h('tr', ['Tháng', 'Đã giải quyết', 'Trong đó quá hạn', 'Đang giải quyết', 'Đang quá hạn', 'Tỷ lệ đúng hạn']
      .map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', months.map((m) => h('tr', { dataset: { month: m.month } },
      h('th', { scope: 'row' }, name(m)), h('td.num', formatNumber(m.completed)), h('td.num', formatNumber(m.completed_late)),
      h('td.num', formatNumber(m.in_process)), h('td.num', formatNumber(m.in_process_overdue)), h('td.num', pct(m.on_time_rate))))));
  const summary = months.map((m) => `${name(m)}: ${pct(m.on_time_rate)}`).join(', ');
  const { fig, canvas } = figure(id, title, summary, tableEl);
  fig.querySelector('.chart-box').style.height = '260px';
  fig.draw = () => draw(id, canvas, {
    type: 'line',
    data: {
      labels: months.map(name),
      datasets: [{
        label: 'Tỷ lệ đúng hạn (%)', data: months.map((m) => m.on_time_rate), borderColor: '#1f6f43',
        backgroundColor: 'rgba(31,111,67,.12)', fill: true, spanGaps: true, tension: 0.2,
      }],
    },
    options: {
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v} %` } } },
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => pct(c.raw) } } },
    },
  });
  return fig;
}
