"""Workflow state without the process spec.

SpiffWorkflow's default serializer writes the whole process spec into every workflow's JSON (about
12.7 KB per dossier; DEVELOPERS.md, "Persistence and speed"). Here the spec is serialized once per procedure version (`spec_to_json`) and kept
deserialized in process memory; a dossier's state holds only its tasks and data, zlib-compressed.

Data is data. SpiffWorkflow's registry turns any dict with a `typename` key back into the class registered
under that name, so intake data like `{"ghi_chu": {"typename": "BpmnWorkflow"}}` would be read back as an
engine object (and fail) the next time the dossier is restored. Every dict of user data (task data, their
deltas, workflow data, event payloads) is therefore escaped when stored: a key `typename`, or any key that
starts with `~`, gets one more `~` in front; restoring strips it. Only the engine's own objects keep a bare
`typename`. States stored before the escape (no `data_escaped` marker) are read as they were written.
See docs/security.md ("Data").
"""

from __future__ import annotations

import json
import zlib
from copy import deepcopy
from functools import cache
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task

ESCAPE = "~"
TYPE_KEY = "typename"
ESCAPE_MARKER = "data_escaped"  # in a stored state: its user data was escaped by `escape_data`


def _escape_key(key):
    if key.__class__ is str and (key == TYPE_KEY or key[:1] == ESCAPE):
        return ESCAPE + key
    return key


def _unescape_key(key):
    return key[1:] if key.__class__ is str and key[:1] == ESCAPE else key


def escape_data(value):
    """`value` with every dict key `typename` or `~...` prefixed by `~`; the same object when none is."""
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            ek, ev = _escape_key(k), escape_data(v)
            changed = changed or ek is not k or ev is not v
            out[ek] = ev
        return out if changed else value
    if isinstance(value, list):
        items = [escape_data(v) for v in value]
        return items if any(a is not b for a, b in zip(items, value)) else value
    return value


class DataRegistry(DefaultRegistry):
    """SpiffWorkflow's registry, with plain dicts (user data) escaped on the way out and unescaped back.

    A dict the registry builds for an engine object carries `typename` and is restored as that object; a
    dict of user data never does after `escape_data`, so `restore` only strips the escape from its keys.
    """

    def convert(self, obj):
        if isinstance(obj, dict) and self.typenames.get(obj.__class__) is None:
            obj = {_escape_key(k): v for k, v in obj.items()}
        return super().convert(obj)

    def restore(self, val, **kwargs):
        if val.__class__ is dict and TYPE_KEY not in val:
            return {_unescape_key(k): self.restore(v, **kwargs) for k, v in val.items()}
        return super().restore(val, **kwargs)


class DataTaskConverter(TaskConverter):
    """SpiffWorkflow's task converter stores task data (or its delta) without the registry: escape it here."""

    def to_dict(self, task):
        dct = super().to_dict(task)
        dct["data"] = escape_data(dct["data"])
        delta = dct["delta"]
        if delta:
            delta["updates"] = escape_data(delta["updates"])
            delta["deletions"] = [_escape_key(k) for k in delta["deletions"]]
        return dct

    def from_dict(self, dct, workflow):
        delta = dct.get("delta")
        if delta and delta.get("deletions"):
            delta["deletions"] = [_unescape_key(k) for k in delta["deletions"]]
        return super().from_dict(dct, workflow)  # data and updates go through DataRegistry.restore


class LeanWorkflowConverter(BpmnWorkflowConverter):
    """Like SpiffWorkflow's converter, but the spec is neither written nor read: the caller supplies it."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        spec = dct.pop("_spec")
        subprocess_specs = dct.pop("_subprocess_specs")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


@cache
def serializer(dialect: str, escaped: bool = True) -> BpmnWorkflowSerializer:
    """The state serializer; `escaped=False` reads states stored before user data was escaped."""
    config = deepcopy(SPIFF_CONFIG if dialect == "spiff" else CAMUNDA_CONFIG)
    config[BpmnWorkflow] = LeanWorkflowConverter
    if not escaped:
        return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    config[Task] = DataTaskConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config, DataRegistry()))


@cache
def full_serializer(dialect: str) -> BpmnWorkflowSerializer:
    """SpiffWorkflow's own serializer for the dialect, used for specs (and as the benchmark baseline)."""
    config = deepcopy(SPIFF_CONFIG if dialect == "spiff" else CAMUNDA_CONFIG)
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


def spec_to_json(dialect: str, spec, subprocess_specs: dict) -> str:
    s = full_serializer(dialect)
    return json.dumps(
        {
            "spec": s.to_dict(spec),
            "subprocess_specs": {name: s.to_dict(sp) for name, sp in subprocess_specs.items()},
        },
        separators=(",", ":"),
    )


def spec_from_json(dialect: str, text: str):
    s = full_serializer(dialect)
    dct = json.loads(text)
    spec = s.from_dict(dct["spec"])
    subs = {name: s.from_dict(sp) for name, sp in dct["subprocess_specs"].items()}
    return spec, subs


def dump_state(dialect: str, workflow) -> bytes:
    dct = serializer(dialect).to_dict(workflow)
    dct["serializer_version"] = SERIALIZER_VERSION
    dct[ESCAPE_MARKER] = 1
    return zlib.compress(json.dumps(dct, separators=(",", ":")).encode(), 1)


def load_state(dialect: str, blob: bytes, spec, subprocess_specs, script_engine):
    dct = json.loads(zlib.decompress(blob))
    s = serializer(dialect, escaped=bool(dct.pop(ESCAPE_MARKER, 0)))
    s.migrate(dct)
    dct["_spec"] = spec
    dct["_subprocess_specs"] = subprocess_specs
    workflow = s.from_dict(dct)
    workflow.script_engine = script_engine
    return workflow
