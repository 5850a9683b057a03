"""Message templates: Vietnamese Jinja2 files in engine/channels/templates/, rendered in a sandbox.

Names are `<event>/<part>`: parts `sms.txt`, `email_subject.txt`, `email.txt`, `email.html` and
`zalo.json` (a Zalo template message: `{"template_id", "template_data"}`); `lookup/*.txt` are the answers
to lookups by SMS/Zalo; `_layout/*` the e-mail layouts the others extend.

An administrator overrides any of them without a code change: the `message_templates` table (written by
`PUT /api/v1/templates/{name}`) is read before the files. Every process re-reads the table's list of
overrides at most every `template_refresh_seconds` (5 s), so an override reaches every worker within
that time. An override that fails to render is logged and the shipped file is used instead: a broken
template never stops a change of a dossier. Rendering runs in Jinja2's `SandboxedEnvironment` (no access
to internals), with undefined names rendered empty.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import BaseLoader, ChainableUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from ..models import MessageTemplate

log = logging.getLogger("motcua.templates")

TEMPLATE_DIR = Path(__file__).parent / "templates"
APPLICANT_EVENTS = (
    "received",
    "refused",
    "supplement_requested",
    "payment_required",
    "result_ready",
    "returned",
    "apology",
    "status",
    "otp",
)
OFFICER_EVENTS = ("officer_reminder", "officer_overdue", "officer_step_overdue")
EVENTS = APPLICANT_EVENTS + OFFICER_EVENTS
PARTS = ("sms.txt", "email_subject.txt", "email.txt", "email.html", "zalo.json")
LOOKUP = ("lookup/answer.txt", "lookup/unknown.txt", "lookup/help.txt", "lookup/limit.txt")

#: what a preview renders with when no context is given
SAMPLE = {
    "code": "UBXA-261127-0001",
    "procedure_code": "1.001193",
    "procedure_name": "Đăng ký khai sinh",
    "agency": "UBXA",
    "agency_name": "UBND xã",
    "applicant_name": "Nguyễn Văn An",
    "status": "received",
    "status_code": 2,
    "status_label": "Được tiếp nhận",
    "due_date": "17:00 04/12/2026",
    "new_due_date": "17:00 11/12/2026",
    "reason": "thiếu bản sao giấy chứng sinh",
    "amount": "20.000",
    "otp": "482913",
    "minutes": 5,
    "step": "Thẩm định hồ sơ",
    "link": "http://127.0.0.1:5000/tra-cuu?code=UBXA-261127-0001",
    "limit": 10,
    "example": "UBXA-261127-0001",
    "returned_date": "",
}


def shipped_names() -> list[str]:
    return sorted(str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*") if p.is_file())


@lru_cache(maxsize=1024)
def shipped_source(name: str) -> str | None:
    """The shipped file `name`, or None. The files are part of the installed package and never change while
    a process runs, so each is read once per process (every change of a dossier renders some of them)."""
    path = (TEMPLATE_DIR / name).resolve()
    if TEMPLATE_DIR.resolve() not in path.parents or not path.is_file():
        return None
    return path.read_text(encoding="utf-8")


@dataclass
class Rendered:
    """One event rendered for the applicant's or officer's channels (missing parts are None)."""

    sms: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    zalo: dict | None = None


class _Loader(BaseLoader):
    def __init__(self, store: TemplateStore, shipped_only: bool):
        self.store, self.shipped_only = store, shipped_only

    def get_source(self, environment, name):
        if not self.shipped_only:
            o = self.store.override(name)
            if o is not None:
                source, stamp = o
                return source, None, lambda: self.store.override_stamp(name) == stamp
        source = shipped_source(name)
        if source is None:
            raise TemplateNotFound(name)
        return source, str(TEMPLATE_DIR / name), lambda: True


def _env(loader: BaseLoader, autoescape) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=loader,
        undefined=ChainableUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    return env


class TemplateStore:
    """Renders templates: an administrator's override (database) first, else the shipped file."""

    def __init__(self, db=None, refresh_seconds: float = 5.0):
        self.db, self.refresh_seconds = db, refresh_seconds
        self._lock = threading.Lock()
        self._stamps: dict[str, datetime] = {}
        self._sources: dict[str, tuple[str, datetime]] = {}
        self._checked = float("-inf")
        self._envs = {}
        for shipped_only in (False, True):
            loader = _Loader(self, shipped_only)
            self._envs[(shipped_only, True)] = _env(loader, True)
            self._envs[(shipped_only, False)] = _env(loader, False)

    # -- overrides -----------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        if self.db is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return
        with self._lock:
            if not force and now - self._checked < self.refresh_seconds:
                return
            try:
                with self.db.read() as s:
                    stamps = dict(s.execute(select(MessageTemplate.name, MessageTemplate.updated_at)).all())
                    changed = [n for n, at in stamps.items() if self._sources.get(n, (None, None))[1] != at]
                    sources = dict(self._sources)
                    for n in list(sources):
                        if n not in stamps:
                            del sources[n]
                    if changed:
                        for row in s.scalars(select(MessageTemplate).where(MessageTemplate.name.in_(changed))):
                            sources[row.name] = (row.source, row.updated_at)
            except Exception:  # the table is unreachable: keep what we had
                log.exception("message template overrides could not be read")
                self._checked = now
                return
            self._sources, self._stamps, self._checked = sources, stamps, now

    def override(self, name: str) -> tuple[str, datetime] | None:
        return self._sources.get(name)

    def override_stamp(self, name: str):
        self.refresh()
        o = self._sources.get(name)
        return o[1] if o else None

    def overrides(self) -> dict[str, datetime]:
        self.refresh()
        return {n: at for n, (_, at) in self._sources.items()}

    # -- rendering -----------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return shipped_source(name) is not None

    def render(self, name: str, context: dict, source: str | None = None) -> str:
        """Render `name` (or `source`, a draft, in its place) with `context`; the shipped file on error."""
        self.refresh()
        html = name.endswith(".html")
        if source is not None:
            return self._envs[(False, html)].from_string(source).render(**context).strip()
        try:
            return self._envs[(False, html)].get_template(name).render(**context).strip()
        except TemplateNotFound:
            raise
        except (TemplateError, Exception) as exc:
            if self.override(name) is None:
                raise
            log.error("override of template %s failed (%s): the shipped file is used", name, exc)
            return self._envs[(True, html)].get_template(name).render(**context).strip()

    def check(self, name: str, source: str) -> str | None:
        """The error a draft of `name` would raise when rendered with the sample context, or None."""
        try:
            out = self.render(name, SAMPLE, source=source)
            if name.endswith(".json"):
                _zalo(out)
        except Exception as exc:  # noqa: BLE001 - any error is reported to the administrator
            return f"{type(exc).__name__}: {exc}"
        return None

    def event(self, event: str, context: dict, parts=PARTS) -> Rendered:
        out = Rendered()
        context = dict(context)
        for part in parts:
            name = f"{event}/{part}"
            if not self.exists(name):
                continue
            text = self.render(name, context)
            if part == "sms.txt":
                out.sms = text
            elif part == "email_subject.txt":
                out.subject = " ".join(text.split())
                context.setdefault("subject", out.subject)
            elif part == "email.txt":
                out.text = text
            elif part == "email.html":
                out.html = text
            elif part == "zalo.json":
                out.zalo = _zalo(text)
        return out


def _zalo(text: str) -> dict:
    data = json.loads(text)
    if not isinstance(data, dict) or "template_id" not in data or not isinstance(data.get("template_data"), dict):
        raise ValueError("a Zalo template renders to {template_id, template_data: {...}}")
    return data
