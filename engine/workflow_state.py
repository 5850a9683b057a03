"""Workflow state without the process spec.

SpiffWorkflow's default serializer writes the whole process spec into every workflow's JSON (about
12.7 KB per dossier; DEVELOPERS.md, "Persistence and speed"). Here the spec is serialized once per procedure version (`spec_to_json`) and kept
deserialized in process memory; a dossier's state holds only its tasks and data, zlib-compressed.

Data is data. SpiffWorkflow's registry turns any dict with a `typename` key back into the class registered
under that name, so intake data like `{"ghi_chu": {"typename": "BpmnWorkflow"}}` would be read back as an
engine object (and fail) the next time the dossier is restored. Every dict of user data (task data, their
deltas, workflow data, event payloads) goes through `DataRegistry` when stored: a dict with a key
`typename` or `~` is written as `{"~": [[key, value], ...]}` - a dict whose only key is `~` and that no
restore can take for an engine object - and read back as the dict it was. Only the engine's own objects
keep a bare `typename`. Other dicts are written as they are, so the check costs two key lookups per dict.
States stored before the escape (no `data_escaped` marker) are read as they were written.
See docs/security.md ("Data").
"""

from __future__ import annotations

import json
import zlib
from copy import deepcopy
from functools import cache
from types import ModuleType
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    TaskConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps(…, separators=…) without an encoder per call
ESCAPE = "~"
TYPE_KEY = "typename"
ESCAPE_MARKER = "data_escaped"  # in a stored state: its user data went through DataRegistry
_PRIMITIVES = frozenset({str, int, float, bool, type(None)})


class DataRegistry(DefaultRegistry):
    """SpiffWorkflow's registry, with dicts of user data that could be taken for an engine object (a key
    `typename`, or the escape key `~` itself) written as `{"~": [[key, value], ...]}` and read back.

    Also a faster walk than the registry's own for plain JSON values (no per-value dispatch).
    """

    def convert(self, obj):
        cls = obj.__class__
        if cls in _PRIMITIVES:
            return obj
        if cls is list:
            return [self.convert(v) for v in obj]
        if cls is dict and not self._encoder_mode:  # cleaned as SpiffWorkflow does: no callables, no modules
            out = {k: self.convert(v) for k, v in obj.items() if not callable(v) and not isinstance(v, ModuleType)}
            if TYPE_KEY in out or ESCAPE in out:
                return {ESCAPE: [[k, v] for k, v in out.items()]}
            return out
        return super().convert(obj)

    def restore(self, val, **kwargs):
        cls = val.__class__
        if cls in _PRIMITIVES:
            return val
        if cls is list:
            return [self.restore(v, **kwargs) for v in val]
        if cls is dict:
            if TYPE_KEY in val:  # an engine object: only the engine writes a bare `typename`
                return super().restore(val, **kwargs)
            pairs = val.get(ESCAPE)
            if pairs is not None and len(val) == 1 and pairs.__class__ is list:
                return {k: self.restore(v, **kwargs) for k, v in pairs}
            return {k: self.restore(v, **kwargs) for k, v in val.items()}
        return super().restore(val, **kwargs)


class DataTaskConverter(TaskConverter):
    """SpiffWorkflow's task converter writes task data (or its delta) without the registry: here it goes
    through `DataRegistry` like every other piece of data (it is read back through it already)."""

    def to_dict(self, task):
        dct = super().to_dict(task)
        dct["data"] = self.registry.convert(dct["data"])
        if dct["delta"]:
            dct["delta"]["updates"] = self.registry.convert(dct["delta"]["updates"])
        return dct


def _tasks_to_dict(registry, tasks: dict) -> dict:
    """`mapping_to_dict(workflow.tasks)` as SpiffWorkflow's registry and `DataTaskConverter` write it, the
    same dicts key for key, without the registry's dispatch per task (a third of a state's dump): each
    task's dict is built here, its internal data, data and delta going through `registry.convert` as they
    do there. A task of another class than `Task` (none today) takes the registry's way."""
    convert = registry.convert
    updated, deleted = DeepMerge.get_updated_keys, DeepMerge.get_deleted_keys
    out = {}
    for key, task in tasks.items():
        if task.__class__ is not Task:
            out[str(key)] = convert(task)
            continue
        parent = task.parent
        if parent is None:
            data, delta = convert(task.data), {}
        else:
            data = {}
            delta = {"updates": convert(updated(parent.data, task.data)), "deletions": deleted(parent.data, task.data)}
        tid = str(key)  # the key of a task is its id
        out[tid] = {
            "id": tid,
            "parent": str(task._parent) if parent is not None else None,
            "children": [str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": convert(task.internal_data),
            "data": data,
            "delta": delta,
            TYPE_KEY: "Task",
        }
    return out


def _workflow_to_dict(converter, workflow) -> dict:
    """`WorkflowConverter.to_dict` with the tasks written by `_tasks_to_dict`."""
    registry = converter.registry
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": _tasks_to_dict(registry, workflow.tasks),
        "root": str(workflow.task_tree.id),
    }


class LeanSubWorkflowConverter(BpmnSubWorkflowConverter):
    """SpiffWorkflow's converter of a called process's workflow, its tasks written by `_tasks_to_dict`."""

    def to_dict(self, workflow):
        dct = _workflow_to_dict(self, workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct


class LeanWorkflowConverter(BpmnWorkflowConverter):
    """Like SpiffWorkflow's converter, but the spec is neither written nor read: the caller supplies it.
    The tasks are written by `_tasks_to_dict`, the same dicts as SpiffWorkflow's task converter writes."""

    def to_dict(self, workflow):
        dct = _workflow_to_dict(self, workflow)
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


def _config(dialect: str) -> dict:
    """SpiffWorkflow's converters for the dialect; Camunda's lacks one for the plain service task, which a
    connector's service task is (engine/connectors.py)."""
    if dialect == "spiff":
        return deepcopy(SPIFF_CONFIG)
    config = deepcopy(CAMUNDA_CONFIG)
    config[ServiceTask] = BpmnTaskSpecConverter
    return config


@cache
def serializer(dialect: str, escaped: bool = True) -> BpmnWorkflowSerializer:
    """The state serializer; `escaped=False` reads states stored before user data was escaped."""
    config = _config(dialect)
    config[BpmnWorkflow] = LeanWorkflowConverter
    if not escaped:
        return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    config[Task] = DataTaskConverter
    config[BpmnSubWorkflow] = LeanSubWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config, DataRegistry()))


@cache
def full_serializer(dialect: str) -> BpmnWorkflowSerializer:
    """SpiffWorkflow's own serializer for the dialect, used for specs (and as the benchmark baseline)."""
    config = _config(dialect)
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
    return zlib.compress(_COMPACT.encode(dct).encode(), 1)


def load_state(dialect: str, blob: bytes, spec, subprocess_specs, script_engine, called_key: str | None = None):
    """The workflow of a stored state. `subprocess_specs` is a dict, or a function of the `called_key` entry
    of the workflow's data (the versions of the procedures it calls, engine/procedures.py) returning one."""
    dct = json.loads(zlib.decompress(blob))
    if callable(subprocess_specs):
        subprocess_specs = subprocess_specs((dct.get("data") or {}).get(called_key) if called_key else None)
    s = serializer(dialect, escaped=bool(dct.pop(ESCAPE_MARKER, 0)))
    s.migrate(dct)
    dct["_spec"] = spec
    dct["_subprocess_specs"] = subprocess_specs
    workflow = s.from_dict(dct)
    workflow.script_engine = script_engine
    return workflow
