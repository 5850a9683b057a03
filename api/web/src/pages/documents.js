// The dossier's documents at the desk: the procedure's checklist with each entry's state, the files of each
// (download, inline preview of PDF and images, removal until intake is completed), and an upload per entry
// by drag and drop or a file picker that opens the camera on a phone (accept + capture).
// Rules (who may upload or remove, the states) are the server's: engine/attachments.py.
import { api, download } from '../lib/api.js';
import { $, h, mount, dt, flash } from '../lib/ui.js';

const STATE_VI = {
  attached: ['Đã có tệp', 'ok'],
  paper: ['Đã nhận bản giấy', 'ok'],
  missing: ['Còn thiếu', 'late'],
  not_given: ['Không nộp (không bắt buộc)', 'muted'],
};
const PREVIEWABLE = ['application/pdf', 'image/jpeg', 'image/png'];

function sizeText(n) {
  if (n >= 1048576) return `${(n / 1048576).toLocaleString('vi-VN', { maximumFractionDigits: 1 })} MB`;
  return `${Math.max(1, Math.round(n / 1024)).toLocaleString('vi-VN')} KB`;
}

/** Fill `box` with the documents panel of dossier `code`; re-renders itself after each change. */
export async function documentsPanel(box, code) {
  const base = `dossiers/${encodeURIComponent(code)}/attachments`;
  let preview = null; // {id, url}

  function closePreview() {
    if (preview) URL.revokeObjectURL(preview.url);
    preview = null;
    const area = $('#doc-preview');
    if (area) { mount(area); area.hidden = true; }
  }

  async function showPreview(a) {
    closePreview();
    const res = await api(`${base}/${a.id}`, { raw: true, headers: { Accept: '*/*' } });
    const blob = new Blob([await res.blob()], { type: a.content_type });
    preview = { id: a.id, url: URL.createObjectURL(blob) };
    const area = $('#doc-preview');
    const title = `Xem trước: ${a.filename}`;
    mount(area,
      h('div.preview-head', h('strong', title),
        h('button.btn.btn-small#doc-preview-close', { type: 'button', onclick: closePreview }, 'Đóng')),
      a.content_type === 'application/pdf'
        ? h('iframe.doc-frame', { src: preview.url, title, dataset: { attachment: String(a.id) } })
        : h('img.doc-image', { src: preview.url, alt: title, dataset: { attachment: String(a.id) } }));
    area.hidden = false;
    area.scrollIntoView({ block: 'nearest' });
  }

  async function upload(files, key) {
    for (const file of files) {
      const fd = new FormData();
      fd.append('file', file, file.name);
      if (key) fd.append('document_key', key);
      try {
        await api(base, { form: fd });
        flash(`Đã tải lên ${file.name}.`, 'success');
      } catch (err) {
        flash(`Không tải lên được ${file.name}: ${err.message}`, 'error');
      }
    }
    await render();
  }

  async function remove(a) {
    if (!confirm(`Xóa tệp ${a.filename}?`)) return;
    try {
      await api(`${base}/${a.id}`, { method: 'DELETE' });
      if (preview && preview.id === a.id) closePreview();
      flash(`Đã xóa ${a.filename}.`, 'success');
    } catch (err) {
      flash(`Không xóa được ${a.filename}: ${err.message}`, 'error');
    }
    await render();
  }

  function fileRow(a, removable) {
    return h('li.doc-file', { dataset: { attachment: String(a.id) } },
      h('span.doc-name', a.filename), ' ',
      h('span.muted.small', `${sizeText(a.size)} · ${dt(a.uploaded_at)}${a.uploaded_by ? ` · ${a.uploaded_by}` : ''}`), ' ',
      h('button.btn.btn-link.btn-small.doc-download', {
        type: 'button',
        onclick: () => download(`/api/v1/${base}/${a.id}`, a.filename).catch((err) => flash(err.message, 'error')),
      }, 'Tải về'),
      PREVIEWABLE.includes(a.content_type)
        ? h('button.btn.btn-link.btn-small.doc-preview', {
          type: 'button', onclick: () => showPreview(a).catch((err) => flash(err.message, 'error')),
        }, 'Xem')
        : null,
      removable && (a.kind || 'document') === 'document'
        ? h('button.btn.btn-link.btn-small.doc-remove', { type: 'button', onclick: () => remove(a) }, 'Xóa')
        : null);
  }

  function dropZone(key, label, accept) {
    const id = `doc-input-${key || 'other'}`;
    const input = h('input.doc-input', {
      id, type: 'file', multiple: true, accept: accept.join(','), capture: 'environment',
      dataset: { key: key || '' },
      onchange: (ev) => { const files = [...ev.target.files]; ev.target.value = ''; upload(files, key); },
    });
    const zone = h('div.dropzone', { dataset: { key: key || '' } },
      h('label', { for: id }, `Tải lên ${label}: kéo thả tệp vào đây, chọn tệp hoặc chụp ảnh`), input);
    zone.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (ev) => {
      ev.preventDefault();
      zone.classList.remove('over');
      upload([...(ev.dataTransfer ? ev.dataTransfer.files : [])], key);
    });
    return zone;
  }

  async function render() {
    let data;
    try {
      data = await api(base);
    } catch (err) {
      mount(box, h('h2', 'Giấy tờ'), h('p.muted', `Không tải được danh sách giấy tờ: ${err.message}`));
      return;
    }
    const items = data.items || [];
    const docs = data.documents || [];
    const known = new Set(docs.map((d) => d.key));
    const byKey = (key) => items.filter((a) => a.document_key === key && (a.kind || 'document') === 'document');
    const others = items.filter((a) => !known.has(a.document_key) || (a.kind || 'document') !== 'document');
    mount(box,
      h('h2', 'Giấy tờ (thành phần hồ sơ)'),
      data.uploadable && !data.removable
        ? h('p.muted.small', 'Đã tiếp nhận xong: giấy tờ đã thuộc hồ sơ, chỉ có thể bổ sung, không xóa.') : null,
      docs.length ? h('ol.doc-list', docs.map((d) => {
        const [label, cls] = STATE_VI[d.state] || [d.state, 'muted'];
        return h('li.doc-entry', { dataset: { key: d.key, state: d.state } },
          h('div.doc-title', h('strong', d.name), d.required ? h('span.req', ' *') : null, ' ',
            h(`span.doc-state.${cls}`, label)),
          d.description ? h('div.muted.small', d.description) : null,
          h('ul.doc-files', byKey(d.key).map((a) => fileRow(a, data.removable))),
          data.uploadable ? dropZone(d.key, d.name, d.accept || PREVIEWABLE) : null);
      })) : h('p.muted', 'Thủ tục này không có danh mục giấy tờ.'),
      h('h3', 'Tệp khác'),
      others.length ? h('ul.doc-files#doc-others', others.map((a) => fileRow(a, data.removable))) : h('p.muted.small', 'Không có.'),
      data.uploadable ? dropZone('', 'tệp khác', PREVIEWABLE) : null,
      h('div#doc-preview.doc-preview', { hidden: true }));
  }

  await render();
}
