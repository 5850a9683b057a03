// A small renderer for the JSON Schema subset our procedures' forms use.
//
// Supported: object properties (nested objects as fieldsets), string / number / integer / boolean,
// choices through `oneOf: [{const, title}]` or `enum` (a select, or radio buttons), arrays of choices
// (checkboxes), `format: date` (<input type=date>), `time`, `date-time`, `datetime-local`, `email`,
// `phone-vn`, `cccd`, `default`, `readOnly`, `required`
// (marked with *), `title` / `description`, min/max lengths and values as HTML hints, and the UI schema
// keys `ui:order`, `ui:widget` (textarea, radio, select, hidden, checkbox), `ui:placeholder`, `ui:help`,
// `ui:readonly`, `ui:disabled`, `ui:rows`, `ui:title`, `ui:description`.
// Conditions: `if`/`then`/`else` (on the object, or in its `allOf`) show the fields a branch defines only while
// that branch applies and mark the fields it requires; `dependentRequired` marks the fields a filled-in field
// requires. Arrays of objects are edited as rows (add, remove), each row a fieldset of the item's fields.
// Anything else (free objects, arrays of arrays) is edited as JSON. Form-js forms are rendered by form-js
// itself (lib/formjs.js). The server validates every submission; this renderer only helps people fill it in.
import { h, clear } from './ui.js';

let uid = 0;

function resolveRef(root, s) {
  let hops = 0;
  while (s && typeof s.$ref === 'string' && s.$ref.startsWith('#/') && hops++ < 16) {
    let node = root;
    for (const raw of s.$ref.slice(2).split('/')) {
      node = node && node[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    s = Object.assign({}, node || {}, s);
    delete s.$ref;
  }
  return s || {};
}

function typeOf(s) {
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null') || 'string';
  if (s.type) return s.type;
  if (s.properties) return 'object';
  if (Array.isArray(s.oneOf) && s.oneOf.every((o) => o && 'const' in o)) return typeof s.oneOf[0].const;
  if (Array.isArray(s.enum) && s.enum.length) return typeof s.enum[0] === 'number' ? 'number' : 'string';
  return 'string';
}

function choicesOf(s) {
  const list = Array.isArray(s.oneOf) ? s.oneOf : Array.isArray(s.anyOf) ? s.anyOf : null;
  if (list && list.length && list.every((o) => o && typeof o === 'object' && 'const' in o)) {
    return list.map((o) => ({ value: o.const, label: o.title || String(o.const) }));
  }
  if (Array.isArray(s.enum)) {
    const names = s['x-enumNames'] || s.enumNames || [];
    return s.enum.filter((v) => v !== null).map((v, i) => ({ value: v, label: names[i] || String(v) }));
  }
  return null;
}

function ordered(props, order) {
  const names = Object.keys(props);
  if (!Array.isArray(order)) return names;
  const rest = names.filter((n) => !order.includes(n));
  const out = [];
  for (const n of order) {
    if (n === '*') out.push(...rest);
    else if (names.includes(n)) out.push(n);
  }
  if (!order.includes('*')) out.push(...rest);
  return [...new Set(out)];
}

function uiOf(ui, name) {
  return (ui && typeof ui === 'object' && ui[name] && typeof ui[name] === 'object') ? ui[name] : {};
}

/**
 * Render a form as its kind wants, the one place the pages choose: a form-js form (its UI schema holds the
 * original document, `ui:formjs`) by @bpmn-io/form-js-viewer (the formjs.js bundle, which the page's template
 * loads), any other by `renderForm`. Resolves to the same interface either way.
 */
export async function renderAnyForm(container, { schema, uiSchema, values, readOnly } = {}) {
  const formjs = uiSchema && uiSchema['ui:formjs'];
  return formjs
    ? window.motcuaFormJs.renderFormJs(container, { doc: formjs, values, readOnly })
    : renderForm(container, { schema, uiSchema, values, readOnly });
}

/**
 * Render `schema` into `container`. Returns {getData, setErrors, clearErrors, checkRequired, fields}.
 */
export function renderForm(container, { schema, uiSchema, values, readOnly } = {}) {
  clear(container);
  const root = schema || {};
  const fields = new Map(); // path -> {get, el, wrap, error}
  const rules = []; // conditions: {prefix, test, then, else, dependent}
  const form = h('div.jsonform');
  const ctx = { root, fields, rules, readOnly: !!readOnly, refresh: () => refresh() };
  buildObject(form, resolveRef(root, root), uiSchema || {}, values || {}, '', ctx);
  const formError = h('div.field-error.form-level', { role: 'alert', hidden: true });
  container.appendChild(formError);
  container.appendChild(form);

  function getData() {
    const out = {};
    for (const [path, f] of fields) {
      if (f.sub || f.hiddenByCondition) continue;
      const v = f.get();
      if (v === undefined) continue;
      const keys = path.split('.');
      let node = out;
      for (const k of keys.slice(0, -1)) node = node[k] = node[k] || {};
      node[keys[keys.length - 1]] = v;
    }
    return out;
  }

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = '';
    for (const f of fields.values()) {
      f.error.textContent = '';
      f.error.hidden = true;
      f.wrap.classList.remove('has-error');
      f.control.removeAttribute('aria-invalid');
    }
  }

  /** Show per-field messages ({"path": "message"}); unknown paths and "_form" go on top. */
  function setErrors(map) {
    clearErrors();
    const loose = [];
    let first = null;
    for (const [path, msg] of Object.entries(map || {})) {
      const key = path.replace(/^\$\.?|^\//, '').replace(/\//g, '.').replace(/\[(\d+)\]/g, '.$1');
      const f = fields.get(key) || fields.get(key.split('.')[0]);
      if (f) {
        f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${msg}` : msg;
        f.error.hidden = false;
        f.wrap.classList.add('has-error');
        f.control.setAttribute('aria-invalid', 'true');
        first = first || f.control;
      } else {
        loose.push(path === '_form' || path === '' ? msg : `${path}: ${msg}`);
      }
    }
    if (loose.length) {
      formError.textContent = loose.join(' — ');
      formError.hidden = false;
    }
    if (first && first.focus) first.focus({ preventScroll: false });
  }

  /** The `required` fields left empty (conditions applied; rows included): {"path": "message"}. */
  function checkRequired() {
    refresh();
    const missing = {};
    for (const [path, f] of fields) {
      if (f.hiddenByCondition) continue;
      if ((f.required || f.requiredNow) && f.get() === undefined) missing[path] = 'Trường bắt buộc';
    }
    return missing;
  }

  // Re-applies the conditions to the data as it is now: which branch fields show, which fields are required.
  function refresh() {
    const data = getData();
    for (const f of fields.values()) f.requiredNow = false;
    for (const r of rules) {
      const here = r.prefix ? r.prefix.split('.').reduce((o, k) => (o == null ? o : o[k]), data) : data;
      const obj = here && typeof here === 'object' ? here : {};
      if (r.dependent) {
        for (const [trigger, deps] of Object.entries(r.dependent)) {
          if (obj[trigger] === undefined) continue;
          for (const d of deps) { const f = fields.get(r.prefix ? `${r.prefix}.${d}` : d); if (f) f.requiredNow = true; }
        }
        continue;
      }
      const active = matches(root, r.test, obj) ? r.then : r.else;
      for (const branch of [r.then, r.else]) {
        if (!branch) continue;
        for (const path of branch.only) {
          const f = fields.get(path);
          if (!f) continue;
          const show = branch === active;
          f.wrap.hidden = !show;
          f.hiddenByCondition = !show;
        }
      }
      if (active) {
        for (const name of active.required) { const f = fields.get(r.prefix ? `${r.prefix}.${name}` : name); if (f) f.requiredNow = true; }
      }
    }
    for (const f of fields.values()) {
      const on = !!(f.required || f.requiredNow);
      if (f.marker) f.marker.hidden = !on;
      if (f.control && f.control.tagName !== 'DIV') f.control.required = on;
    }
  }
  if (rules.length) {
    form.addEventListener('input', refresh);
    form.addEventListener('change', refresh);
  }
  refresh();

  return { getData, setErrors, clearErrors, checkRequired, refresh, fields, element: form };
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether `v` satisfies the schema `s`: the keywords conditions use (const, enum, type, required, properties,
 *  bounds, lengths, pattern, contains, allOf / anyOf / oneOf / not). Unknown keywords pass. */
export function matches(root, s, v) {
  if (s === undefined || s === true) return true;
  if (s === false) return false;
  s = resolveRef(root, s);
  if ('const' in s && !same(s.const, v)) return false;
  if (Array.isArray(s.enum) && !s.enum.some((e) => same(e, v))) return false;
  if (s.type && v !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    const ok = types.some((x) => x === t || (x === 'integer' && Number.isInteger(v)) || (x === 'number' && t === 'number'));
    if (!ok) return false;
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    if (Array.isArray(s.required) && s.required.some((k) => v[k] === undefined)) return false;
    for (const [k, sub] of Object.entries(s.properties || {})) if (v[k] !== undefined && !matches(root, sub, v[k])) return false;
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return false;
    if (s.maximum !== undefined && v > s.maximum) return false;
    if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) return false;
    if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) return false;
  }
  if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) return false;
    if (s.maxLength !== undefined && v.length > s.maxLength) return false;
    if (s.pattern) { try { if (!new RegExp(s.pattern, 'u').test(v)) return false; } catch (e) { /* the server decides */ } }
  }
  if (Array.isArray(v)) {
    if (s.contains && !v.some((x) => matches(root, s.contains, x))) return false;
    if (s.minItems !== undefined && v.length < s.minItems) return false;
  }
  if (Array.isArray(s.allOf) && !s.allOf.every((x) => matches(root, x, v))) return false;
  if (Array.isArray(s.anyOf) && !s.anyOf.some((x) => matches(root, x, v))) return false;
  if (Array.isArray(s.oneOf) && s.oneOf.filter((x) => matches(root, x, v)).length !== 1) return false;
  if (s.not !== undefined && matches(root, s.not, v)) return false;
  return true;
}

function buildObject(parent, s, ui, values, prefix, ctx) {
  const { root } = ctx;
  const props = Object.assign({}, s.properties || {});
  const required = new Set(Array.isArray(s.required) ? s.required : []);
  // conditions of this object: its own if/then/else and those in its allOf
  const conds = [s, ...(Array.isArray(s.allOf) ? s.allOf.map((x) => resolveRef(root, x)) : [])].filter((c) => c && c.if !== undefined);
  const branchOnly = new Map(); // property defined only in a branch -> its schema
  const rulesHere = conds.map((c) => {
    const branch = (b) => {
      if (!b || typeof b !== 'object') return null;
      b = resolveRef(root, b);
      const only = [];
      for (const [name, sub] of Object.entries(b.properties || {})) {
        if (!(name in props)) { branchOnly.set(name, sub); only.push(prefix ? `${prefix}.${name}` : name); }
      }
      return { only, required: Array.isArray(b.required) ? b.required : [] };
    };
    return { prefix, test: c.if, then: branch(c.then), else: branch(c.else) };
  });
  ctx.rules.push(...rulesHere);
  if (s.dependentRequired && typeof s.dependentRequired === 'object') ctx.rules.push({ prefix, dependent: s.dependentRequired });
  for (const [name, sub] of branchOnly) props[name] = sub;
  for (const name of ordered(props, ui['ui:order'])) {
    const sub = resolveRef(root, props[name]);
    const path = prefix ? `${prefix}.${name}` : name;
    const subUi = uiOf(ui, name);
    const value = values && typeof values === 'object' ? values[name] : undefined;
    if (typeOf(sub) === 'object' && sub.properties) {
      const fs = h('fieldset.subform', h('legend', subUi['ui:title'] || sub.title || name));
      if (sub.description) fs.appendChild(h('p.help', sub.description));
      buildObject(fs, sub, subUi, value || {}, path, ctx);
      parent.appendChild(fs);
      continue;
    }
    parent.appendChild(buildField(name, path, sub, subUi, value, required.has(name), ctx));
  }
}

function buildField(name, path, s, ui, value, required, ctx) {
  const { fields, root } = ctx;
  const readOnly = ctx.readOnly;
  const id = `f-${++uid}-${name.replace(/[^\w-]/g, '_')}`;
  const type = typeOf(s);
  const widget = ui['ui:widget'];
  const title = ui['ui:title'] || s.title || name;
  const help = ui['ui:help'] || ui['ui:description'] || s.description;
  const disabled = readOnly || s.readOnly || ui['ui:readonly'] || ui['ui:disabled'];
  if (value === undefined && s.default !== undefined) value = s.default;
  const choices = choicesOf(s);
  const errorId = `${id}-error`;
  const helpId = help ? `${id}-help` : null;
  const describedBy = [helpId, errorId].filter(Boolean).join(' ');
  // the required marker is always there, shown while the field is required (conditions may change it)
  const marker = () => h('span.req', { title: 'Bắt buộc', 'aria-hidden': 'true', hidden: !required }, ' *');
  const label = h('label', { for: id }, title, marker());
  const wrap = h('div.field', { dataset: { field: path } });
  let control;
  let get;

  if (widget === 'hidden') {
    control = h('input', { type: 'hidden', id, name: path, value: value === undefined ? '' : JSON.stringify(value) });
    get = () => (control.value === '' ? undefined : JSON.parse(control.value));
    wrap.hidden = true;
    wrap.appendChild(control);
  } else if (choices && (widget === 'radio' || (!widget && choices.length <= 4))) {
    const group = h('div.radio-group', { role: 'radiogroup', id, 'aria-labelledby': `${id}-label`, 'aria-describedby': describedBy });
    choices.forEach((c, i) => {
      const rid = `${id}-${i}`;
      const input = h('input', { type: 'radio', id: rid, name: id, value: String(i), disabled, checked: value !== undefined && c.value === value });
      group.appendChild(h('label.radio', { for: rid }, input, ' ', c.label));
    });
    control = group;
    get = () => {
      const checked = group.querySelector('input:checked');
      return checked ? choices[Number(checked.value)].value : undefined;
    };
    wrap.appendChild(h('div.label', { id: `${id}-label` }, title, marker()));
    wrap.appendChild(group);
  } else if (choices) {
    control = h('select', { id, name: path, disabled, required, 'aria-describedby': describedBy },
      h('option', { value: '' }, '— Chọn —'),
      choices.map((c, i) => h('option', { value: String(i), selected: value !== undefined && c.value === value }, c.label)));
    get = () => (control.value === '' ? undefined : choices[Number(control.value)].value);
    wrap.append(label, control);
  } else if (type === 'array' && s.items && choicesOf(resolveRef({}, s.items))) {
    // several choices (form-js checklist / taglist): a group of checkboxes, the value is the list of consts
    const opts = choicesOf(s.items);
    const chosen = Array.isArray(value) ? value : [];
    const group = h('div.radio-group.checkbox-group', { role: 'group', id, 'aria-labelledby': `${id}-label`, 'aria-describedby': describedBy });
    opts.forEach((c, i) => {
      const cid = `${id}-${i}`;
      group.appendChild(h('label.radio', { for: cid },
        h('input', { type: 'checkbox', id: cid, value: String(i), disabled, checked: chosen.includes(c.value) }), ' ', c.label));
    });
    control = group;
    get = () => {
      const picked = Array.from(group.querySelectorAll('input:checked')).map((x) => opts[Number(x.value)].value);
      return picked.length ? picked : undefined;
    };
    wrap.appendChild(h('div.label', { id: `${id}-label` }, title, marker()));
    wrap.appendChild(group);
  } else if (type === 'boolean') {
    control = h('input', { type: 'checkbox', id, name: path, disabled, checked: value === true, 'aria-describedby': describedBy });
    get = () => control.checked;
    wrap.classList.add('field-checkbox');
    wrap.append(h('label', { for: id }, control, ' ', title));
  } else if (type === 'number' || type === 'integer') {
    control = h('input', {
      type: 'number', id, name: path, disabled, required, inputmode: type === 'integer' ? 'numeric' : 'decimal',
      step: type === 'integer' ? '1' : 'any', min: s.minimum, max: s.maximum,
      value: value === undefined || value === null ? '' : String(value), placeholder: ui['ui:placeholder'],
      'aria-describedby': describedBy,
    });
    get = () => {
      const raw = control.value.trim();
      if (raw === '') return undefined;
      const n = Number(raw.replace(',', '.'));
      return Number.isNaN(n) ? raw : n;
    };
    wrap.append(label, control);
  } else if (type === 'string') {
    const textarea = widget === 'textarea' || (!widget && (s.maxLength || 0) > 255 && !s.format);
    const common = {
      id, name: path, disabled, required, placeholder: ui['ui:placeholder'], 'aria-describedby': describedBy,
      maxlength: s.maxLength, minlength: s.minLength,
    };
    if (textarea) {
      control = h('textarea', Object.assign(common, { rows: ui['ui:rows'] || 3 }));
      control.value = value === undefined || value === null ? '' : String(value);
    } else {
      const inputType = {
        date: 'date', time: 'time', 'date-time': 'datetime-local', 'datetime-local': 'datetime-local',
        email: 'email', 'phone-vn': 'tel', uri: 'url',
      }[s.format] || 'text';
      let v = value === undefined || value === null ? '' : String(value);
      if (inputType === 'datetime-local' && v) v = v.slice(0, 16);
      control = h('input', Object.assign(common, {
        type: inputType, value: v, inputmode: s.format === 'cccd' ? 'numeric' : undefined,
        autocomplete: 'off',
      }));
    }
    get = () => {
      let raw = control.value.trim();
      if (raw === '') return undefined;
      // a date-time with an offset (UTC+7, the product's local time); a datetime-local stays local
      if (control.type === 'datetime-local' && s.format === 'date-time' && raw.length === 16) raw = `${raw}:00+07:00`;
      if (control.type === 'datetime-local' && s.format === 'datetime-local' && raw.length === 16) raw = `${raw}:00`;
      if (control.type === 'time' && s.format === 'time' && raw.length === 5) raw = `${raw}:00`;
      return raw;
    };
    wrap.append(label, control);
  } else if (type === 'array' && s.items && typeOf(resolveRef(root, s.items)) === 'object' && resolveRef(root, s.items).properties) {
    // an array of objects: rows, each the item's fields, added and removed with buttons
    const item = resolveRef(root, s.items);
    const itemUi = uiOf(ui, 'items');
    const list = h('div.rows-list', { id, role: 'group', 'aria-labelledby': `${id}-label`, 'aria-describedby': describedBy });
    let rows = [];
    const collect = (rowFields, prefix) => {
      const out = {};
      for (const [p, f] of rowFields) {
        if (f.hiddenByCondition) continue;
        const v = f.get();
        if (v === undefined) continue;
        const keys = p.slice(prefix.length + 1).split('.');
        let node = out;
        for (const k of keys.slice(0, -1)) node = node[k] = node[k] || {};
        node[keys[keys.length - 1]] = v;
      }
      return out;
    };
    const current = () => rows.map((r) => collect(r.fields, r.prefix));
    const draw = (vals) => {
      for (const r of rows) for (const p of r.fields.keys()) fields.delete(p);
      clear(list);
      rows = vals.map((v, i) => {
        const prefix = `${path}.${i}`;
        const rowFields = new Map();
        const fs = h('fieldset.row-item', h('legend', `${title} — dòng ${i + 1}`));
        buildObject(fs, item, itemUi, v || {}, prefix, Object.assign({}, ctx, { fields: rowFields }));
        if (!readOnly && !disabled) {
          fs.appendChild(h('button.btn.btn-link.btn-small.row-remove', {
            type: 'button', 'aria-label': `Xóa dòng ${i + 1} của ${title}`,
            onclick: () => { const vs = current(); vs.splice(i, 1); draw(vs); ctx.refresh(); addBtn.focus(); },
          }, 'Xóa dòng'));
        }
        for (const [p, f] of rowFields) fields.set(p, Object.assign(f, { sub: true }));
        list.appendChild(fs);
        return { prefix, fields: rowFields };
      });
    };
    const addBtn = h('button.btn.btn-small.row-add', {
      type: 'button', disabled: readOnly || disabled,
      onclick: () => {
        const vs = current(); vs.push({}); draw(vs); ctx.refresh();
        const first = list.lastElementChild && list.lastElementChild.querySelector('input, select, textarea');
        if (first) first.focus();
      },
    }, `+ Thêm dòng`);
    draw(Array.isArray(value) ? value : []);
    control = list;
    get = () => { const vs = current(); return vs.length ? vs : undefined; };
    wrap.classList.add('field-rows');
    wrap.append(h('div.label', { id: `${id}-label` }, title, marker()), list, addBtn);
  } else {
    // free-form objects and other arrays: edited as JSON
    control = h('textarea.json', { id, name: path, disabled, rows: 4, 'aria-describedby': describedBy });
    control.value = value === undefined ? '' : JSON.stringify(value, null, 2);
    get = () => {
      const raw = control.value.trim();
      if (!raw) return undefined;
      try { return JSON.parse(raw); } catch (e) { return raw; }
    };
    wrap.append(label, control, h('p.help', 'Nhập dữ liệu dạng JSON'));
  }
  if (help && widget !== 'hidden') wrap.appendChild(h('p.help', { id: helpId }, help));
  const error = h('p.field-error', { id: errorId, hidden: true, role: 'alert' });
  wrap.appendChild(error);
  fields.set(path, { get, control, wrap, error, required, marker: wrap.querySelector(':scope > label > .req, :scope > .label > .req') });
  return wrap;
}
