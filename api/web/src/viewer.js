// A procedure, read-only: its metadata, steps, versions, and the diagram (NavigatedViewer) with live
// counts per step (ready tasks, overdue ones) from GET /api/v1/procedures/{code}/counts.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';
import { api, hasRole } from './lib/api.js';
import { $, h, mount, dt, flash, table, money, LEVEL_VI, deadlineVi } from './lib/ui.js';
import { initLayout, requireLogin } from './pages/common.js';

function start() {
  initLayout();
  const user = requireLogin();
  if (!user) return;
  const code = document.body.dataset.code;
  const viewer = new NavigatedViewer({ container: '#canvas', moddleExtensions: { camunda: camundaModdle } });
  const overlays = viewer.get('overlays');
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  window.motcua = { viewer };

  async function loadCounts() {
    try {
      const c = await api(`procedures/${encodeURIComponent(code)}/counts`);
      overlays.remove({ type: 'count' });
      const counts = c.counts || {};
      let total = 0;
      let waiting = 0;
      for (const [id, n] of Object.entries(counts)) {
        if (!registry.get(id)) continue;
        total += n.ready || 0;
        if (n.waiting) {
          // dossiers waiting at a message catch event (payment, supplement)
          waiting += n.waiting;
          overlays.add(id, 'count', {
            position: { top: -24, left: 0 },
            html: h('div.count-badge.waiting', {
              title: `${n.waiting} hồ sơ đang chờ tại đây`,
              dataset: { element: id, waiting: n.waiting },
            }, `${n.waiting} hồ sơ chờ`),
          });
          if (!n.ready) continue;
        }
        overlays.add(id, 'count', {
          position: { top: -24, left: 0 },
          html: h(`div.count-badge${n.overdue ? '.overdue' : ''}`, {
            title: `${n.ready} việc đang chờ${n.overdue ? `, ${n.overdue} quá hạn` : ''}`,
            dataset: { element: id, ready: n.ready, overdue: n.overdue || 0 },
          }, `${n.ready} việc`, n.overdue ? h('span', ` · ${n.overdue} quá hạn`) : null),
        });
      }
      const waits = waiting ? ` · ${waiting} hồ sơ chờ nộp lệ phí/bổ sung` : '';
      $('#counts-info').textContent = `${total} việc đang chờ xử lý${waits} · cập nhật lúc ${dt(c.now || new Date().toISOString())}`;
    } catch (err) {
      $('#counts-info').textContent = `Không tải được số việc: ${err.message}`;
    }
  }

  (async () => {
    try {
      const [d, diagram] = await Promise.all([
        api(`procedures/${encodeURIComponent(code)}`),
        api(`procedures/${encodeURIComponent(code)}/diagram`, { headers: { Accept: 'application/xml, application/json' } }),
      ]);
      const meta = d.meta || d;
      document.title = `${d.name} (${d.code})`;
      mount($('#proc-head'),
        h('h1', d.name, ' ', h('small.muted', d.code)),
        h('dl.facts',
          h('dt', 'Cơ quan'), h('dd', d.agency || meta.agency || '—'),
          h('dt', 'Thời hạn'), h('dd', deadlineVi(d.deadline || meta.deadline)),
          h('dt', 'Giờ chốt'), h('dd', d.cutoff || meta.cutoff || '—'),
          h('dt', 'Lệ phí'), h('dd', money(d.fee ?? meta.fee)),
          h('dt', 'Mức độ'), h('dd', LEVEL_VI[d.level || meta.level] || String(d.level || meta.level || '—')),
          h('dt', 'Phiên bản hiện tại'), h('dd', `v${d.version ?? d.current_version}`)),
        hasRole(user, 'analyst') ? h('p', h('a.btn', { href: `/modeler/${encodeURIComponent(d.code)}` }, 'Sửa sơ đồ trong trình soạn thảo')) : null);
      const xml = typeof diagram === 'string' ? diagram : (diagram.xml || diagram.bpmn_xml || diagram.diagram);
      await viewer.importXML(xml);
      canvas.zoom('fit-viewport', 'auto');
      const vb = canvas.viewbox();
      const pad = 24 / vb.scale;
      canvas.viewbox({ x: vb.x - pad, y: vb.y - pad, width: vb.width + 2 * pad, height: vb.height + 2 * pad });
      const tasks = d.user_tasks || d.tasks || [];
      mount($('#steps'), h('h2', 'Các bước người dùng'), h('div.table-wrap', { tabIndex: 0, role: 'region', 'aria-label': 'Các bước người dùng' }, table(['Bước', 'Vai trò', 'Biểu mẫu', 'Thời hạn bước'],
        tasks.map((t) => h('tr', { dataset: { element: t.id } },
          h('td', t.name || t.id),
          h('td', (t.roles || []).join(', ') || t.assignee || '—'),
          h('td', t.form_key || '—'),
          h('td', deadlineVi(t.deadline)))))));
      const versions = d.versions || [];
      mount($('#versions'), h('h2', 'Lịch sử phiên bản'), h('div.table-wrap', { tabIndex: 0, role: 'region', 'aria-label': 'Lịch sử phiên bản' }, table(['Phiên bản', 'Triển khai lúc', 'Người triển khai'],
        [...versions].sort((a, b) => b.version - a.version).map((v) => h(`tr${v.version === (d.version ?? d.current_version) ? '.current' : ''}`,
          { title: v.filename || '', dataset: { version: v.version } },
          h('td', `v${v.version} `, v.version === (d.version ?? d.current_version) ? h('span.badge.status-received', 'hiện hành') : null),
          h('td', dt(v.deployed_at)),
          h('td', v.deployed_by || '—'))), { empty: 'Chưa có phiên bản.' })));
      await loadCounts();
      document.body.dataset.ready = 'true';
    } catch (err) {
      flash(err.status === 404 ? `Không có thủ tục ${code}.` : `Không tải được thủ tục: ${err.message}`, 'error');
    }
  })();
  $('#refresh-counts').addEventListener('click', loadCounts);
  setInterval(() => { if (!document.hidden) loadCounts(); }, 30000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
