"""The `format` values a form may use, each actually checked (no optional third-party format packages).

Standard: `date` (YYYY-MM-DD), `date-time` (RFC 3339: date, `T`, time, and an offset such as `Z` or `+07:00`),
`time` (HH:MM[:SS[.fff]] with an optional offset), `email`.
Local to this product:
- `datetime-local`: a date and time without offset (what form-js writes with `no_timezone`);
- `cccd`: a Vietnamese citizen identity number, exactly 12 digits whose first 3 are a province code 001–096;
- `phone-vn`: a Vietnamese phone number, `0` or `+84` followed by 9 digits (mobile, `0912 345 678`), or by
  10 digits starting with 2 (landline with its 02x area code, `024 3825 6789`); spaces, dots and dashes
  between digit groups are allowed and removed when the data is cleaned;
- `vnd`: an amount of Vietnamese đồng, a non-negative whole number (a JSON number, not text).

The other formats jsonschema knows without extra packages (ipv4, uuid, regex, ...) keep working.
As JSON Schema says, `date`/`time`/`email`/`cccd`/`phone-vn` only constrain strings (use `"type"` for the rest);
`vnd` is the exception: anything but a non-negative whole number fails it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time

from jsonschema import FormatChecker

# The largest integer a browser's JavaScript number holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
_OFFSET = r"(?:[Zz]|[+-]\d{2}:\d{2})"
_DATE_TIME = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}[Tt ]{_TIME}{_OFFSET}", re.ASCII)
_DATE_TIME_LOCAL = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}[Tt ]{_TIME}", re.ASCII)
_TIME_OF_DAY = re.compile(rf"{_TIME}{_OFFSET}?", re.ASCII)
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}",
    re.ASCII,
)
_CCCD = re.compile(r"\d{12}", re.ASCII)
# Mobile: 0 + 9 digits. Landline since the 2017 renumbering: 0 + 2x area code + 8 digits (024 3825 6789).
_PHONE_VN = re.compile(r"(?:0|\+84)(?:\d{9}|2\d{9})", re.ASCII)
_PHONE_SEPARATORS = re.compile(r"(?<=\d)[ .-](?=\d)")

#: Province codes that may start a CCCD number (first 3 digits).
CCCD_PROVINCE_MIN, CCCD_PROVINCE_MAX = 1, 96


def _fraction_ok(text: str) -> str:
    # Python 3.11's fromisoformat takes 3 or 6 fraction digits only; RFC 3339 allows any number.
    def fix(m: re.Match) -> str:
        return "." + (m.group(1) + "000000")[:6]

    return re.sub(r"\.(\d+)", fix, text, count=1)


def is_date(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str, pattern: re.Pattern) -> bool:
    if not pattern.fullmatch(value):
        return False
    text = value[:10] + "T" + value[11:]
    text = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        datetime.fromisoformat(_fraction_ok(text))
    except ValueError:
        return False
    return True


def is_date_time(value) -> bool:
    return not isinstance(value, str) or _is_datetime(value, _DATE_TIME)


def is_datetime_local(value) -> bool:
    return not isinstance(value, str) or _is_datetime(value, _DATE_TIME_LOCAL)


def is_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _TIME_OF_DAY.fullmatch(value):
        return False
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        time.fromisoformat(_fraction_ok(text))
    except ValueError:
        return False
    return True


def is_email(value) -> bool:
    if not isinstance(value, str):
        return True
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return False
    local = value.rsplit("@", 1)[0]
    return len(local) <= 64 and not local.startswith(".") and not local.endswith(".") and ".." not in local


def is_cccd(value) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_CCCD.fullmatch(value)) and CCCD_PROVINCE_MIN <= int(value[:3]) <= CCCD_PROVINCE_MAX


def normalize_phone_vn(value: str) -> str:
    """`0912 345 678` -> `0912345678`: separators between digits removed, nothing else changed."""
    return _PHONE_SEPARATORS.sub("", value)


def is_phone_vn(value) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_PHONE_VN.fullmatch(normalize_phone_vn(value)))


def is_vnd(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return False
    return 0 <= value <= MAX_SAFE_INTEGER


CHECKS = {
    "date": is_date,
    "date-time": is_date_time,
    "datetime-local": is_datetime_local,
    "time": is_time,
    "email": is_email,
    "cccd": is_cccd,
    "phone-vn": is_phone_vn,
    "vnd": is_vnd,
}

#: Formats this package checks itself (others known to jsonschema are checked by it).
CUSTOM_FORMATS = frozenset(CHECKS)


def make_format_checker() -> FormatChecker:
    checker = FormatChecker()  # everything jsonschema checks without optional packages...
    for name, func in CHECKS.items():  # ...with ours replacing or adding these
        checker.checks(name)(func)
    return checker


FORMAT_CHECKER = make_format_checker()
