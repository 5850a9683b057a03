"""Reading BPMN XML safely and extracting what the product needs from it.

Hostile XML (DTDs, entity expansion, external entities, oversized files) is refused before any parser
that could act on it sees the bytes. What we read from a process (metadata, roles per user task, forms,
step deadlines, statuses, conditions, scripts, timers) is extracted here once, at deploy time, and
stored with the procedure version; at run time nothing re-reads the XML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException
from lxml import etree

from .auth import USERNAME

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS, "spiffworkflow": SPIFF_NS}

MAX_ELEMENTS = 20000
# A user task that names no role (no lane, no candidateGroups) goes to the one-stop desk.
DEFAULT_ROLE = "receiver"

# Flow nodes SpiffWorkflow can execute for us. Anything else inside a process is named and refused.
SUPPORTED_NODES = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "scriptTask",
    "serviceTask",  # only with a configured connector (engine/connectors.py)
    "businessRuleTask",
    "subProcess",
    "callActivity",
    "transaction",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "sequenceFlow",
    "laneSet",
    "lane",
    "flowNodeRef",
    "childLaneSet",
    "dataObject",
    "dataObjectReference",
    "dataStoreReference",
    "dataInputAssociation",
    "dataOutputAssociation",
    "association",
    "textAnnotation",
    "group",
    "property",
    "ioSpecification",
    "standardLoopCharacteristics",
    "multiInstanceLoopCharacteristics",
}
# Elements we refuse with a reason: they need integrations this product does not run.
UNSUPPORTED_REASONS = {
    "sendTask": ("bước gửi tin (sendTask) chưa được hỗ trợ", "send tasks are not supported"),
    "receiveTask": ("bước nhận tin (receiveTask) chưa được hỗ trợ", "receive tasks are not supported"),
    "complexGateway": ("cổng phức hợp (complexGateway) chưa được hỗ trợ", "complex gateways are not supported"),
    "adHocSubProcess": ("quy trình con ad-hoc chưa được hỗ trợ", "ad-hoc subprocesses are not supported"),
}


class XmlRefused(Exception):
    def __init__(self, message_vi: str, message_en: str):
        super().__init__(message_en)
        self.message_vi = message_vi
        self.message_en = message_en


def parse_xml(content: bytes, max_bytes: int) -> etree._Element:
    """Parse untrusted BPMN bytes: no DTD, no entities, no network, bounded size."""
    root = parse_untrusted(content, max_bytes)
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise XmlRefused(
            "Không phải tệp BPMN 2.0 (thiếu bpmn:definitions)", "not a BPMN 2.0 file (no bpmn:definitions root)"
        )
    return root


def parse_untrusted(content: bytes, max_bytes: int) -> etree._Element:
    """Parse untrusted XML bytes (BPMN, DMN): no DTD, no entities, no network, bounded size and elements."""
    if len(content) > max_bytes:
        raise XmlRefused(
            f"Tệp quá lớn ({len(content)} byte, tối đa {max_bytes})",
            f"file too large ({len(content)} bytes, at most {max_bytes})",
        )
    try:
        DET.fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlRefused(
            "Tệp XML chứa DTD hoặc thực thể (entity) bị cấm: " + type(exc).__name__,
            "XML with a DTD or entities is refused: " + type(exc).__name__,
        ) from exc
    except DET.ParseError as exc:
        raise XmlRefused(f"XML không hợp lệ: {exc}", f"malformed XML: {exc}") from exc
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
    )
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XmlRefused(f"XML không hợp lệ: {exc}", f"malformed XML: {exc}") from exc
    count = sum(1 for _ in root.iter())
    if count > MAX_ELEMENTS:
        raise XmlRefused(f"Quá nhiều phần tử XML ({count})", f"too many XML elements ({count})")
    return root


def dialect(root) -> str:
    """'spiff' when the file uses SpiffWorkflow's extensions, else 'camunda' (bpmn.io / Camunda 7)."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{" + SPIFF_NS):
            return "spiff"
    return "camunda"


def properties(el) -> dict[str, str]:
    """Extension properties of an element (camunda:properties or spiffworkflow:properties)."""
    out = {}
    for prop in el.xpath(
        "./bpmn:extensionElements/camunda:properties/camunda:property"
        " | ./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property",
        namespaces=NS,
    ):
        name = prop.get("name")
        if name:
            out[name] = prop.get("value") if prop.get("value") is not None else (prop.text or "")
    return out


_ROLE_IN_PARENS = re.compile(r"\(([A-Za-z0-9_.\-]+)\)\s*$")


def lane_roles(lane) -> list[str]:
    """A lane's roles: the slug in trailing parentheses of its name, or its name, and its id."""
    roles = []
    name = (lane.get("name") or "").strip()
    if name:
        m = _ROLE_IN_PARENS.search(name)
        roles.append(m.group(1) if m else name)
    if lane.get("id"):
        roles.append(lane.get("id"))
    return list(dict.fromkeys(roles))


_CAMUNDA_TYPES = {
    "string": {"type": "string"},
    "long": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "enum": {"type": "string"},
}


def inline_form(task) -> dict | None:
    """A Camunda 7 inline form (camunda:formData) as a JSON Schema 2020-12 document, or None."""
    fields = task.xpath("./bpmn:extensionElements/camunda:formData/camunda:formField", namespaces=NS)
    if not fields:
        return None
    props, required = {}, []
    for f in fields:
        fid = f.get("id")
        if not fid:
            continue
        prop: dict[str, Any] = dict(_CAMUNDA_TYPES.get(f.get("type") or "string", {"type": "string"}))
        prop["title"] = f.get("label") or fid
        values = f.xpath("./camunda:value", namespaces=NS)
        if values:
            prop["oneOf"] = [
                {"const": v.get("id"), "title": v.get("name") or v.get("id")} for v in values if v.get("id")
            ]
        default = f.get("defaultValue")
        if default is not None and prop["type"] == "string" and "format" not in prop and not values:
            prop["default"] = default
        if f.xpath("./camunda:validation/camunda:constraint[@name='required']", namespaces=NS):
            required.append(fid)
        props[fid] = prop
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "title": task.get("name") or task.get("id"),
        "properties": props,
    }
    if required:
        schema["required"] = required
    return schema


def _local(el) -> str:
    return etree.QName(el).localname


def _where(el) -> str:
    return f"{_local(el)} '{el.get('id') or '?'}'" + (f" ({el.get('name')})" if el.get("name") else "")


@dataclass
class ProcessInfo:
    id: str
    name: str | None
    executable: bool
    meta: dict
    user_tasks: list[dict] = field(default_factory=list)
    end_events: dict = field(default_factory=dict)
    task_status: dict = field(default_factory=dict)
    conditions: list[tuple[str, str]] = field(default_factory=list)
    scripts: list[tuple[str, str]] = field(default_factory=list)
    timers: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    call_activities: list[tuple[str, str]] = field(default_factory=list)
    business_rules: list[tuple[str, str | None]] = field(default_factory=list)  # (element id, decision id)
    # where a performing agency is written: (lane or user task id, its `agency` value, the user tasks it gives)
    agency_refs: list[tuple[str, str, list[str]]] = field(default_factory=list)


def _problem(el_id, message_vi, message_en):
    return {"element": el_id, "message_vi": message_vi, "message_en": message_en}


def _lanes_by_node(process) -> dict[str, list[str]]:
    out = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        roles = lane_roles(lane)
        for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
            if ref.text:
                out[ref.text.strip()] = roles
    return out


def _lane_agencies(process) -> tuple[dict[str, str], dict[str, str]]:
    """The performing agency a lane names (its `agency` property) for each node in it, and the lane each node
    takes it from (docs/bpmn-conventions.md, "Inter-agency procedures")."""
    out, lane_of = {}, {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        agency = (properties(lane).get("agency") or "").strip()
        if agency:
            for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
                if ref.text:
                    out[ref.text.strip()] = agency
                    lane_of[ref.text.strip()] = lane.get("id") or "?"
    return out, lane_of


def _agency_refs(process, tasks: list[dict], own: dict[str, str], lane_of: dict[str, str]) -> list:
    """Each place an `agency` is written - every lane that names one, every user task with its own - with the
    user tasks it gives to that agency, so that a problem names the element to fix."""
    refs = []
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        agency = (properties(lane).get("agency") or "").strip()
        if agency:
            lid = lane.get("id") or "?"
            given = [t["id"] for t in tasks if lane_of.get(t["id"]) == lid and t["id"] not in own]
            refs.append((lid, agency, given))
    refs.extend((tid, agency, [tid]) for tid, agency in own.items())
    return refs


def describe_process(process) -> ProcessInfo:
    """Everything the engine needs from one bpmn:process, with the problems found along the way."""
    info = ProcessInfo(
        id=process.get("id"),
        name=process.get("name"),
        executable=(process.get("isExecutable") or "").lower() == "true",
        meta=properties(process),
    )
    lanes = _lanes_by_node(process)
    lane_agencies, lane_of = _lane_agencies(process)
    own_agencies: dict[str, str] = {}
    for el in process.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN_NS:
            continue
        tag = _local(el)
        eid = el.get("id") or "?"
        if tag in UNSUPPORTED_REASONS:
            vi, en = UNSUPPORTED_REASONS[tag]
            info.problems.append(_problem(eid, f"{_where(el)}: {vi}", f"{_where(el)}: {en}"))
            continue
        if tag == "userTask":
            props = properties(el)
            roles = []
            groups = el.get(f"{{{CAMUNDA_NS}}}candidateGroups")
            assignee = el.get(f"{{{CAMUNDA_NS}}}assignee")
            if assignee is not None:
                assignee = assignee.strip() or None
            if assignee and not USERNAME.match(assignee):
                info.problems.append(
                    _problem(
                        eid,
                        f"{_where(el)}: camunda:assignee '{assignee}' phải là tên đăng nhập của một cán bộ "
                        "(biểu thức như ${{...}} không được hỗ trợ)",
                        f"{_where(el)}: camunda:assignee '{assignee}' must be an officer's username "
                        "(expressions such as ${{...}} are not supported)",
                    )
                )
            if groups:
                roles = [g.strip() for g in groups.split(",") if g.strip()]
            elif eid in lanes and not assignee:  # a named assignee overrides the lane (docs/bpmn-conventions.md)
                roles = lanes[eid]
            form_key = el.get(f"{{{CAMUNDA_NS}}}formKey") or props.get("formJsonSchemaFilename")
            ui_key = props.get("formUiSchemaFilename")
            if not roles and not assignee:
                roles = [DEFAULT_ROLE]
                info.warnings.append(
                    _problem(
                        eid,
                        f"{_where(el)}: bước chưa có vai trò (lane hoặc camunda:candidateGroups); giao cho '{DEFAULT_ROLE}'",
                        f"{_where(el)}: user task has no role (lane or camunda:candidateGroups); given to '{DEFAULT_ROLE}'",
                    )
                )
            inline = inline_form(el)
            info.user_tasks.append(
                {
                    "id": eid,
                    "name": el.get("name") or eid,
                    "roles": roles,
                    "assignee": assignee,
                    "form_key": form_key,
                    "ui_form_key": ui_key,
                    "deadline": props.get("deadline"),
                    "status": props.get("status"),
                    "inline_form": inline,
                }
            )
            # the agency whose staff do the step: a code or an expression (engine/agencies.py); only when
            # named, so that a procedure without one means what it meant before
            own = (props.get("agency") or "").strip()
            if own:
                own_agencies[eid] = own
            agency = own or lane_agencies.get(eid)
            if agency:
                info.user_tasks[-1]["agency"] = agency
            if props.get("status"):
                info.task_status[eid] = props["status"]
        elif tag == "endEvent":
            info.end_events[eid] = properties(el).get("status")
        elif tag == "conditionExpression" or tag == "condition":
            parent = el.getparent()
            info.conditions.append((parent.get("id") or "?", (el.text or "").strip()))
        elif tag == "scriptTask":
            script = el.find(f"{{{BPMN_NS}}}script")
            info.scripts.append((eid, (script.text or "") if script is not None else ""))
        elif tag in ("timeDate", "timeDuration", "timeCycle"):
            owner = el.getparent().getparent()
            kind = {"timeDate": "date", "timeDuration": "duration", "timeCycle": "cycle"}[tag]
            info.timers.append((owner.get("id") or "?", kind, (el.text or "").strip()))
        elif tag == "timerEventDefinition":
            if not any(_local(c) in ("timeDate", "timeDuration", "timeCycle") for c in el if isinstance(c.tag, str)):
                owner = el.getparent()
                info.problems.append(
                    _problem(
                        owner.get("id") or "?",
                        f"{_where(owner)}: sự kiện hẹn giờ chưa có thời điểm/thời lượng",
                        f"{_where(owner)}: timer event has no date, duration or cycle",
                    )
                )
        elif tag == "businessRuleTask":
            ref = el.get(f"{{{CAMUNDA_NS}}}decisionRef") or "".join(
                el.xpath("./bpmn:extensionElements/spiffworkflow:calledDecisionId/text()", namespaces=NS)
            )
            info.business_rules.append((eid, ref.strip() or None))
        elif tag == "callActivity":
            info.call_activities.append((eid, el.get("calledElement") or ""))
    info.agency_refs = _agency_refs(process, info.user_tasks, own_agencies, lane_of)
    return info


def processes(root) -> list:
    return root.findall(f"{{{BPMN_NS}}}process")
