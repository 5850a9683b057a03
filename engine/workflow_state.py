"""Workflow state without the process spec.

SpiffWorkflow's default serializer writes the whole process spec into every workflow's JSON (lessons.md:
12.7 KB per dossier). Here the spec is serialized once per procedure version (`spec_to_json`) and kept
deserialized in process memory; a dossier's state holds only its tasks and data, zlib-compressed.
"""

from __future__ import annotations

import json
import zlib
from copy import deepcopy
from functools import cache
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


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
def serializer(dialect: str) -> BpmnWorkflowSerializer:
    config = deepcopy(SPIFF_CONFIG if dialect == "spiff" else CAMUNDA_CONFIG)
    config[BpmnWorkflow] = LeanWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


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
    return zlib.compress(json.dumps(dct, separators=(",", ":")).encode(), 1)


def load_state(dialect: str, blob: bytes, spec, subprocess_specs, script_engine):
    s = serializer(dialect)
    dct = json.loads(zlib.decompress(blob))
    s.migrate(dct)
    dct["_spec"] = spec
    dct["_subprocess_specs"] = subprocess_specs
    workflow = s.from_dict(dct)
    workflow.script_engine = script_engine
    return workflow
