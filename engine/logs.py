"""Logs as one JSON object per line, carrying who and what they are about (docs/operations.md, "Logs").

Every record gets the context of the work it belongs to: `request_id` (the `X-Request-Id` the API echoes),
`user` and `dossier` (the dossier code), from context variables that the API sets per request (`bind`) and
forgets at its end (`reset`); a worker task may bind a dossier the same way. `configure()` installs the
formatter on the root logger: `json` (the default; one object per line with `ts`, `level`, `logger`, `msg`,
the context, and `exc` for a traceback) or `text` (MOTCUA_LOG_FORMAT=text, for a developer's terminal).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("motcua_request_id", default=None)
user: ContextVar[str | None] = ContextVar("motcua_user", default=None)
dossier: ContextVar[str | None] = ContextVar("motcua_dossier", default=None)

_VARS = {"request_id": request_id, "user": user, "dossier": dossier}


def bind(**values) -> None:
    """Set context values (request_id=, user=, dossier=) for the records that follow in this thread."""
    for k, v in values.items():
        _VARS[k].set(v)


def reset() -> None:
    for var in _VARS.values():
        var.set(None)


_providers: list = []


def add_provider(fn) -> None:
    """`fn()` → a dict of context values read when a record is formatted (the API gives the request's user)."""
    _providers.append(fn)


def context() -> dict:
    out = {k: v for k, var in _VARS.items() if (v := var.get()) is not None}
    for fn in _providers:
        try:
            out.update(fn() or {})
        except Exception:  # a provider outside its context gives nothing
            pass
    return out


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def json_line(created: float, level: str, name: str, msg: str, extra: dict | None = None) -> str:
    """The JSON object of one record: ts (UTC, ISO 8601), level, logger, msg, the context, the `extra` fields."""
    out = {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": name,
        "msg": msg,
    }
    out.update(context())
    if extra:
        out.update(extra)
    return json.dumps(out, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (`json_line`), with `exc` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            extra["exc"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname, record.name, record.getMessage(), extra)


_PLAIN = (logging.StreamHandler, logging.FileHandler)


def direct_handlers(logger: logging.Logger, level: int = logging.INFO) -> list[logging.StreamHandler] | None:
    """The handlers a record of `logger` at `level` would reach, when writing `json_line` to each of them is
    exactly what `logging` would do: every handler on the way a plain stream or file handler with the JSON
    formatter, no filters, nothing else in between. None otherwise (a test's handler, the text format, an
    operator's logging configuration): then the caller logs as usual. Lets a line written on every request
    skip the LogRecord, the caller lookup and the formatter's passes (docs/operations.md, "Logs")."""
    if logger.disabled or not logger.isEnabledFor(level):
        return None
    found: list[logging.StreamHandler] = []
    lg: logging.Logger | None = logger
    while lg is not None:
        if lg.filters:
            return None
        for h in lg.handlers:
            if type(h) not in _PLAIN or type(h.formatter) is not JsonFormatter or h.filters or h.level > level:
                return None
            found.append(h)  # type: ignore[arg-type]
        if not lg.propagate:
            break
        lg = lg.parent
    return found or None


def write_line(handlers: list[logging.StreamHandler], line: str) -> None:
    """Write one formatted line to each handler as its `emit` would (under its lock, then flushed)."""
    for h in handlers:
        h.acquire()
        try:
            h.stream.write(line + h.terminator)
            h.flush()
        except (OSError, ValueError):  # a closed or broken stream: as logging's handleError, go on
            pass
        finally:
            h.release()


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = context()
        return f"{line} {ctx}" if ctx else line


def formatter(fmt: str | None = None) -> logging.Formatter:
    fmt = (fmt or os.environ.get("MOTCUA_LOG_FORMAT") or "json").lower()
    return TextFormatter() if fmt == "text" else JsonFormatter()


def configure(fmt: str | None = None, level: int = logging.INFO, file: str | None = None) -> None:
    """Root logger → stderr (and `file`, if given) with the chosen format; once per process."""
    root = logging.getLogger()
    if getattr(root, "_motcua_configured", False):
        return
    root._motcua_configured = True  # type: ignore[attr-defined]
    form = formatter(fmt)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(form)
        root.addHandler(h)
    root.setLevel(level)
    # SpiffWorkflow logs every state change of every task at INFO (about ten records per completed step):
    # no operator reads them (the audit events say what happened), and formatting them cost more CPU than
    # the step's SQL. Its warnings and errors still come through. Its two loggers get the level themselves,
    # not only by inheritance: SpiffWorkflow reads `logger.level` (not the effective level) to decide whether
    # a record's extras list every task id (a walk of the whole tree at each workflow's end) and its data.
    for name in ("spiff", "spiff.workflow", "spiff.task"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


__all__ = [
    "bind",
    "reset",
    "context",
    "configure",
    "JsonFormatter",
    "json_line",
    "direct_handlers",
    "write_line",
    "request_id",
    "user",
    "dossier",
]
