"""Dossier statuses: snake_case names mapped one to one onto the national portal's codes 1–10."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    NEW = "new"  # 1 Mới đăng ký
    RECEIVED = "received"  # 2 Được tiếp nhận
    REFUSED = "refused"  # 3 Không được tiếp nhận
    IN_PROCESS = "in_process"  # 4 Đang xử lý
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 5 Yêu cầu bổ sung giấy tờ
    PAYMENT_REQUIRED = "payment_required"  # 6 Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = "withdrawn"  # 7 Công dân yêu cầu rút hồ sơ
    STOPPED = "stopped"  # 8 Dừng xử lý
    PROCESSED = "processed"  # 9 Đã xử lý xong
    RETURNED = "returned"  # 10 Đã trả kết quả

    @property
    def code(self) -> int:
        return CODES[self]

    @property
    def label_vi(self) -> str:
        return LABELS_VI[self]

    @property
    def label_en(self) -> str:
        return LABELS_EN[self]


CODES = {s: i for i, s in enumerate(Status, start=1)}
BY_CODE = {i: s for s, i in CODES.items()}

LABELS_VI = {
    Status.NEW: "Mới đăng ký",
    Status.RECEIVED: "Được tiếp nhận",
    Status.REFUSED: "Không được tiếp nhận",
    Status.IN_PROCESS: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.PAYMENT_REQUIRED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.PROCESSED: "Đã xử lý xong",
    Status.RETURNED: "Đã trả kết quả",
}
LABELS_EN = {
    Status.NEW: "Newly registered",
    Status.RECEIVED: "Received",
    Status.REFUSED: "Refused",
    Status.IN_PROCESS: "In process",
    Status.SUPPLEMENT_REQUESTED: "Supplement requested",
    Status.PAYMENT_REQUIRED: "Payment required",
    Status.WITHDRAWN: "Withdrawn",
    Status.STOPPED: "Stopped",
    Status.PROCESSED: "Processed",
    Status.RETURNED: "Result returned",
}

# Where a dossier had been accepted: a refusal from here on is a decision on the merits, not a refusal at intake.
BEFORE_ACCEPTANCE = frozenset({Status.NEW, Status.RECEIVED})


def portal_end(declared: Status, before: Status) -> tuple[Status, str | None]:
    """The status a finished workflow leaves a dossier in, as the national portal reads the codes
    (docs/bpmn-conventions.md, "Trạng thái / Statuses"), and its outcome when that is not the status itself.

    Code 3 (Không được tiếp nhận) is a refusal *at intake*: an end event declaring `refused` reached while the
    dossier was still new or received. Reached after the dossier was accepted (in process, after appraisal),
    the refusal is the result of the procedure - a written refusal handed to the applicant: the dossier goes
    9 (processed) → 10 (result returned) with the outcome `refused`."""
    if declared == Status.REFUSED and before not in BEFORE_ACCEPTANCE:
        return Status.RETURNED, "refused"
    return declared, None


# Statuses in which the dossier is closed: no more work, the deadline no longer runs.
FINAL = frozenset({Status.REFUSED, Status.WITHDRAWN, Status.STOPPED, Status.RETURNED})


class Channel(int, Enum):
    """How a dossier was submitted: 1 in person, 2 online, 3 postal (or by name, `CHANNEL_NAMES`)."""

    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3

    @classmethod
    def parse(cls, value) -> Channel:
        if isinstance(value, Channel):
            return value
        if isinstance(value, str):
            if value in CHANNEL_NAMES:
                return CHANNEL_NAMES[value]
            if value.isdigit():
                value = int(value)
        return cls(value)


#: The names a channel may be given by, instead of its number.
CHANNEL_NAMES = {"in_person": Channel.IN_PERSON, "online": Channel.ONLINE, "postal": Channel.POSTAL}
