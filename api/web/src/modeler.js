// The analysts' modeler: bpmn-js with our own small properties form for the metadata the engine reads
// (process-level camunda:properties, role per lane, camunda:formKey and a deadline per user task, end
// statuses, gateway conditions), bpmnlint in the canvas, the server's validation problems marked on the
// elements, and deployment with the form files beside the diagram.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import lintModule from 'bpmn-js-bpmnlint';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';
import { api, itemsOf, problemsOf } from './lib/api.js';
import { lintConfig } from './lib/lint.js';
import translateModule from './lib/translate.js';
import { $, h, mount, clear, flash, clearFlash } from './lib/ui.js';
import { initLayout, requireLogin } from './pages/common.js';

const LEVELS = [['', '— Chưa chọn —'], ['2', 'Mức 2'], ['3', 'Mức 3'], ['4', 'Mức 4'], ['toan_trinh', 'Toàn trình'], ['mot_phan', 'Một phần']];
const STATUSES = [
  ['', '— Mặc định —'], ['received', 'Được tiếp nhận'], ['refused', 'Không được tiếp nhận'], ['in_process', 'Đang xử lý'],
  ['supplement_requested', 'Yêu cầu bổ sung'], ['payment_required', 'Yêu cầu nghĩa vụ tài chính'],
  ['withdrawn', 'Rút hồ sơ'], ['stopped', 'Dừng xử lý'], ['processed', 'Đã xử lý xong'], ['returned', 'Đã trả kết quả'],
];
const ROLE_IN_PARENS = /\(([A-Za-z0-9_.-]+)\)\s*$/;

function is(element, type) {
  const bo = (element && element.businessObject) || element;
  return !!(bo && bo.$instanceOf && bo.$instanceOf(type));
}

function newDiagram() {
  const pid = `Process_${Date.now().toString(36)}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="Collaboration_1">
    <bpmn:participant id="Participant_1" name="Thủ tục mới" processRef="${pid}" />
  </bpmn:collaboration>
  <bpmn:process id="${pid}" name="Thủ tục mới" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_1" name="Bộ phận một cửa (receiver)">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1" name="Hồ sơ được nộp" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="Collaboration_1">
      <bpmndi:BPMNShape id="Participant_1_di" bpmnElement="Participant_1" isHorizontal="true">
        <dc:Bounds x="120" y="60" width="960" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Lane_1_di" bpmnElement="Lane_1" isHorizontal="true">
        <dc:Bounds x="150" y="60" width="930" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="StartEvent_1_di" bpmnElement="StartEvent_1">
        <dc:Bounds x="202" y="142" width="36" height="36" />
        <bpmndi:BPMNLabel><dc:Bounds x="180" y="185" width="80" height="27" /></bpmndi:BPMNLabel>
      </bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>`;
}

function start() {
  initLayout();
  const user = requireLogin();
  if (!user) return;
  const code = document.body.dataset.code || '';
  const forms = new Map(); // file name -> JSON text, deployed with the diagram
  let loadedVersion = null;

  const modeler = new BpmnModeler({
    container: '#canvas',
    moddleExtensions: { camunda: camundaModdle },
    linting: { bpmnlint: lintConfig, active: true },
    additionalModules: [lintModule, translateModule],
  });
  const canvas = modeler.get('canvas');
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const elementRegistry = modeler.get('elementRegistry');
  const overlays = modeler.get('overlays');
  const selection = modeler.get('selection');
  const eventBus = modeler.get('eventBus');
  const panel = $('#props');
  panel.addEventListener('submit', (ev) => ev.preventDefault());
  let selected = null;
  let problemIds = [];
  let committing = false; // the properties form is changing the diagram: do not re-render it under the user

  function commit(fn) {
    committing = true;
    try {
      fn();
    } finally {
      committing = false;
    }
  }

  // -- the process (procedure) and its properties --------------------------------------------------
  function processContext(element) {
    if (element && is(element, 'bpmn:Participant') && element.businessObject.processRef) {
      return { element, bo: element.businessObject.processRef };
    }
    const root = canvas.getRootElement();
    if (is(root, 'bpmn:Collaboration')) {
      const p = elementRegistry.filter((e) => is(e, 'bpmn:Participant') && e.businessObject.processRef)[0];
      return p ? { element: p, bo: p.businessObject.processRef } : null;
    }
    return root && root.businessObject && is(root, 'bpmn:Process') ? { element: root, bo: root.businessObject } : null;
  }

  function propertiesOf(bo) {
    const ext = bo.get('extensionElements');
    if (!ext) return null;
    return (ext.get('values') || []).find((v) => v.$instanceOf('camunda:Properties')) || null;
  }

  function getProp(bo, name) {
    const props = propertiesOf(bo);
    const p = props && (props.get('values') || []).find((x) => x.name === name);
    return p ? (p.value ?? '') : '';
  }

  function setProp(element, bo, name, value) {
    value = value === undefined || value === null ? '' : String(value).trim();
    let ext = bo.get('extensionElements');
    let props = propertiesOf(bo);
    const existing = props && (props.get('values') || []).find((x) => x.name === name);
    if (!value) {
      if (existing) modeling.updateModdleProperties(element, props, { values: props.get('values').filter((x) => x !== existing) });
      return;
    }
    if (existing) {
      modeling.updateModdleProperties(element, existing, { value });
      return;
    }
    if (!ext) {
      ext = moddle.create('bpmn:ExtensionElements', { values: [] });
      ext.$parent = bo;
      modeling.updateModdleProperties(element, bo, { extensionElements: ext });
    }
    if (!props) {
      props = moddle.create('camunda:Properties', { values: [] });
      props.$parent = ext;
      modeling.updateModdleProperties(element, ext, { values: [...ext.get('values'), props] });
    }
    const prop = moddle.create('camunda:Property', { name, value });
    prop.$parent = props;
    modeling.updateModdleProperties(element, props, { values: [...props.get('values'), prop] });
  }

  function lanesOf(bo) {
    const out = [];
    const proc = processContext(null);
    const walk = (sets) => {
      for (const set of sets || []) {
        for (const lane of set.lanes || []) {
          if ((lane.flowNodeRef || []).includes(bo)) out.push(lane);
          if (lane.childLaneSet) walk([lane.childLaneSet]);
        }
      }
    };
    if (proc) walk(proc.bo.laneSets);
    return out;
  }

  function laneRole(name) {
    name = (name || '').trim();
    const m = ROLE_IN_PARENS.exec(name);
    return m ? m[1] : name;
  }

  // -- the properties form ----------------------------------------------------------------------------
  function field(id, label, value, onChange, opts = {}) {
    let control;
    if (opts.options) {
      control = h('select', { id }, opts.options.map(([v, l]) => h('option', { value: v, selected: String(value ?? '') === v }, l)));
    } else if (opts.textarea) {
      control = h('textarea', { id, rows: opts.rows || 2, placeholder: opts.placeholder });
      control.value = value ?? '';
    } else {
      control = h('input', {
        id, type: opts.type || 'text', value: value ?? '', placeholder: opts.placeholder, list: opts.list,
        readOnly: opts.readOnly, inputmode: opts.inputmode, autocomplete: 'off', spellcheck: 'false',
      });
    }
    if (!opts.readOnly) control.addEventListener('change', () => commit(() => onChange(control.value)));
    return h('div.field', h('label', { for: id }, label), control, opts.help ? h('p.help', opts.help) : null);
  }

  function section(title, ...children) {
    return h('fieldset.props-section', h('legend', title), ...children);
  }

  function processSection(ctx) {
    const { element, bo } = ctx;
    const set = (name) => (v) => setProp(element, bo, name, v);
    return section('Thủ tục (quy trình)',
      field('p-process-id', 'Mã quy trình (process id)', bo.id, (v) => v.trim() && modeling.updateModdleProperties(element, bo, { id: v.trim() }),
        { help: 'Dùng làm mã thủ tục khi không khai báo mã thủ tục.' }),
      field('p-procedure_code', 'Mã thủ tục (procedure_code)', getProp(bo, 'procedure_code'), set('procedure_code'), { placeholder: '1.001193' }),
      field('p-procedure_name', 'Tên thủ tục (procedure_name)', getProp(bo, 'procedure_name'), (v) => {
        const before = getProp(bo, 'procedure_name');
        const name = v.trim();
        setProp(element, bo, 'procedure_name', name);
        // The process and its pool follow the procedure's name while they still carry the default or the old one.
        const follows = (x) => !x || x === 'Thủ tục mới' || x === before;
        if (name && follows(bo.name)) modeling.updateModdleProperties(element, bo, { name });
        if (name && is(element, 'bpmn:Participant') && follows(element.businessObject.name)) modeling.updateLabel(element, name);
      }, { placeholder: 'Đăng ký khai sinh' }),
      field('p-agency', 'Cơ quan (agency)', getProp(bo, 'agency'), set('agency'), { placeholder: '000.31.14.H56' }),
      field('p-deadline', 'Thời hạn giải quyết (deadline)', getProp(bo, 'deadline'), set('deadline'),
        { placeholder: '15 working days', list: 'deadline-examples', help: 'Ví dụ: 15 working days, 8 working hours, 30 days.' }),
      field('p-cutoff', 'Giờ chốt nhận hồ sơ (cutoff)', getProp(bo, 'cutoff'), set('cutoff'), { placeholder: '15:00', help: 'Hồ sơ nhận sau giờ này tính từ ngày làm việc tiếp theo.' }),
      field('p-fee', 'Lệ phí (VND, fee)', getProp(bo, 'fee'), set('fee'), { inputmode: 'numeric', placeholder: '0' }),
      field('p-level', 'Mức độ dịch vụ công (level)', getProp(bo, 'level'), set('level'), { options: LEVELS }));
  }

  function renderPanel() {
    clear(panel);
    const el = selected;
    if (!el || is(el, 'bpmn:Collaboration') || is(el, 'bpmn:Process')) {
      const ctx = processContext(null);
      if (ctx) panel.appendChild(processSection(ctx));
      panel.appendChild(h('p.help', 'Chọn một phần tử trên sơ đồ để sửa thuộc tính của nó.'));
      return;
    }
    const bo = el.businessObject;
    const idLine = h('p.muted.small', `${bo.$type.replace('bpmn:', '')} · ${bo.id}`);
    if (is(el, 'bpmn:Participant')) {
      panel.appendChild(section('Pool', idLine,
        field('p-name', 'Tên pool', bo.name, (v) => modeling.updateLabel(el, v))));
      const ctx = processContext(el);
      if (ctx) panel.appendChild(processSection(ctx));
      return;
    }
    if (is(el, 'bpmn:Lane')) {
      const name = bo.name || '';
      const m = ROLE_IN_PARENS.exec(name);
      const label = m ? name.slice(0, m.index).trim() : name;
      const role = m ? m[1] : '';
      const update = () => {
        const l = $('#p-lane-label').value.trim();
        const r = $('#p-lane-role').value.trim();
        modeling.updateLabel(el, r ? (l ? `${l} (${r})` : r) : l);
        $('#lane-role-now').textContent = `Vai trò thực hiện: ${laneRole(bo.name) || '—'}`;
      };
      panel.appendChild(section('Lane (vai trò thực hiện)', idLine,
        field('p-lane-label', 'Tên hiển thị', label, update, { placeholder: 'Bộ phận một cửa' }),
        field('p-lane-role', 'Mã vai trò (role)', role, update, { placeholder: 'receiver', help: 'Cán bộ có vai trò này (trong cơ quan của hồ sơ) sẽ nhận các bước nằm trong lane.' }),
        h('p#lane-role-now.help', `Vai trò thực hiện: ${laneRole(name) || '—'}`)));
      return;
    }
    const parts = [idLine, field('p-name', 'Tên', bo.name, (v) => modeling.updateLabel(el, v))];
    if (is(el, 'bpmn:UserTask')) {
      const lanes = lanesOf(bo).map((l) => laneRole(l.name)).filter(Boolean);
      parts.push(
        h('p.help#task-role', `Vai trò theo lane: ${lanes.join(', ') || '— (chưa nằm trong lane có tên)'}`),
        field('p-candidateGroups', 'Nhóm ứng viên (camunda:candidateGroups)', bo.get('camunda:candidateGroups'),
          (v) => modeling.updateProperties(el, { 'camunda:candidateGroups': v.trim() || undefined }),
          { placeholder: 'để trống: dùng vai trò của lane', help: 'Nếu khai báo, thay cho vai trò của lane (nhiều vai trò cách nhau bằng dấu phẩy).' }),
        field('p-formKey', 'Biểu mẫu (camunda:formKey)', bo.get('camunda:formKey'),
          (v) => modeling.updateProperties(el, { 'camunda:formKey': v.trim() || undefined }),
          { list: 'form-keys', placeholder: 'intake.json', help: 'Tên tệp biểu mẫu JSON Schema triển khai kèm (mục “Biểu mẫu kèm theo”).' }),
        field('p-task-deadline', 'Thời hạn bước (deadline)', getProp(bo, 'deadline'), (v) => setProp(el, bo, 'deadline', v),
          { placeholder: '2 working hours', list: 'deadline-examples' }),
        field('p-task-status', 'Trạng thái hồ sơ khi đến bước này', getProp(bo, 'status'), (v) => setProp(el, bo, 'status', v), { options: STATUSES }));
    } else if (is(el, 'bpmn:Task') && !is(el, 'bpmn:ScriptTask')) {
      parts.push(h('p.help', 'Bước thường không giao cho ai. Đổi thành bước người dùng để cán bộ xử lý:'),
        h('button.btn.btn-small#to-user-task', {
          type: 'button',
          onclick: () => {
            const replaced = modeler.get('bpmnReplace').replaceElement(el, { type: 'bpmn:UserTask' });
            selection.select(replaced);
          },
        }, 'Đổi thành bước người dùng'));
    }
    if (is(el, 'bpmn:EndEvent')) {
      parts.push(field('p-status', 'Trạng thái hồ sơ khi kết thúc', getProp(bo, 'status'), (v) => setProp(el, bo, 'status', v),
        { options: STATUSES, help: 'Mặc định: Đã trả kết quả.' }));
    }
    if (is(el, 'bpmn:SequenceFlow') && bo.sourceRef && is(bo.sourceRef, 'bpmn:Gateway')) {
      const cond = bo.conditionExpression ? bo.conditionExpression.body : '';
      parts.push(field('p-condition', 'Điều kiện', cond, (v) => {
        const text = v.trim();
        modeling.updateProperties(el, {
          conditionExpression: text ? moddle.create('bpmn:FormalExpression', { body: text }) : undefined,
        });
      }, { textarea: true, placeholder: 'decision == "accept"', help: 'Biểu thức kiểu Python trên dữ liệu hồ sơ.' }));
    }
    panel.appendChild(section('Thuộc tính', ...parts));
  }

  eventBus.on('selection.changed', ({ newSelection }) => {
    selected = newSelection.length === 1 ? newSelection[0] : null;
    renderPanel();
  });
  eventBus.on('commandStack.changed', () => {
    if (!committing) renderPanel();
  });

  // -- form files deployed beside the diagram ---------------------------------------------------------
  function renderForms() {
    mount($('#form-files'), forms.size
      ? h('ul.files', [...forms.keys()].sort().map((name) => h('li', h('code', name), ' ',
        h('button.btn.btn-link.btn-small', { type: 'button', onclick: () => { forms.delete(name); renderForms(); } }, 'Bỏ'))))
      : h('p.muted.small', 'Chưa có biểu mẫu nào.'));
    mount($('#form-keys'), [...forms.keys()].sort().map((k) => h('option', { value: k })));
  }

  $('#form-upload').addEventListener('change', async (ev) => {
    for (const file of ev.target.files) {
      const text = await file.text();
      try {
        JSON.parse(text);
        forms.set(file.name, text);
      } catch (e) {
        flash(`Tệp ${file.name} không phải JSON hợp lệ.`, 'error');
      }
    }
    ev.target.value = '';
    renderForms();
  });

  // -- server validation: problems on the elements ------------------------------------------------------
  function shapeFor(id) {
    if (!id) return null;
    const el = elementRegistry.get(id);
    if (el) return el;
    return elementRegistry.filter((e) => is(e, 'bpmn:Participant') && e.businessObject.processRef && e.businessObject.processRef.id === id)[0]
      || (canvas.getRootElement().businessObject.id === id ? null : null);
  }

  function showProblems(problems, warnings = []) {
    for (const id of problemIds) canvas.removeMarker(id, 'has-problem');
    overlays.remove({ type: 'server-problem' });
    problemIds = [];
    const list = $('#problems');
    clear(list);
    const all = [...problems.map((p) => ({ ...p, level: 'error' })), ...warnings.map((p) => ({ ...p, level: 'warning' }))];
    if (!all.length) return;
    const byEl = new Map();
    for (const p of all) {
      const el = shapeFor(p.element);
      const item = h(`li.problem.problem-${p.level}`, { dataset: { element: p.element || '' } },
        h('strong', p.element ? `[${p.element}] ` : ''), p.message_vi || p.message || p.detail || JSON.stringify(p),
        p.message_en ? h('div.muted.small', p.message_en) : null);
      if (el) {
        item.tabIndex = 0;
        item.classList.add('clickable');
        item.addEventListener('click', () => { selection.select(el); canvas.scrollToElement ? canvas.scrollToElement(el) : null; });
        if (!byEl.has(el.id)) byEl.set(el.id, []);
        byEl.get(el.id).push(p);
      }
      list.appendChild(item);
    }
    for (const [id, ps] of byEl) {
      const errors = ps.filter((p) => p.level === 'error');
      canvas.addMarker(id, 'has-problem');
      problemIds.push(id);
      overlays.add(id, 'server-problem', {
        position: { top: -14, left: -14 },
        html: h(`div.problem-badge${errors.length ? '' : '.warning'}`, { title: ps.map((p) => p.message_vi || p.message).join('\n'), dataset: { element: id } },
          String(ps.length)),
      });
    }
  }

  async function payload() {
    if (document.activeElement && panel.contains(document.activeElement)) document.activeElement.blur();
    const { xml } = await modeler.saveXML({ format: true });
    const ctx = processContext(null);
    const base = (ctx && (getProp(ctx.bo, 'procedure_code') || ctx.bo.id)) || 'procedure';
    const fd = new FormData();
    fd.append('file', new Blob([xml], { type: 'application/xml' }), `${base.replace(/[^\w.-]+/g, '_')}.bpmn`);
    for (const [name, text] of forms) fd.append('forms', new Blob([text], { type: 'application/json' }), name);
    return fd;
  }

  async function validate() {
    clearFlash();
    const res = await api('procedures/validate', { form: await payload() });
    showProblems(res.problems || [], res.warnings || []);
    if (res.valid) {
      flash(`Hợp lệ: ${res.code} — ${res.name}. Có thể triển khai.`, 'success');
    } else {
      flash(`Máy chủ báo ${(res.problems || []).length} lỗi; các phần tử có lỗi được đánh dấu đỏ trên sơ đồ.`, 'error');
    }
    return res;
  }

  async function deploy() {
    clearFlash();
    const check = await validate();
    if (!check.valid) return { ok: false, problems: check.problems };
    try {
      const res = await api('procedures', { form: await payload() });
      showProblems([], check.warnings || []);
      const link = h('a#deployed-link', { href: `/procedures/${encodeURIComponent(res.code)}` }, `${res.code} phiên bản ${res.version}`);
      if (res.created === false) {
        // Same meaning as a deployed version (layout and formatting do not count): nothing new was made.
        mount($('#flash'), h('div.alert.alert-info#deployed', { role: 'status', dataset: { created: 'false' } },
          'Không có thay đổi so với ', link, ' đã triển khai: không tạo phiên bản mới. ',
          h('span', { lang: 'en' }, '(Unchanged: no new version.)')));
      } else {
        mount($('#flash'), h('div.alert.alert-success#deployed', { role: 'status', dataset: { created: 'true' } },
          'Đã triển khai thủ tục ', link, '.'));
      }
      loadedVersion = res.version;
      $('#version-info').textContent = `Phiên bản hiện tại: v${res.version}`;
      return { ok: true, ...res };
    } catch (err) {
      const problems = err.problems || problemsOf(err.body);
      showProblems(problems);
      flash(`Không triển khai được: ${err.message}`, 'error');
      return { ok: false, problems };
    }
  }

  function fit() {
    canvas.zoom('fit-viewport', 'auto');
    const vb = canvas.viewbox();
    const padX = 70 / vb.scale;
    const padY = 30 / vb.scale;
    canvas.viewbox({ x: vb.x - padX, y: vb.y - padY, width: vb.width + 2 * padX, height: vb.height + 2 * padY });
  }

  async function importXml(xml) {
    await modeler.importXML(xml);
    showProblems([]);
    selected = null;
    renderPanel();
    fit();
  }

  $('#btn-new').addEventListener('click', async () => {
    if (!confirm('Tạo sơ đồ mới? Những thay đổi chưa triển khai sẽ mất.')) return;
    forms.clear();
    renderForms();
    await importXml(newDiagram());
    history.replaceState(null, '', '/modeler');
  });
  $('#btn-open').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    try {
      await importXml(await file.text());
      flash(`Đã mở ${file.name}.`, 'info');
    } catch (err) {
      flash(`Không đọc được tệp BPMN: ${err.message}`, 'error');
    }
    ev.target.value = '';
  });
  $('#btn-download').addEventListener('click', async () => {
    const { xml } = await modeler.saveXML({ format: true });
    const ctx = processContext(null);
    const base = ((ctx && (getProp(ctx.bo, 'procedure_code') || ctx.bo.id)) || 'procedure').replace(/[^\w.-]+/g, '_');
    const a = h('a', { href: URL.createObjectURL(new Blob([xml], { type: 'application/xml' })), download: `${base}.bpmn` });
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  $('#btn-validate').addEventListener('click', () => validate().catch((err) => flash(err.message, 'error')));
  $('#btn-deploy').addEventListener('click', () => deploy().catch((err) => flash(err.message, 'error')));
  $('#btn-fit').addEventListener('click', fit);

  window.motcua = { modeler, validate, deploy, forms, renderForms, showProblems };

  (async () => {
    renderForms();
    if (!code) {
      await importXml(newDiagram());
      document.body.dataset.ready = 'true';
      return;
    }
    try {
      const [details, diagram] = await Promise.all([
        api(`procedures/${encodeURIComponent(code)}`),
        api(`procedures/${encodeURIComponent(code)}/diagram`, { headers: { Accept: 'application/xml, application/json' } }),
      ]);
      const xml = typeof diagram === 'string' ? diagram : (diagram.xml || diagram.bpmn_xml || diagram.diagram);
      const formList = details.forms || (details.current && details.current.forms) || {};
      for (const f of Array.isArray(formList) ? formList : Object.values(formList)) {
        if (!f || !f.key) continue;
        const doc = f.ui_schema ? { title: f.title || undefined, schema: f.schema, uiSchema: f.ui_schema } : f.schema;
        forms.set(f.key, JSON.stringify(doc, null, 2));
      }
      renderForms();
      await importXml(xml);
      loadedVersion = details.version ?? details.current_version;
      $('#version-info').textContent = loadedVersion ? `Phiên bản hiện tại: v${loadedVersion}` : '';
      $('#version-info').appendChild(h('a', { href: `/procedures/${encodeURIComponent(code)}` }, ' (lịch sử phiên bản)'));
    } catch (err) {
      flash(`Không mở được thủ tục ${code}: ${err.message}`, 'error');
      await importXml(newDiagram());
    }
    document.body.dataset.ready = 'true';
  })();
  void itemsOf;
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
