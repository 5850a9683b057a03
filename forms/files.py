"""Attachments: a file name safe to store and show, and a content type the bytes themselves confirm."""

from __future__ import annotations

import re
import unicodedata

from .errors import FormError

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
OCTET_STREAM = "application/octet-stream"
#: The types whose magic bytes are checked; the only types an attachment may have.
ACCEPTABLE_TYPES = frozenset({PDF, JPEG, PNG})
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF, "image/x-png": PNG}
_MAGIC = ((b"%PDF-", PDF), (b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))

MAX_FILENAME_BYTES = 255
_WINDOWS_RESERVED = re.compile(r"(?:CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(?:\..*)?", re.IGNORECASE)
# Characters that are harmless here but not allowed in Windows file names: replaced, not refused.
_AWKWARD = str.maketrans({c: "_" for c in '<>"|?*'})


def _refuse(name: str, vi: str, en: str):
    shown = name.encode("unicode_escape").decode("ascii") if any(ord(c) < 32 for c in name) else name
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise FormError(
        f"Tên tệp '{shown}' không được chấp nhận: {vi}",
        f"the file name '{shown}' is refused: {en}",
        {"filename": shown},
    )


def safe_filename(name: str) -> str:
    """A plain file name (no folders), NFC-normalized so Vietnamese letters keep one spelling.

    Refused (FormError): empty names, NUL and other control or invisible formatting characters (such as the
    right-to-left override), `/` and `\\` (folders, absolute paths), `:` (drive letters, NTFS streams), `..`,
    a leading or trailing dot, Windows device names (CON, NUL, COM1...), names over 255 bytes; also names
    whose compatibility form (NFKC, e.g. full-width `／`) would contain any of these.
    Kept: letters of every script, Vietnamese included (`Tờ khai đăng ký.pdf`), digits, spaces, punctuation;
    `< > " | ? *` become `_`.
    """
    if not isinstance(name, str):
        raise FormError("Tên tệp phải là chuỗi ký tự", "the file name must be a string")
    if "\x00" in name:
        _refuse(name, "chứa ký tự NUL", "it contains a NUL character")
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            _refuse(
                name,
                f"chứa ký tự điều khiển hoặc vô hình (U+{ord(ch):04X})",
                f"it contains a control or invisible character (U+{ord(ch):04X})",
            )
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        _refuse(name, "tên rỗng", "it is empty")
    for form in (cleaned, unicodedata.normalize("NFKC", cleaned)):
        if "\\" in form:
            _refuse(name, "chứa dấu '\\' (đường dẫn thư mục)", "it contains a backslash (a folder path)")
        if form.startswith("/"):
            _refuse(name, "là đường dẫn tuyệt đối", "it is an absolute path")
        if "/" in form:
            _refuse(name, "chứa dấu '/' (đường dẫn thư mục)", "it contains '/' (a folder path)")
        if ":" in form:
            _refuse(name, "chứa dấu ':' (ổ đĩa hoặc luồng dữ liệu)", "it contains ':' (a drive or a data stream)")
        if ".." in form:
            _refuse(name, "chứa '..' (thoát khỏi thư mục)", "it contains '..' (path traversal)")
        if form.startswith("."):
            _refuse(name, "bắt đầu bằng dấu chấm (tệp ẩn)", "it starts with a dot (a hidden file)")
        if form.endswith("."):
            _refuse(name, "kết thúc bằng dấu chấm", "it ends with a dot")
        if _WINDOWS_RESERVED.fullmatch(form.strip()):
            _refuse(name, "là tên thiết bị dành riêng của Windows", "it is a reserved Windows device name")
    cleaned = cleaned.translate(_AWKWARD)
    if len(cleaned.encode("utf-8")) > MAX_FILENAME_BYTES:
        _refuse(name, f"dài quá {MAX_FILENAME_BYTES} byte", f"it is longer than {MAX_FILENAME_BYTES} bytes")
    return cleaned


def normalize_content_type(value: str | None) -> str:
    """`Image/JPG; charset=x` -> `image/jpeg`."""
    t = (value or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(t, t)


def detect_content_type(head: bytes) -> str | None:
    """PDF, JPEG or PNG by their magic bytes; None for anything else."""
    head = bytes(head or b"")
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def sniff_content_type(head: bytes, declared: str | None) -> str:
    """The content type the bytes prove, never merely the one the uploader declared.

    - the bytes are PDF, JPEG or PNG: that type (even if something else was declared);
    - the declaration says PDF, JPEG or PNG but the bytes are not: FormError (the declaration lies);
    - otherwise `application/octet-stream` (an unverified type is never echoed back, so a declared
      `text/html` cannot make the file be served as a web page).
    """
    if not isinstance(head, (bytes, bytearray, memoryview)):
        raise FormError("Nội dung tệp phải là bytes", "the file content must be bytes")
    detected = detect_content_type(bytes(head))
    if detected:
        return detected
    claimed = normalize_content_type(declared)
    if claimed in ACCEPTABLE_TYPES:
        raise FormError(
            f"Nội dung tệp không phải {claimed} như đã khai báo",
            f"the file content is not {claimed} as declared",
            {"declared": claimed},
        )
    return OCTET_STREAM
