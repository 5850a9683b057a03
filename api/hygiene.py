"""Text that no database column can hold is refused at the door, for every endpoint (422, per field).

PostgreSQL text and JSON cannot store the NUL character, and no driver can encode a lone UTF-16 surrogate
("\\ud800" in a JSON string) as UTF-8: without this check such input reached the database and came back as a
500 on one backend and not on the other. Checked: the path (such a path names nothing: 404), the query string,
form fields and file names, and every key and string of a JSON body (422 with `fields`).
"""

from __future__ import annotations

from flask import request

from engine.errors import InvalidInput, NotFound

MESSAGE = "Không được chứa ký tự NUL hoặc ký tự Unicode lỗi / must not contain NUL or broken Unicode characters"


def bad_text(value) -> bool:
    if not isinstance(value, str):
        return False
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_problems(doc) -> dict[str, str]:
    out: dict[str, str] = {}
    stack = [("", doc)]
    while stack and len(out) < 20:
        path, value = stack.pop()
        if isinstance(value, str):
            if bad_text(value):
                out[path or "_body"] = MESSAGE
        elif isinstance(value, dict):
            for k, v in value.items():
                key = f"{path}.{k}" if path else str(k)
                if bad_text(str(k)):
                    out[path or "_body"] = MESSAGE
                    continue
                stack.append((key, v))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return out


def check_request() -> None:
    """`before_request` of the whole application."""
    req = request._get_current_object()  # one context lookup, not one per attribute
    if bad_text(req.path):  # no identifier can hold it: nothing there
        raise NotFound("Không tìm thấy", "not found")
    fields: dict[str, str] = {}
    if req.environ.get("QUERY_STRING"):  # most requests have none: no MultiDict to build
        for key, values in req.args.lists():
            if bad_text(key) or any(bad_text(v) for v in values):
                fields[key if not bad_text(key) else "_query"] = MESSAGE
    mimetype = req.mimetype
    if mimetype == "multipart/form-data" or mimetype == "application/x-www-form-urlencoded":
        for key, values in req.form.lists():
            if bad_text(key) or any(bad_text(v) for v in values):
                fields[key if not bad_text(key) else "_form"] = MESSAGE
        for key, storage in req.files.items(multi=True):
            if bad_text(storage.filename or ""):
                fields[key] = MESSAGE
    elif (mimetype == "application/json" or mimetype.startswith("application/") and mimetype.endswith("+json")) and (
        req.content_length
    ):  # `req.is_json`, without parsing the Content-Type header again (get_json would too: force=True)
        doc = req.get_json(force=True, silent=True)
        if doc is not None:
            fields.update(_json_problems(doc))
    if fields:
        raise InvalidInput(
            "Dữ liệu chứa ký tự không lưu được (NUL hoặc Unicode lỗi)",
            "the request holds characters that cannot be stored (NUL or broken Unicode)",
            {"fields": fields},
        )
