"""Connectors: service tasks that call an HTTP endpoint named in configuration (docs/bpmn-conventions.md,
"Bước dịch vụ / Connectors").

- Configuration: `MOTCUA_CONNECTORS` (JSON text) or `MOTCUA_CONNECTORS_FILE` (a JSON file), each connector
  by name → `urls` (the allow-list of base URLs; the first is the default), `path`, `timeout` (seconds, each
  try), `retries` (further tries after the first), `budget` (seconds for the whole call, retries and waits
  included), `method` (POST). Every try sends the call's `Idempotency-Key` (`idempotency_key`).
- A `bpmn:serviceTask` names its connector with the extension property `connector`, may pick another
  allow-listed base URL with `url`, maps request fields with `input.<field sent>` = `<dossier field>` and
  results with `output.<dossier field>` = `<field of the JSON answer>`. Deploy refuses an unknown connector
  or a URL off the allow-list, naming the element (`check_service_tasks`).
- At run time the dossier waits at the service task (SpiffWorkflow leaves it STARTED) and a
  `connector_calls` row is written in the step's transaction (`sync_calls`). The worker's sweep calls the
  endpoint outside any transaction (`run_due`), then completes the service task in a transaction of its own
  guarded by the dossier's version; a failure after the retries becomes an incident on the dossier, which an
  officer retries (`retry_incident`). Nothing is lost: the row stays until the step is done.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import urllib3
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import insert, or_, select, update

from .auth import SYSTEM, Actor, visible_dossier
from .errors import Conflict, InvalidInput, NotFound
from .models import ConnectorCall, Dossier, Event, utcnow
from .views import iso

log = logging.getLogger(__name__)
CONFIG_ENV = "MOTCUA_CONNECTORS"
CONFIG_FILE_ENV = "MOTCUA_CONNECTORS_FILE"
PENDING, RUNNING, INCIDENT, DONE = "pending", "running", "incident", "done"
OPEN_STATES = (PENDING, RUNNING, INCIDENT)
#: a call claimed longer ago than this by a worker that died is claimed again
LEASE = timedelta(minutes=5)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_CALL_ID = re.compile(r"^[0-9a-f-]{1,36}$")  # a workflow task's id (a UUID)
#: what an input may read besides a field of the dossier's data: the applicant's columns
APPLICANT = {"applicant.name", "applicant.id_number", "applicant.phone", "applicant.email"}
_pool = urllib3.PoolManager(num_pools=8, retries=False)
#: the longest a connector's budget (or timeout) may be: a worker is never held longer by one call
MAX_BUDGET = 120.0
#: the largest answer read (a JSON object of a few fields is expected)
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Connector:
    name: str
    urls: tuple[str, ...]
    path: str = ""
    method: str = "POST"
    timeout: float = 5.0
    retries: int = 2
    #: seconds one step's call may take in all, its retries and the waits between them included
    budget: float = 15.0


def _base(url: str) -> str:
    return url.strip().rstrip("/")


def configured(env=None) -> dict[str, Connector]:
    """The connectors of this installation, read from the environment (each call: a deploy sees a change)."""
    env = os.environ if env is None else env
    text = env.get(CONFIG_ENV)
    if not text and env.get(CONFIG_FILE_ENV):
        text = Path(env[CONFIG_FILE_ENV]).read_text(encoding="utf-8")
    if not text:
        return {}
    try:
        raw = json.loads(text)
        out = {}
        for name, c in raw.items():
            urls = c.get("urls") or ([c["url"]] if c.get("url") else [])
            out[name] = Connector(
                name=name,
                urls=tuple(_base(u) for u in urls),
                path=str(c.get("path", "")),
                method=str(c.get("method", "POST")).upper(),
                timeout=float(c.get("timeout", 5.0)),
                retries=max(0, int(c.get("retries", 2))),
                budget=float(c.get("budget", 15.0)),
            )
            if not (0 < out[name].timeout <= MAX_BUDGET and 0 < out[name].budget <= MAX_BUDGET):
                raise ValueError(f"'{name}': timeout and budget are seconds, more than 0 and at most {MAX_BUDGET}")
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigError(f"{CONFIG_ENV} / {CONFIG_FILE_ENV}: {type(exc).__name__}: {exc}") from None
    return out


class ConfigError(ValueError):
    """The connectors' configuration cannot be read (not JSON, or not `{name: {urls, path, …}}`)."""


def _problem(element, vi, en) -> dict:
    return {"element": element, "message_vi": vi, "message_en": en}


def check_service_tasks(root, involved, dialect: str, known: dict[str, Connector] | None = None):
    """`(problems, {service task id: its call})` of the service tasks of these processes (read at deploy)."""
    from . import bpmn_xml

    problems: list[dict] = []
    if known is None:
        try:
            known = configured()
        except ConfigError as exc:  # every service task is then refused, with the reason
            problems.append(_problem(None, f"Cấu hình kết nối không đọc được: {exc}", str(exc)))
            known = {}
    ids = {info.id for info in involved}
    found: dict[str, dict] = {}
    for process in bpmn_xml.processes(root):
        if process.get("id") not in ids:
            continue
        for el in process.iter(f"{{{bpmn_xml.BPMN_NS}}}serviceTask"):
            eid = el.get("id") or "?"
            props = bpmn_xml.properties(el)
            name = (props.get("connector") or "").strip()
            if dialect == "spiff":
                problems.append(
                    _problem(
                        eid,
                        f"Bước dịch vụ '{eid}': chỉ hỗ trợ kết nối khai báo bằng camunda:property 'connector'",
                        f"service task '{eid}': only connectors named by a camunda:property 'connector' are supported",
                    )
                )
                continue
            if not name:
                problems.append(
                    _problem(
                        eid,
                        f"Bước dịch vụ '{eid}' chưa nêu kết nối (thuộc tính 'connector')",
                        f"service task '{eid}' names no connector (property 'connector')",
                    )
                )
                continue
            conn = known.get(name)
            if conn is None:
                problems.append(
                    _problem(
                        eid,
                        f"Bước dịch vụ '{eid}': kết nối '{name}' chưa được cấu hình",
                        f"service task '{eid}': connector '{name}' is not configured",
                    )
                )
                continue
            url = _base(props.get("url") or "") or (conn.urls[0] if conn.urls else "")
            if url not in conn.urls:
                problems.append(
                    _problem(
                        eid,
                        f"Bước dịch vụ '{eid}': địa chỉ '{url}' không nằm trong danh sách cho phép của kết nối '{name}'",
                        f"service task '{eid}': URL '{url}' is not on the allow-list of connector '{name}'",
                    )
                )
                continue
            inputs: dict[str, str] = {}
            outputs: dict[str, str] = {}
            for key, value in props.items():
                for prefix, target in (("input.", inputs), ("output.", outputs)):
                    if key.startswith(prefix):
                        field, source = key[len(prefix) :], value.strip()
                        readable = _FIELD.match(source) or (prefix == "input." and source in APPLICANT)
                        if not _FIELD.match(field) or not readable:
                            problems.append(
                                _problem(
                                    eid,
                                    f"Bước dịch vụ '{eid}': ánh xạ '{key}' = '{value}' không hợp lệ (tên trường)",
                                    f"service task '{eid}': mapping '{key}' = '{value}' is not a field name",
                                )
                            )
                        else:
                            target[field] = source
            found[eid] = {"connector": name, "url": url, "inputs": inputs, "outputs": outputs}
    return problems, found


# -- run time -------------------------------------------------------------------------------------------
def waiting_calls(workflow, rt, started: list | None = None) -> dict:
    """`{task id: (task, call key, its connector call)}` of the workflow's service tasks that wait for their
    connector (STARTED), its own and those of the procedures it calls (`Runtime.service_task`). `started`:
    the workflow's STARTED tasks when the caller has them already (`Walk.started`, engine/walk.py)."""
    out = {}
    for t in workflow.get_tasks(state=TaskState.STARTED) if started is None else started:
        if isinstance(t.task_spec, ServiceTask):
            found = rt.service_task(t)
            if found is not None:
                out[str(t.id)] = (t, *found)
    return out


def bpmn_element(key: str) -> str:
    """The BPMN element id of a call key (`Service_CheckId`, or `Service_CheckId@12` in a called procedure)."""
    return key.rpartition("@")[0] or key


def sync_calls(s, dossier, workflow, rt, now: datetime, started: list | None = None) -> None:
    """In the step's transaction: a `connector_calls` row for each service task the workflow now waits at
    (`started`: see `waiting_calls`)."""
    current = waiting_calls(workflow, rt, started)
    if not current:
        return
    conn = s.connection()
    have = set(conn.execute(select(ConnectorCall.id).where(ConnectorCall.id.in_(list(current)))).scalars())
    rows = [
        dict(
            id=tid,
            dossier_id=dossier.id,
            element_id=key,
            title=(t.task_spec.bpmn_name or t.task_spec.bpmn_id)[:500],
            connector=spec["connector"],
            state=PENDING,
            attempts=0,
            next_at=now,
            created_at=now,
        )
        for tid, (t, key, spec) in current.items()
        if tid not in have
    ]
    if rows:
        conn.execute(insert(ConnectorCall), rows)


class CallFailed(Exception):
    pass


def idempotency_key(dossier_code: str, element_id: str, call_id: str) -> str:
    """What every try of one service task's call sends as `Idempotency-Key`: the same for its retries and for
    an officer's retry of its incident, another for the next time the dossier reaches the task (a loop)."""
    return f"{dossier_code}/{element_id}/{call_id}"


def _read_answer(r, deadline: float, clock) -> bytes:
    """The body, read piece by piece so that an endpoint dripping bytes cannot outlast the budget."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if clock() > deadline:
            raise CallFailed("the connector's time budget ran out while reading the answer")
        piece = r.read1(65536)
        if not piece:
            return b"".join(chunks)
        size += len(piece)
        if size > MAX_ANSWER_BYTES:
            raise CallFailed(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(piece)


def call(connector: Connector, url: str, body: dict, key: str | None = None, clock=time.monotonic) -> dict:
    """One step's call: tries (the first and `retries` more) with the connector's timeout, all within its
    `budget` seconds counted from the first try, waits included; the JSON object answered, else CallFailed.
    `key` goes as the `Idempotency-Key` header of every try, so the far end can tell a retry from a new call."""
    deadline = clock() + connector.budget
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    last = ""
    for attempt in range(connector.retries + 1):
        if attempt:
            pause = min(2.0, 0.2 * attempt)
            if clock() + pause >= deadline:
                last = f"{last}; the connector's time budget ({connector.budget:g} s) ran out after {attempt} tries"
                break
            time.sleep(pause)
        left = deadline - clock()
        if left <= 0:
            last = f"{last}; the connector's time budget ({connector.budget:g} s) ran out after {attempt} tries"
            break
        wait = min(connector.timeout, left)
        try:
            r = _pool.request(
                connector.method,
                url + connector.path,
                body=json.dumps(body).encode(),
                headers=headers,
                timeout=urllib3.Timeout(connect=wait, read=wait),
                preload_content=False,
            )
            try:
                data = _read_answer(r, deadline, clock)
            finally:
                r.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"[:900]
            continue
        if 200 <= r.status < 300:
            try:
                answer = json.loads(data or b"{}")
            except ValueError:
                raise CallFailed(f"HTTP {r.status}: the answer is not JSON") from None
            if not isinstance(answer, dict):
                raise CallFailed(f"HTTP {r.status}: the answer is not a JSON object")
            return answer
        last = f"HTTP {r.status}: {data[:200].decode('utf-8', 'replace')}"
        if 400 <= r.status < 500 and r.status not in (408, 429):
            break  # the endpoint refused this request: trying again gives the same answer
    raise CallFailed(last.lstrip("; ") or "no answer")


def _claim(db, now: datetime, limit: int) -> list[str]:
    claimed = []
    with db.uow() as s:
        due = or_(
            (ConnectorCall.state == PENDING) & (ConnectorCall.next_at <= now),
            (ConnectorCall.state == RUNNING) & (ConnectorCall.claimed_at < now - LEASE),
        )
        ids = s.execute(select(ConnectorCall.id).where(due).order_by(ConnectorCall.next_at).limit(limit)).scalars()
        for cid in list(ids):
            n = s.execute(
                update(ConnectorCall)
                .where(ConnectorCall.id == cid, due)
                .values(state=RUNNING, claimed_at=now, attempts=ConnectorCall.attempts + 1)
            ).rowcount
            if n == 1:
                claimed.append(cid)
    return claimed


def run_due(service, now: datetime | None = None, limit: int = 50, known: dict[str, Connector] | None = None) -> dict:
    """The worker's part: call each due connector outside any transaction, then record the outcome."""
    result = {"done": 0, "incidents": 0}
    if known is None:
        try:
            known = configured()
        except ConfigError:
            log.exception("connectors: the configuration cannot be read; no call is made")
            return result
    for cid in _claim(service.db, now or utcnow(), limit):
        with service.db.uow() as s:
            c = s.get(ConnectorCall, cid)
            d = s.get(Dossier, c.dossier_id)
            version_id, data, name = d.procedure_version_id, dict(d.data or {}), c.connector
            key = idempotency_key(d.code, bpmn_element(c.element_id), c.id)
            data.update(
                {f"applicant.{k}": getattr(d, f"applicant_{k}") for k in ("name", "id_number", "phone", "email")}
            )
            spec = service.runtimes.service_task_of(s, version_id, c.element_id)
        conn = known.get(name)
        try:
            if conn is None:
                raise CallFailed(f"connector '{name}' is no longer configured")
            url = spec.get("url") or conn.urls[0]
            if url not in conn.urls:
                raise CallFailed(f"URL '{url}' is no longer on the allow-list of '{name}'")
            body = {field: data.get(source) for field, source in spec.get("inputs", {}).items()}
            answer = call(conn, url, body, key)
        except CallFailed as exc:
            _incident(service.db, cid, str(exc), utcnow())
            result["incidents"] += 1
            continue
        out = {field: answer.get(key) for field, key in spec.get("outputs", {}).items()}
        try:
            _complete(service, cid, out, utcnow())
        except Conflict:  # the dossier changed meanwhile: the next sweep calls again (the answer is not kept)
            with service.db.uow() as s:
                s.execute(update(ConnectorCall).where(ConnectorCall.id == cid).values(state=PENDING, claimed_at=None))
            continue
        except Exception as exc:  # the workflow refused the answer (a condition, a script): an incident to see
            _incident(service.db, cid, getattr(exc, "message_en", None) or f"{type(exc).__name__}: {exc}", utcnow())
            result["incidents"] += 1
            continue
        result["done"] += 1
    return result


def _event(s, dossier_id: int, actor: str, action: str, c: ConnectorCall, now: datetime, **details) -> None:
    s.execute(
        insert(Event).values(
            dossier_id=dossier_id,
            at=now,
            actor=actor,
            action=action,
            task_id=c.id,
            details={"element": bpmn_element(c.element_id), "connector": c.connector, **details},
        )
    )


def _incident(db, cid: str, error: str, now: datetime) -> None:
    with db.uow() as s:
        c = s.get(ConnectorCall, cid)
        c.state, c.last_error, c.claimed_at = INCIDENT, error[:1000], None
        _event(s, c.dossier_id, SYSTEM.username, "connector_incident", c, now, error=error[:500])


def _complete(service, cid: str, out: dict, now: datetime) -> None:
    """Complete the service task with the answer's fields, in one transaction guarded by the dossier's version."""
    with service.db.uow() as s:
        c = s.get(ConnectorCall, cid)
        loaded = service.open_for_update(s, dossier_id=c.dossier_id)
        task = loaded.workflow.get_task_from_id(UUID(cid))
        if task is not None and task.state == TaskState.STARTED:
            task.data.update(out)
            task.complete()
            service.run_engine(loaded.workflow, loaded.rt)
            loaded.dossier.data = {**(loaded.dossier.data or {}), **out}
            service.finish_step(s, loaded, SYSTEM, now)
        c.state, c.resolved_at, c.claimed_at, c.last_error = DONE, now, None, None
        _event(s, c.dossier_id, SYSTEM.username, "connector_called", c, now, fields=sorted(out))


def incidents(db, actor: Actor, code: str) -> list[dict]:
    """The dossier's connector calls still open (pending, running, or an incident), oldest first."""
    with db.uow() as s:
        d = visible_dossier(s, actor, code)
        rows = s.scalars(
            select(ConnectorCall)
            .where(ConnectorCall.dossier_id == d.id, ConnectorCall.state.in_(OPEN_STATES))
            .order_by(ConnectorCall.created_at)
        ).all()
        return [view(c) for c in rows]


def view(c: ConnectorCall) -> dict:
    return {
        "id": c.id,
        "element": bpmn_element(c.element_id),
        "title": c.title,
        "connector": c.connector,
        "state": c.state,
        "attempts": c.attempts,
        "error": c.last_error,
        "created_at": iso(c.created_at),
    }


def retry_incident(db, actor: Actor, code: str, incident_id: str) -> dict:
    """An officer asks for the failed call again: the worker's next sweep calls it (an audit event)."""
    now = utcnow()
    with db.uow() as s:
        d = visible_dossier(s, actor, code, lock=True, change=True)  # who may: before the id is looked at
        if not isinstance(incident_id, str) or not _CALL_ID.match(incident_id):
            raise InvalidInput("Mã sự cố không hợp lệ", "invalid incident id")
        c = s.get(ConnectorCall, incident_id)
        if c is None or c.dossier_id != d.id:
            raise NotFound(f"Không tìm thấy sự cố '{incident_id}'", f"incident '{incident_id}' not found")
        if c.state != INCIDENT:
            raise Conflict(
                "Cuộc gọi kết nối này không ở trạng thái sự cố; không cần thử lại",
                f"this connector call is '{c.state}', not an incident; nothing to retry",
            )
        c.state, c.next_at = PENDING, now
        _event(s, d.id, actor.username, "connector_retry", c, now)
        s.flush()
        return view(c)
