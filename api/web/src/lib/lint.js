// bpmnlint in the browser: the rules we use, bundled statically (no config loader needed), with
// Vietnamese messages, plus rules of our own that mirror the server's deploy checks.
import StaticResolver from 'bpmnlint/lib/resolver/static-resolver';
import startEventRequired from 'bpmnlint/rules/start-event-required';
import endEventRequired from 'bpmnlint/rules/end-event-required';
import noDisconnected from 'bpmnlint/rules/no-disconnected';
import noImplicitSplit from 'bpmnlint/rules/no-implicit-split';
import noImplicitStart from 'bpmnlint/rules/no-implicit-start';
import noImplicitEnd from 'bpmnlint/rules/no-implicit-end';
import noDuplicateSequenceFlows from 'bpmnlint/rules/no-duplicate-sequence-flows';
import conditionalFlows from 'bpmnlint/rules/conditional-flows';
import labelRequired from 'bpmnlint/rules/label-required';
import singleBlankStartEvent from 'bpmnlint/rules/single-blank-start-event';
import superfluousGateway from 'bpmnlint/rules/superfluous-gateway';
import fakeJoin from 'bpmnlint/rules/fake-join';
import noComplexGateway from 'bpmnlint/rules/no-complex-gateway';
import noBpmndi from 'bpmnlint/rules/no-bpmndi';
import noOverlappingElements from 'bpmnlint/rules/no-overlapping-elements';
import eventBasedGateway from 'bpmnlint/rules/event-based-gateway';

const VI = [
  [/^Element is missing label\/name$/, 'Phần tử chưa có tên'],
  [/^Element is not connected$/, 'Phần tử chưa được nối với luồng nào'],
  [/^Flow splits implicitly$/, 'Luồng rẽ nhánh ngầm: hãy dùng cổng (gateway)'],
  [/^Element is an implicit start$/, 'Phần tử không có luồng vào (bắt đầu ngầm)'],
  [/^Element is an implicit end$/, 'Phần tử không có luồng ra (kết thúc ngầm)'],
  [/^Sequence flow is missing condition$/, 'Luồng ra từ cổng rẽ nhánh chưa có điều kiện'],
  [/^(.*) is missing start event$/, 'Quy trình chưa có sự kiện bắt đầu'],
  [/^(.*) is missing end event$/, 'Quy trình chưa có sự kiện kết thúc'],
  [/^(.*) has multiple blank start events$/, 'Quy trình có nhiều sự kiện bắt đầu trống'],
  [/^Gateway is superfluous/, 'Cổng thừa: chỉ có một luồng vào và một luồng ra'],
  [/^Incoming flows do not join$/, 'Nhiều luồng vào mà không có cổng hợp nhánh'],
  [/^SequenceFlow is a duplicate$/, 'Luồng bị trùng'],
  [/^Duplicate (incoming|outgoing) sequence flows$/, 'Luồng bị trùng'],
  [/^Element type <bpmn:ComplexGateway> is discouraged$/, 'Cổng phức hợp không được hỗ trợ'],
  [/^Element is missing bpmndi$/, 'Phần tử thiếu thông tin hiển thị (bpmndi)'],
  [/^Element overlaps with other element$/, 'Phần tử chồng lên phần tử khác'],
  [/^Element is outside of parent boundary$/, 'Phần tử nằm ngoài khung chứa'],
];

function vi(message) {
  for (const [re, text] of VI) if (re.test(message)) return `${text} (${message})`;
  return message;
}

/** Wrap a rule factory so that every message it reports is Vietnamese first. */
function translated(factory) {
  return function (...args) {
    const rule = factory(...args);
    return Object.assign({}, rule, {
      check(node, reporter) {
        const proxy = Object.create(reporter);
        proxy.report = (id, message, path) => reporter.report(id, vi(message), path);
        return rule.check(node, proxy);
      },
    });
  };
}

function lanesOf(node) {
  let proc = node.$parent;
  while (proc && proc.$type !== 'bpmn:Process') proc = proc.$parent;
  const found = [];
  const walk = (laneSets) => {
    for (const set of laneSets || []) {
      for (const lane of set.lanes || []) {
        if ((lane.flowNodeRef || []).includes(node)) found.push(lane);
        if (lane.childLaneSet) walk([lane.childLaneSet]);
      }
    }
  };
  if (proc) walk(proc.laneSets);
  return found;
}

/** Our rule: a user task needs a role — a named lane, camunda:candidateGroups or camunda:assignee. */
function userTaskRole() {
  return {
    check(node, reporter) {
      if (node.$type !== 'bpmn:UserTask') return;
      const groups = node.get ? node.get('camunda:candidateGroups') : node.candidateGroups;
      const assignee = node.get ? node.get('camunda:assignee') : node.assignee;
      if (groups || assignee) return;
      if (lanesOf(node).some((l) => (l.name || '').trim())) return;
      reporter.report(node.id, 'Bước chưa có vai trò thực hiện: đặt trong một lane có tên vai trò, hoặc khai báo nhóm ứng viên');
    },
  };
}

/** An extension property of an element (camunda:properties / spiffworkflow:properties), else undefined. */
function propertyOf(node, name) {
  const ext = node.extensionElements;
  for (const holder of (ext && ext.values) || []) {
    for (const p of holder.values || holder.properties || []) if (p.name === name) return p.value;
  }
  return undefined;
}

/** Our rule: the engine cannot run these task types (the server refuses them at deploy). A service task runs
 * when it names a connector configured on the server, a business rule task when it names a decision table
 * deployed beside the diagram (docs/bpmn-conventions.md, "Connectors" and "Decision tables"). */
function supportedTasks() {
  const refused = {
    'bpmn:ServiceTask': 'Bước dịch vụ (serviceTask) cần nêu kết nối: thuộc tính connector',
    'bpmn:SendTask': 'Bước gửi tin (sendTask) chưa được hỗ trợ',
    'bpmn:ReceiveTask': 'Bước nhận tin (receiveTask) chưa được hỗ trợ',
    'bpmn:BusinessRuleTask': 'Bước quy tắc cần chọn bảng quyết định (camunda:decisionRef)',
  };
  return {
    check(node, reporter) {
      if (node.$type === 'bpmn:ServiceTask' && (propertyOf(node, 'connector') || '').trim()) return;
      if (node.$type === 'bpmn:BusinessRuleTask') {
        const decision = node.get ? node.get('camunda:decisionRef') : node.decisionRef;
        if ((decision || '').trim()) return;
      }
      if (refused[node.$type]) reporter.report(node.id, refused[node.$type]);
    },
  };
}

const rules = {
  'start-event-required': startEventRequired,
  'end-event-required': endEventRequired,
  'no-disconnected': noDisconnected,
  'no-implicit-split': noImplicitSplit,
  'no-implicit-start': noImplicitStart,
  'no-implicit-end': noImplicitEnd,
  'no-duplicate-sequence-flows': noDuplicateSequenceFlows,
  'conditional-flows': conditionalFlows,
  'label-required': labelRequired,
  'single-blank-start-event': singleBlankStartEvent,
  'superfluous-gateway': superfluousGateway,
  'fake-join': fakeJoin,
  'no-complex-gateway': noComplexGateway,
  'no-bpmndi': noBpmndi,
  'no-overlapping-elements': noOverlappingElements,
  'event-based-gateway': eventBasedGateway,
};

const cache = {};
for (const [name, factory] of Object.entries(rules)) cache[`rule:bpmnlint/${name}`] = translated(factory);
cache['rule:bpmnlint-plugin-motcua/user-task-role'] = userTaskRole;
cache['rule:bpmnlint-plugin-motcua/supported-tasks'] = supportedTasks;

export const lintConfig = {
  resolver: new StaticResolver(cache),
  config: {
    rules: {
      'start-event-required': 'error',
      'end-event-required': 'error',
      'no-disconnected': 'error',
      'no-implicit-split': 'error',
      'no-implicit-start': 'error',
      'no-implicit-end': 'error',
      'no-duplicate-sequence-flows': 'error',
      'conditional-flows': 'error',
      'label-required': 'warn',
      'single-blank-start-event': 'error',
      'superfluous-gateway': 'warn',
      'fake-join': 'warn',
      'no-complex-gateway': 'error',
      'no-bpmndi': 'error',
      'no-overlapping-elements': 'warn',
      'event-based-gateway': 'error',
      'motcua/user-task-role': 'error',
      'motcua/supported-tasks': 'error',
    },
  },
};
