"""GET /api/v1/docs: an interactive page generated on the server from the OpenAPI document.

Self-contained: one HTML page, one small CSS and one small plain-JS file served from this package, nothing
from a CDN (flask-smorest's Swagger UI / ReDoc / RapiDoc would load from one, so they are not enabled).
Every operation is listed with its parameters, request body and responses, and a "try it" form that sends
the request with the bearer token obtained from the login box at the top.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from flask import Blueprint, Response, current_app

bp = Blueprint("docs", __name__)
STATIC = Path(__file__).parent / "docs_static"
METHODS = ("get", "post", "put", "patch", "delete")
CSP = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def _resolve(spec: dict, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        parts = node["$ref"].lstrip("#/").split("/")
        node = spec
        for p in parts:
            node = node.get(p, {})
        seen += 1
    return node


def example(spec: dict, schema, depth: int = 0):
    """A small example value for a JSON schema, to pre-fill the body of the "try it" form."""
    schema = _resolve(spec, schema or {})
    if depth > 4 or not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    if "oneOf" in schema:
        return example(spec, schema["oneOf"][0], depth + 1)
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        return {
            k: example(spec, v, depth + 1)
            for k, v in props.items()
            if k in required
            or depth == 0
            and not _resolve(spec, v).get("readOnly")
            and k not in ("received_at", "agency", "version")
        }
    if t == "array":
        return []
    if t == "integer":
        return schema.get("minimum", 1)
    if t == "number":
        return 0
    if t == "boolean":
        return False
    if schema.get("format") == "date-time":
        return "2026-02-13T10:00:00+07:00"
    return ""


def _e(text) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def _params(spec, op, shared=()) -> list[dict]:
    """The operation's parameters, those declared once for its path first."""
    own = [_resolve(spec, p) for p in op.get("parameters", [])]
    names = {(p.get("in"), p.get("name")) for p in own}
    return [p for p in (_resolve(spec, q) for q in shared) if (p.get("in"), p.get("name")) not in names] + own


def _operation(spec: dict, path: str, method: str, op: dict, idx: int, shared=()) -> str:
    opid = f"op{idx}"
    params = _params(spec, op, shared)
    rows = "".join(
        f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
        f"<td>{'✓' if p.get('required') else ''}</td><td>{_e(_type(spec, p.get('schema')))}</td>"
        f"<td>{_e(p.get('description', ''))}</td></tr>"
        for p in params
    )
    body = op.get("requestBody")
    body_html = ""
    is_multipart = False
    if body:
        content = body.get("content", {})
        if "multipart/form-data" in content:
            is_multipart = True
            body_html = "<p>multipart/form-data: <code>file</code> (BPMN) + <code>forms</code> (JSON)</p>"
        else:
            schema = next(iter(content.values()), {}).get("schema")
            body_html = (
                f"<details><summary>Request body schema</summary><pre>"
                f"{_e(json.dumps(_resolve(spec, schema), ensure_ascii=False, indent=2))}</pre></details>"
            )
    responses = "".join(
        f"<li><code>{_e(code)}</code> {_e(_resolve(spec, r).get('description', ''))} "
        f"<small>{_e(', '.join(_resolve(spec, r).get('content', {}).keys()))}</small></li>"
        for code, r in sorted(op.get("responses", {}).items())
    )
    inputs = "".join(
        f"<label>{_e(p['name'])} <small>({_e(p['in'])})</small> "
        f'<input data-in="{_e(p["in"])}" name="{_e(p["name"])}" placeholder="{_e(_type(spec, p.get("schema")))}">'
        f"</label>"
        for p in params
    )
    if body and not is_multipart:
        schema = next(iter(body.get("content", {}).values()), {}).get("schema")
        sample = json.dumps(example(spec, schema), ensure_ascii=False, indent=2)
        inputs += f'<label>JSON body<textarea name="_body" rows="8">{_e(sample)}</textarea></label>'
    if is_multipart:
        inputs += (
            '<label>file (.bpmn) <input type="file" name="file" data-in="file"></label>'
            '<label>forms (.json) <input type="file" name="forms" data-in="file" multiple></label>'
        )
    public = op.get("security") == []
    return f"""
<section class="op" id="{opid}">
  <h3><span class="m m-{method}">{method.upper()}</span> <code>{_e(path)}</code> {"" if not public else '<small class="pub">public</small>'}</h3>
  <p class="summary">{_e(op.get("summary", ""))}</p>
  {f"<p>{_e(op.get('description'))}</p>" if op.get("description") else ""}
  {f"<table><tr><th>name</th><th>in</th><th>req.</th><th>type</th><th></th></tr>{rows}</table>" if rows else ""}
  {body_html}
  <ul class="responses">{responses}</ul>
  <form class="try" data-method="{method.upper()}" data-path="{_e(path)}" data-multipart="{"1" if is_multipart else ""}">
    {inputs}
    <button type="submit">Gửi / Try it</button>
    <pre class="out" aria-live="polite"></pre>
  </form>
</section>"""


def _type(spec, schema) -> str:
    schema = _resolve(spec, schema or {})
    t = schema.get("type", "")
    if t == "array":
        return f"array of {_type(spec, schema.get('items'))}"
    if schema.get("enum"):
        return f"{t} ({', '.join(map(str, schema['enum']))})"
    if schema.get("format"):
        return f"{t} ({schema['format']})"
    return t


def render(spec: dict) -> str:
    ops, toc, idx = [], [], 0
    by_tag: dict[str, list] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((path, method, op, item.get("parameters", [])))
    for tag, entries in by_tag.items():
        ops.append(f'<h2 id="tag-{_e(tag)}">{_e(tag)}</h2>')
        toc.append(f'<li><a href="#tag-{_e(tag)}">{_e(tag)}</a><ul>')
        for path, method, op, shared in entries:
            idx += 1
            ops.append(_operation(spec, path, method, op, idx, shared))
            toc.append(f'<li><a href="#op{idx}"><span class="m m-{method}">{method.upper()}</span> {_e(path)}</a></li>')
        toc.append("</ul></li>")
    info = spec.get("info", {})
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(info.get("title"))} API {_e(info.get("version"))} — tài liệu / docs</title>
<link rel="stylesheet" href="/api/v1/docs/docs.css"></head>
<body>
<header><h1>{_e(info.get("title"))} API v{_e(info.get("version"))}</h1>
<p>Tài liệu tương tác / interactive documentation. Máy đọc / machine-readable: <a href="/api/v1/openapi.json">openapi.json</a></p>
<form id="login"><strong>Đăng nhập / log in:</strong>
<input name="username" placeholder="username" autocomplete="username">
<input name="password" type="password" placeholder="password" autocomplete="current-password">
<button type="submit">Lấy token / get token</button> <span id="who"></span>
<button type="button" id="logout">Đăng xuất / log out</button></form>
</header>
<div class="layout"><nav><ul>{"".join(toc)}</ul></nav>
<main><div class="intro">{_e(info.get("description", "")).replace(chr(10), "<br>")}</div>{"".join(ops)}</main></div>
<script src="/api/v1/docs/docs.js"></script>
</body></html>"""


def _spec() -> dict:
    return current_app.extensions["motcua_api"].spec.to_dict()


def _secure(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/api/v1/docs")
def docs_page():
    return _secure(Response(render(_spec()), mimetype="text/html"))


@bp.get("/api/v1/docs/docs.js")
def docs_js():
    return _secure(Response((STATIC / "docs.js").read_text(encoding="utf-8"), mimetype="text/javascript"))


@bp.get("/api/v1/docs/docs.css")
def docs_css():
    return _secure(Response((STATIC / "docs.css").read_text(encoding="utf-8"), mimetype="text/css"))
