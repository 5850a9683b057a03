// Form-js forms (Camunda Forms) rendered by @bpmn-io/form-js-viewer, the maintained viewer of the format: it
// evaluates the forms' FEEL conditions (`conditional.hide`), dynamic lists, its own validation and layout,
// which a hand-written renderer would only approximate. The server converts the same form to JSON Schema
// (forms/formjs.py) and stays the authority: its 422 messages are shown on the form-js fields.
// Same interface as lib/form.js's renderForm: {getData, setErrors, clearErrors, checkRequired}.
import { Form } from '@bpmn-io/form-js-viewer';

/** Render the form-js document `doc` into `container` with `values`; resolves once it is drawn. */
export async function renderFormJs(container, { doc, values, readOnly } = {}) {
  container.classList.add('formjs');
  const form = new Form({ container, properties: { readOnly: !!readOnly } });
  await form.importSchema(doc, values || {});
  vietnamese(container);
  const registry = form.get('formFieldRegistry');
  const formError = document.createElement('div');
  formError.className = 'field-error form-level';
  formError.setAttribute('role', 'alert');
  formError.hidden = true;
  container.prepend(formError);

  // "items.0.qty" → the id of the component keyed "qty" inside the dynamic list at path "items", index 0
  function locate(path) {
    const parts = path.replace(/^\$\.?|^\//, '').replace(/\//g, '.').replace(/\[(\d+)\]/g, '.$1').split('.');
    const fields = registry.getAll();
    const byKey = fields.find((f) => f.key === parts.join('.'));
    if (byKey) return { id: byKey.id, indexes: [] };
    const idx = parts.findIndex((p) => /^\d+$/.test(p));
    if (idx > 0) {
      const listPath = parts.slice(0, idx).join('.');
      const rest = parts.slice(idx + 1).join('.');
      const list = fields.find((f) => f.type === 'dynamiclist' && f.path === listPath);
      const child = list && fields.find((f) => f.key === rest && f._parent === list.id);
      if (child) return { id: child.id, indexes: [Number(parts[idx])] };
    }
    const byId = fields.find((f) => f.id === path);
    return byId ? { id: byId.id, indexes: [] } : null;
  }

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = '';
    form._setState({ errors: {} }); // the viewer's own error state (what its validate() sets)
  }

  /** Messages by field path ({"reason": "…", "items.0.qty": "…"}); others go on top of the form. */
  function setErrors(map) {
    const errors = {};
    const loose = [];
    for (const [path, msg] of Object.entries(map || {})) {
      if (Array.isArray(msg) && registry.get(path)) { errors[path] = msg; continue; } // already form-js's own
      const at = locate(path);
      if (!at) { loose.push(path === '_form' || path === '' ? msg : `${path}: ${msg}`); continue; }
      if (at.indexes.length) {
        errors[at.id] = errors[at.id] || {};
        errors[at.id][at.indexes[0]] = [String(msg)];
      } else {
        errors[at.id] = [String(msg)];
      }
    }
    form._setState({ errors });
    formError.textContent = loose.join(' — ');
    formError.hidden = !loose.length;
    const first = container.querySelector('.fjs-has-errors input, .fjs-has-errors textarea, .fjs-has-errors select');
    if (first) first.focus();
  }

  /** The viewer's own checks (required, lengths, patterns): {field id: [messages]}, empty when fine. */
  function checkRequired() {
    return form.validate();
  }

  /** The data to submit: hidden (conditional) fields left out, as form-js submits it. */
  function getData() {
    return form._getSubmitData();
  }

  return { getData, setErrors, clearErrors, checkRequired, viewer: form, element: container };
}

// The viewer writes a few words of its own in English (dynamic lists' buttons): said in Vietnamese here, again
// after each of its re-renders.
const WORDS = [
  [/^Add new$/, () => 'Thêm dòng'],
  [/^Collapse$/, () => 'Thu gọn'],
  [/^Expand all \((\d+)\)$/, (m) => `Mở tất cả (${m[1]})`],
  [/^Remove list item (\d+)$/, (m) => `Xóa dòng ${m[1]}`],
  [/^Remove tag$/, () => 'Bỏ nhãn'],
];

function say(text) {
  for (const [re, vi] of WORDS) {
    const m = re.exec(text.trim());
    if (m) return vi(m);
  }
  return null;
}

function vietnamese(root) {
  const fix = () => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const vi = n.parentElement && n.parentElement.closest('button') ? say(n.nodeValue) : null;
      if (vi) n.nodeValue = ` ${vi}`;
    }
    for (const el of root.querySelectorAll('[aria-label], [title]')) {
      for (const attr of ['aria-label', 'title']) {
        const vi = el.hasAttribute(attr) ? say(el.getAttribute(attr)) : null;
        if (vi) el.setAttribute(attr, vi);
      }
    }
  };
  new MutationObserver(fix).observe(root, { childList: true, subtree: true });
  fix();
}
