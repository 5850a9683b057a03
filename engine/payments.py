"""Online payment of a dossier's fee: where the BPMN says payment is due, the payment order, the gateway
adapter, and the gateway's server-to-server confirmation (IPN). docs/online.md tells the whole story.

Where payment is due (docs/bpmn-conventions.md): an intermediate message catch event whose message is
named `payment` ("Chờ nộp lệ phí"). When a dossier's workflow waits there:
- the procedure's `fee` is 0: the engine delivers the message at once, no payment is asked (`settle_free`);
- otherwise the dossier takes status 6 (payment_required), a `Payment` order of the fee is written and the
  applicant is told (`open_order`); the workflow waits until the gateway confirms.

The gateway adapter (`HmacGateway`) is the kind Vietnamese banks and the national payment platform use:
- a redirect URL to the gateway's payment page carrying the order's parameters and `secure_hash`, the
  HMAC-SHA512 (hex) with `MOTCUA_PAY_SECRET` of the parameters sorted by name, URL-encoded as
  `name=value&name=value` (`sign`); the gateway sends the payer back to our return page;
- the gateway confirms server to server (IPN) with parameters signed the same way. `confirm` checks the
  signature, then the order id, then the amount, and only then marks the order paid and delivers the
  `payment` message to the dossier's workflow: one transaction, with an audit event carrying the receipt.
  A replayed confirmation finds the order already paid and changes nothing (idempotent). A wrong
  signature or amount is refused (403 / 422) and logged; an unknown order is a 404, logged.

Another gateway: a class with `name`, `payment_url(order)` and `verify(params) -> Confirmation` (raising
`BadSignature`), registered in `GATEWAYS` (docs/online.md, "Adding a gateway").
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote_plus

from sqlalchemy import select

from . import messages, report_counts
from .calendar import VN_TZ
from .decisions import decided_fee
from .errors import Conflict, InvalidInput, MotcuaError, NotFound
from .models import Payment, utcnow
from .views import iso

log = logging.getLogger("motcua.payments")

PAYMENT_MESSAGE = messages.PAYMENT
ORDER_TTL = timedelta(minutes=15)


class NotConfigured(MotcuaError):
    """No payment gateway is configured on this server: HTTP 404 (there is nothing to pay through here)."""

    status = 404
    code = "payment_not_configured"


class BadSignature(MotcuaError):
    """A gateway message whose signature does not check out: HTTP 403."""

    status = 403
    code = "bad_signature"


@dataclass(frozen=True)
class Confirmation:
    """What a gateway says about one order, once its signature is checked."""

    order_id: str
    amount: int
    success: bool
    transaction_no: str | None
    response_code: str
    raw: dict


def canonical(params: Mapping[str, str]) -> str:
    """`name=value&…` sorted by name, values URL-encoded (spaces as `+`), empty values left out."""
    return "&".join(
        f"{quote_plus(str(k))}={quote_plus(str(v))}" for k, v in sorted(params.items()) if v not in (None, "")
    )


def sign(secret: str, params: Mapping[str, str]) -> str:
    return hmac.new(secret.encode(), canonical(params).encode(), hashlib.sha512).hexdigest()


def _vn_stamp(dt: datetime) -> str:
    return dt.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


class HmacGateway:
    """A redirect-and-IPN gateway signing with HMAC-SHA512 over the sorted parameters (module docstring)."""

    name = "hmac_sha512"
    SIGNATURE = "secure_hash"

    def __init__(self, pay_url: str, merchant: str, secret: str, public_url: str):
        if not pay_url or not secret:
            raise NotConfigured(
                "Chưa cấu hình cổng thanh toán (MOTCUA_PAY_URL, MOTCUA_PAY_SECRET)",
                "no payment gateway configured (MOTCUA_PAY_URL, MOTCUA_PAY_SECRET)",
            )
        self.pay_url, self.merchant, self.secret = pay_url, merchant, secret
        self.public_url = public_url.rstrip("/")

    def payment_url(self, order: Payment, code: str, now: datetime | None = None) -> str:
        now = now or utcnow()
        params = {
            "version": "1",
            "merchant": self.merchant,
            "order_id": order.order_id,
            "amount": str(order.amount),
            "currency": "VND",
            "order_info": f"Le phi ho so {code}",
            "locale": "vn",
            "created_at": _vn_stamp(now),
            "expire_at": _vn_stamp(now + ORDER_TTL),
            "return_url": f"{self.public_url}/cong-dan/thanh-toan/ket-qua",
            "ipn_url": f"{self.public_url}/api/v1/payments/ipn",
        }
        params[self.SIGNATURE] = sign(self.secret, params)
        sep = "&" if "?" in self.pay_url else "?"
        return f"{self.pay_url}{sep}{canonical(params)}"

    def verify(self, params: Mapping[str, str]) -> Confirmation:
        params = {str(k): str(v) for k, v in params.items()}
        given = params.pop(self.SIGNATURE, "")
        params.pop("secure_hash_type", None)
        expected = sign(self.secret, params)
        if not given or not hmac.compare_digest(given.lower(), expected):
            raise BadSignature("Chữ ký của cổng thanh toán không hợp lệ", "the gateway's signature is invalid")
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            raise InvalidInput("Số tiền không hợp lệ", "invalid amount", {"fields": {"amount": "integer"}}) from None
        return Confirmation(
            order_id=params.get("order_id", ""),
            amount=amount,
            success=params.get("response_code") == "00",
            transaction_no=params.get("transaction_no") or None,
            response_code=params.get("response_code", ""),
            raw=params,
        )


GATEWAYS = {HmacGateway.name: HmacGateway}


def gateway_of(settings) -> HmacGateway:
    """The configured gateway (docs/online.md): MOTCUA_PAY_URL, MOTCUA_PAY_MERCHANT, MOTCUA_PAY_SECRET."""
    o = settings.online
    return HmacGateway(o.pay_url, o.pay_merchant, o.pay_secret, o.public_url)


# -- the workflow side ---------------------------------------------------------------------------------------


def waits_for_payment(workflow) -> bool:
    """Is the workflow waiting at a `payment` message catch event?"""
    return bool(messages.waiting(workflow, PAYMENT_MESSAGE))


def deliver(workflow, payload: dict | None = None) -> None:
    """The `payment` message reaches the waiting catch event; the workflow runs on to its next wait."""
    messages.deliver(workflow, PAYMENT_MESSAGE, payload)


def settle_free(workflow, fee: int) -> bool:
    """A fee of 0 asks for no payment: deliver the message at once. True if it was delivered."""
    delivered = False
    while fee <= 0 and waits_for_payment(workflow):
        deliver(workflow, {"payment": {"amount": 0, "free": True}})
        delivered = True
    return delivered


def fee_of(meta: dict, workflow=None) -> int:
    """The fee to pay: what a decision table decided for this dossier (engine/decisions.py), else the
    procedure's `fee` property."""
    decided = decided_fee(workflow) if workflow is not None else None
    if decided is not None:
        return decided
    try:
        return max(0, int((meta or {}).get("fee") or 0))
    except (TypeError, ValueError):
        return 0


def open_order(s, dossier, amount: int, gateway: str = HmacGateway.name) -> Payment:
    """The dossier's pending payment order (one at a time: an open one is reused)."""
    existing = s.scalars(
        select(Payment).where(Payment.dossier_id == dossier.id, Payment.status == "pending").limit(1)
    ).first()
    if existing is not None:
        return existing
    p = Payment(
        order_id=f"MC{secrets.token_hex(8).upper()}",
        dossier_id=dossier.id,
        amount=int(amount),
        gateway=gateway,
        status="pending",
        created_at=utcnow(),
    )
    s.add(p)
    s.flush()
    return p


def payment_view(session, d) -> list[dict]:
    rows = session.scalars(select(Payment).where(Payment.dossier_id == d.id).order_by(Payment.id)).all()
    return [
        {
            "order_id": p.order_id,
            "amount": p.amount,
            "currency": "VND",
            "status": p.status,
            "created_at": iso(p.created_at),
            "paid_at": iso(p.paid_at),
            "receipt_no": p.receipt_no,
            "transaction_no": p.gateway_ref,
        }
        for p in rows
    ]


def pending_order(session, d) -> Payment:
    p = session.scalars(
        select(Payment).where(Payment.dossier_id == d.id, Payment.status == "pending").order_by(Payment.id.desc())
    ).first()
    if p is None:
        raise Conflict("Hồ sơ không có khoản lệ phí nào đang chờ nộp", "the dossier has no fee waiting to be paid")
    return p


def receipt_number(p: Payment, when: datetime) -> str:
    return f"BL-{when.astimezone(VN_TZ).strftime('%y%m%d')}-{p.id:06d}"


def record_paid(s, p: Payment, c: Confirmation, d, now: datetime) -> dict:
    """Mark the order paid with its receipt; the receipt's view (the caller writes the audit event)."""
    others = select(Payment.id).where(Payment.dossier_id == p.dossier_id, Payment.status == "paid", Payment.id != p.id)
    report_counts.paid_changed(s, d, was_paid=s.execute(others.limit(1)).first() is not None)
    p.status, p.paid_at, p.gateway_ref = "paid", now, c.transaction_no
    p.receipt_no = receipt_number(p, now)
    p.details = {k: v for k, v in c.raw.items() if k != HmacGateway.SIGNATURE}
    receipt = {
        "receipt_no": p.receipt_no,
        "order_id": p.order_id,
        "amount": p.amount,
        "currency": "VND",
        "transaction_no": c.transaction_no,
        "gateway": p.gateway,
        "paid_at": iso(now),
    }
    return receipt


def find_order(s, order_id: str, lock: bool = True) -> Payment:
    p = None
    if isinstance(order_id, str) and 0 < len(order_id) <= 64:
        stmt = select(Payment).where(Payment.order_id == order_id)
        p = s.scalars(stmt.with_for_update() if lock else stmt).first()
    if p is None:
        log.warning("payment confirmation for an unknown order %r", order_id)
        raise NotFound(f"Không có đơn thanh toán '{order_id}'", f"no payment order '{order_id}'")
    return p


def check_amount(p: Payment, c: Confirmation) -> None:
    if c.amount != p.amount:
        log.warning("payment confirmation of order %s with amount %s, expected %s", p.order_id, c.amount, p.amount)
        raise InvalidInput(
            f"Số tiền xác nhận ({c.amount:,} đ) khác số tiền của đơn ({p.amount:,} đ)",
            f"the confirmed amount ({c.amount}) differs from the order's ({p.amount})",
            {"fields": {"amount": f"expected {p.amount}"}},
        )
