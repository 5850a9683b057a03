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
