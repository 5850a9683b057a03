"""Analysts' regular expressions (`pattern`, `patternProperties` keys) run in RE2, a linear-time engine.

Python's `re` backtracks: `^(a+)+$` against `"a" * 40 + "b"` takes exponential time, and a form's pattern
runs on every submission of its step. RE2 (the `google-re2` package) matches in time linear in the input
and refuses what it cannot do in linear time (back-references, look-around) - such a pattern is refused
when the form is deployed, naming the form and the pattern. Close to JSON Schema's ECMA-262 patterns:
`\\d`, `\\w`, `\\s` are ASCII; `\\p{L}` is any letter (Vietnamese ones included).
See docs/security.md ("Forms").
"""

from __future__ import annotations

from functools import lru_cache

import re2

__all__ = ["MAX_PATTERN_LENGTH", "compile_pattern", "pattern_problem", "search"]

MAX_PATTERN_LENGTH = 1_000  # characters of one pattern
_MAX_MEM = 8 << 20  # bytes RE2 may use for one compiled pattern (its own default)


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported to the analyst, not written to stderr
    options.max_mem = _MAX_MEM
    return options


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str):
    """The compiled pattern; `re2.error` when RE2 cannot run it in linear time (or it is malformed)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise re2.error(f"longer than {MAX_PATTERN_LENGTH} characters")
    return re2.compile(pattern, _options())


def pattern_problem(pattern) -> str | None:
    """Why `pattern` is refused (RE2's own words), or None when it can be used."""
    if not isinstance(pattern, str):
        return "not a string"
    try:
        compile_pattern(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return None


def search(pattern: str, text: str) -> bool:
    """Does `pattern` match anywhere in `text` (JSON Schema's meaning of `pattern`)?"""
    return compile_pattern(pattern).search(text) is not None
