"""Idempotency-Key for POST /dossiers and POST /tasks/{id}/complete.

A client that did not get an answer (timeout, dropped connection, a process killed) retries with the same
`Idempotency-Key` header and gets the first result instead of a second dossier or a 409. Records are keyed by
key + username (table `idempotency_records`) and hold the endpoint, the status and `{"request_sha256",
"response"}`. docs/api.md, "Idempotency-Key", describes the contract; this is how it holds across processes.

How one request goes:
1. Reserve: insert the record as pending (status 0) in its own short transaction; its `created_at` is the
   request's lease (LEASE) and its fencing token. If the key is there already: same endpoint and payload →
   replay the stored status and body (header `Idempotent-Replayed: true`); pending within its lease → 409
   (the first request is still running; retry shortly); pending past its lease → this request takes the key
   over (a new `created_at`, compare-and-set) and runs; different endpoint or payload → 422.
2. Run the use case. The commit of its transaction also marks the record (status -1, "took effect") — in
   that same transaction, and only if the record still carries this request's token: a request overtaken by
   a retry after its lease rolls back with a 409 instead of taking effect a second time.
3. Success: store status and body. A refused request (4xx) had no effect, so its reservation is deleted and
   a retry runs again. Records are kept 24 hours.
So a process killed during 2 leaves a pending record without effect: a retry after the lease runs the request
once. Killed between the commit and 3 (a few milliseconds), the record says it took effect but its answer was
lost: a retry gets a 409 saying so (look at the dossier or task; never a second effect).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy import delete, event, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput
from engine.models import IdempotencyRecord, utcnow

from .context import actor, services
from .observability import note_dossier

TTL = timedelta(hours=24)
LEASE = timedelta(seconds=5)  # longer than any request takes; a retry after it may take the key over
PENDING = 0
TOOK_EFFECT = -1  # the use case committed; its answer is not stored (yet, or the process died)

# (key, username, token) of the request running under a key in this thread, read by the commit hook below.
_HELD: ContextVar[tuple[str, str, object] | None] = ContextVar("idempotency_held", default=None)
_WROTE: ContextVar[bool] = ContextVar("idempotency_wrote", default=False)  # a write since the last commit


def _fingerprint(endpoint: str, payload) -> str:
    text = json.dumps({"endpoint": endpoint, "payload": payload}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > 200 or any(ord(c) < 32 or ord(c) > 126 for c in key):
        raise InvalidInput(
            "Idempotency-Key phải là 1–200 ký tự ASCII in được",
            "Idempotency-Key must be 1–200 printable ASCII characters",
            {"fields": {"Idempotency-Key": "1–200 printable ASCII / 1–200 ký tự ASCII"}},
        )
    return key


def _in_progress() -> Conflict:
    return Conflict(
        "Yêu cầu trước với khóa này đang được xử lý; vui lòng thử lại sau giây lát",
        "a request with this key is still being processed; retry in a moment",
    )


def _answer(rec: IdempotencyRecord, endpoint: str, fp: str):
    body = rec.body or {}
    if rec.endpoint != endpoint or body.get("request_sha256") != fp:
        raise InvalidInput(
            "Idempotency-Key này đã được dùng cho một yêu cầu khác; hãy dùng khóa mới",
            "this Idempotency-Key was already used for a different request; use a new key",
            {"fields": {"Idempotency-Key": "đã dùng cho yêu cầu khác / used for another request"}},
        )
    if rec.status == TOOK_EFFECT:
        raise Conflict(
            "Yêu cầu trước với khóa này đã có hiệu lực nhưng câu trả lời bị mất; hãy xem lại hồ sơ, đừng gửi lại",
            "the earlier request with this key took effect but its answer was lost; look at the dossier, do not"
            " send it again",
        )
    return body.get("response"), rec.status, {"Idempotent-Replayed": "true"}


def _noted(body):
    """The dossier a write answered with names the request in the logs (api/observability.py)."""
    if isinstance(body, dict):
        note_dossier(body.get("code"))
    return body


def _where(key: str, who: str):
    return (IdempotencyRecord.key == key, IdempotencyRecord.username == who)


def _reserve(key: str, who: str, endpoint: str, fp: str):
    """The lease token of a new or taken-over reservation, or the stored answer (tuple)."""
    db = services().db
    for _ in range(3):
        try:
            with db.uow() as s:
                rec = s.get(IdempotencyRecord, (key, who))
                now = utcnow()
                if rec is not None and now - rec.created_at > TTL:
                    s.delete(rec)
                    s.flush()
                    rec = None
                if rec is None:
                    s.add(
                        IdempotencyRecord(
                            key=key,
                            username=who,
                            endpoint=endpoint,
                            status=PENDING,
                            body={"request_sha256": fp},
                            created_at=now,
                        )
                    )
                    return now
                if rec.status != PENDING:
                    answer = _answer(rec, endpoint, fp)
                    _noted(answer[0])
                    return answer
                _answer(rec, endpoint, fp)  # another request's payload under this key: 422
                if now - rec.created_at <= LEASE:
                    raise _in_progress()
                # The request that held the key is gone (its process was killed) and had no effect (else the
                # record would say so): take the key over, unless a twin retry did just now.
                taken = s.execute(
                    update(IdempotencyRecord)
                    .where(*_where(key, who), IdempotencyRecord.status == PENDING)
                    .where(IdempotencyRecord.created_at == rec.created_at)
                    .values(created_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken != 1:
                    raise _in_progress()
                return now
        except IntegrityError:
            continue  # a twin request reserved the key meanwhile: read it on the next turn
    raise _in_progress()


def run(key: str | None, endpoint: str, payload, status: int, call):
    """Run `call()` (returning the response body) at most once per key; returns (body, status, headers)."""
    if key is None:
        return _noted(call()), status, {}
    key = _check_key(key)
    who = actor().username
    fp = _fingerprint(endpoint, payload)
    token = _reserve(key, who, endpoint, fp)
    if isinstance(token, tuple):
        return token
    db = services().db
    held = _HELD.set((key, who, token))
    _WROTE.set(False)
    try:
        body = _noted(call())
    except BaseException:
        _HELD.reset(held)
        # Nothing took effect (else the record says so): free the key. If the database is away, the lease does.
        with contextlib.suppress(SQLAlchemyError), db.uow() as s:
            s.execute(
                delete(IdempotencyRecord).where(
                    *_where(key, who), IdempotencyRecord.created_at == token, IdempotencyRecord.status == PENDING
                )
            )
        raise
    _HELD.reset(held)
    with db.uow() as s:
        s.execute(
            update(IdempotencyRecord)
            .where(*_where(key, who), IdempotencyRecord.created_at == token)
            .values(status=status, body={"request_sha256": fp, "response": body})
        )
    return body, status, {}


@event.listens_for(Engine, "before_cursor_execute")
def _executed(conn, cursor, statement, parameters, context, executemany) -> None:
    """A write while a request holds a key (ORM flush or the hot path's Core statements alike)."""
    if _HELD.get() is not None and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        _WROTE.set(True)


@event.listens_for(Session, "before_commit")
def _took_effect(session: Session) -> None:
    """A use case run under a key commits a change: mark the key in the same transaction, if this request still
    holds it (a retry after the lease may have taken it over: then this transaction rolls back with a 409).
    A transaction that only read marks nothing."""
    held = _HELD.get()
    if held is None or not (_WROTE.get() or session.new or session.dirty or session.deleted):
        return
    key, who, token = held
    marked = session.execute(
        update(IdempotencyRecord)
        .where(*_where(key, who), IdempotencyRecord.created_at == token)
        .where(IdempotencyRecord.status.in_((PENDING, TOOK_EFFECT)))
        .values(status=TOOK_EFFECT)
        .execution_options(synchronize_session=False)
    ).rowcount
    _WROTE.set(False)
    if marked != 1:
        raise _in_progress()
