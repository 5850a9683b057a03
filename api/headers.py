"""Security headers on every response: pages, API answers, files (docs/security.md, "Pages").

The pages load their scripts and styles from /static only (no inline script, no inline event handler), so
the Content-Security-Policy allows `'self'` and nothing else; images may be data: URLs (the diagram editor);
images and frames may be blob: URLs (the dossier page previews a document it fetched with its token).
"""

from __future__ import annotations

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; frame-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


_MISSING = [(name.lower(), name, value) for name, value in HEADERS.items()]


def security_headers(response):
    """`after_request` of the whole application: each header unless the response set its own. One pass over
    the response's headers (five `Headers.setdefault` scanned them five times: 15 µs of every request)."""
    headers = response.headers
    present = {key.lower() for key, _ in headers.items()}
    for lower, name, value in _MISSING:
        if lower not in present:
            headers.add(name, value)
    return response
