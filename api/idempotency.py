"""Idempotency-Key for POST /dossiers and POST /tasks/{id}/complete.

A client that did not get an answer (timeout, dropped connection) retries with the same `Idempotency-Key`
header and gets the first result instead of a second dossier or a 409. Records are keyed by key + username
(table `idempotency_records`) and hold the endpoint, the status and `{"request_sha256", "response"}`.

How one request goes:
1. Reserve: insert the record as pending (status 0) in its own short transaction. If the key is there already:
   same endpoint and same payload → replay the stored status and body (header `Idempotent-Replayed: true`);
   still pending → 409 (the first request is still running; retry shortly); different endpoint or payload
   → 422 `idempotency_key_reused`.
2. Run the use case.
3. Success: store status and body. A refused request (4xx) had no effect, so its reservation is deleted and
   a retry runs again. Records are kept 24 hours.
If the process dies between 2 and 3 the record stays pending; after 5 minutes it answers 409 saying the
outcome is unknown (look at the dossier, then use a new key).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from engine.errors import Conflict, InvalidInput
from engine.models import IdempotencyRecord, utcnow

from .context import actor, services
from .observability import note_dossier

TTL = timedelta(hours=24)
STUCK = timedelta(minutes=5)
PENDING = 0


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


def _answer(rec: IdempotencyRecord, endpoint: str, fp: str):
    body = rec.body or {}
    if rec.endpoint != endpoint or body.get("request_sha256") != fp:
        raise InvalidInput(
            "Idempotency-Key này đã được dùng cho một yêu cầu khác; hãy dùng khóa mới",
            "this Idempotency-Key was already used for a different request; use a new key",
            {"fields": {"Idempotency-Key": "đã dùng cho yêu cầu khác / used for another request"}},
        )
    if rec.status == PENDING:
        if utcnow() - rec.created_at > STUCK:
            raise Conflict(
                "Không rõ kết quả của yêu cầu trước với khóa này; hãy xem lại hồ sơ rồi dùng khóa mới",
                "the outcome of the earlier request with this key is unknown; check the dossier, then use a new key",
            )
        exc = Conflict(
            "Yêu cầu trước với khóa này đang được xử lý; vui lòng thử lại sau giây lát",
            "a request with this key is still being processed; retry in a moment",
        )
        raise exc
    return body.get("response"), rec.status, {"Idempotent-Replayed": "true"}


def _noted(body):
    """The dossier a write answered with names the request in the logs (api/observability.py)."""
    if isinstance(body, dict):
        note_dossier(body.get("code"))
    return body


def run(key: str | None, endpoint: str, payload, status: int, call):
    """Run `call()` (returning the response body) at most once per key; returns (body, status, headers)."""
    if key is None:
        return _noted(call()), status, {}
    key = _check_key(key)
    who = actor().username
    fp = _fingerprint(endpoint, payload)
    db = services().db
    for _ in range(3):
        try:
            with db.uow() as s:
                rec = s.get(IdempotencyRecord, (key, who))
                if rec is not None and utcnow() - rec.created_at > TTL:
                    s.delete(rec)
                    s.flush()
                    rec = None
                if rec is not None:
                    answer = _answer(rec, endpoint, fp)
                    _noted(answer[0])
                    return answer
                s.add(
                    IdempotencyRecord(
                        key=key,
                        username=who,
                        endpoint=endpoint,
                        status=PENDING,
                        body={"request_sha256": fp},
                        created_at=utcnow(),
                    )
                )
            break
        except IntegrityError:
            continue  # a twin request reserved the key meanwhile: read it on the next turn
    else:
        raise Conflict("Yêu cầu trùng khóa đang được xử lý", "a request with this key is being processed")
    try:
        body = _noted(call())
    except BaseException:
        with db.uow() as s:
            s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.key == key, IdempotencyRecord.username == who, IdempotencyRecord.status == PENDING
                )
            )
        raise
    with db.uow() as s:
        s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key, IdempotencyRecord.username == who)
            .values(status=status, body={"request_sha256": fp, "response": body})
        )
    return body, status, {}
