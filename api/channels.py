"""Citizen channels over HTTP (docs/channels.md).

POST /api/v1/inbound/sms   {from, text}  X-Gateway-Token: $MOTCUA_INBOUND_TOKEN     → 202 (the SMS gateway)
POST /api/v1/inbound/zalo  Zalo OA event, X-ZEvent-Signature                        → 200 (Zalo's webhook)
GET  /api/v1/dossiers/{code}/deliveries                       the dossier's delivery log (its staff)
GET  /api/v1/me/messages                                      an officer's reminders and overdue notices
GET  /api/v1/notifications/dead?channel=                      dead letters (admin)
POST /api/v1/notifications/resend {ids}                       re-send dead letters (admin)
GET  /api/v1/templates, GET|PUT|DELETE /api/v1/templates/{name}, POST /api/v1/templates/preview  (admin)
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import validate

from engine.channel_service import ChannelService

from .auth import authenticate, requires
from .common import PagingArgs, Str, errors
from .context import actor, services

inbound = Blueprint(
    "inbound", __name__, url_prefix="/api/v1/inbound", description="Tin nhắn đến / inbound texts (gateways)"
)
blp = Blueprint(
    "deliveries", __name__, url_prefix="/api/v1", description="Nhật ký gửi tin / delivery logs and officers' messages"
)
blp.before_request(authenticate)
admin = Blueprint(
    "channels_admin",
    __name__,
    url_prefix="/api/v1",
    description="Kênh gửi tin: thư chết, mẫu tin / dead letters and message templates (admin)",
)


admin.before_request(authenticate)


@inbound.before_request
def _gateway_first():
    """The SMS gateway's token is checked before the body is parsed: authorization before validation."""
    if request.endpoint == "inbound.inbound_sms":
        channel_service().check_gateway_token(
            request.headers.get("X-Gateway-Token")
        )  # each operation requires "admin": checked before any input is read


def channel_service() -> ChannelService:
    svc = current_app.extensions.get("motcua_channels")
    if svc is None:
        s = services()
        svc = current_app.extensions["motcua_channels"] = ChannelService(s.db, s.settings)
    return svc


# -- schemas -------------------------------------------------------------------------------------------
class InboundSmsSchema(ma.Schema):
    sender = ma.fields.String(
        data_key="from", required=True, validate=validate.Length(min=1, max=200), metadata={"example": "0912345678"}
    )
    text = ma.fields.String(
        required=True, validate=validate.Length(max=500), metadata={"example": "TRACUU H56-261127-0001"}
    )


class InboundResult(ma.Schema):
    accepted = ma.fields.Boolean(required=True)
    outcome = ma.fields.String(required=True, metadata={"enum": ["found", "unknown", "help", "limited", "ignored"]})


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    channel = ma.fields.String(required=True)
    recipient = Str()
    created_at = Str()
    sent_at = Str()
    next_try_at = Str()
    dead_at = Str()
    tries = ma.fields.Integer(required=True)
    result = ma.fields.String(required=True, metadata={"enum": ["pending", "retrying", "sent", "dead"]})
    last_error = Str()
    sequence = ma.fields.Integer(allow_none=True)
    subject = Str()
    body = Str()


class DeliveryPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DeliverySchema), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class DeadArgs(PagingArgs):
    channel = ma.fields.String(validate=validate.Length(min=1, max=20))


class ResendSchema(ma.Schema):
    ids = ma.fields.List(
        ma.fields.Integer(validate=validate.Range(min=1, max=2**63 - 1)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )


class ResendResult(ma.Schema):
    resent = ma.fields.Integer(required=True)


class TemplateItem(ma.Schema):
    name = ma.fields.String(required=True, metadata={"example": "received/sms.txt"})
    overridden = ma.fields.Boolean(required=True)
    updated_at = Str()


class TemplateList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TemplateItem), required=True)


class TemplateSchema(ma.Schema):
    name = ma.fields.String(required=True)
    source = ma.fields.String(required=True)
    default_source = ma.fields.String(required=True)
    overridden = ma.fields.Boolean(required=True)
    updated_at = Str()
    updated_by = Str()


class TemplateIn(ma.Schema):
    source = ma.fields.String(required=True, validate=validate.Length(min=1, max=50_000))


class PreviewIn(ma.Schema):
    event = ma.fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={"example": "received"})
    context = ma.fields.Dict(keys=ma.fields.String(validate=validate.Length(max=60)), load_default=dict)
    drafts = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(max=120)),
        values=ma.fields.String(validate=validate.Length(max=50_000)),
        load_default=dict,
        metadata={"description": "unsaved sources by template name, previewed in place of the saved ones"},
    )


class PreviewOut(ma.Schema):
    event = ma.fields.String(required=True)
    context = ma.fields.Dict(required=True)
    parts = ma.fields.Dict(required=True, metadata={"description": "{name: {text, length} | {error}}"})


# -- inbound -------------------------------------------------------------------------------------------
@inbound.route("/sms", methods=["POST"])
@inbound.doc(
    summary="Tin nhắn SMS đến / a citizen's text from the SMS gateway",
    description="`TRACUU <code>`, `TRA CUU`, `TRA CỨU`, `TC` (any case): the answer (status, dates; no personal "
    "data) goes back through the SMS gateway to `from`. At most 10 lookups per number per hour. Requires the "
    "header `X-Gateway-Token` = MOTCUA_INBOUND_TOKEN.",
    security=[],
)
@inbound.arguments(InboundSmsSchema())
@inbound.response(202, InboundResult)
@errors(inbound, 401, 403, 422)
def inbound_sms(body):
    svc = channel_service()
    return {"accepted": True, "outcome": svc.inbound("sms", body["sender"], body["text"])}


@inbound.route("/zalo", methods=["POST"])
@inbound.doc(
    summary="Sự kiện Zalo OA / Zalo Official Account webhook",
    description="Checks `X-ZEvent-Signature` (mac = sha256(app_id + body + timestamp + OA secret key)); a "
    "`user_send_text` event with a lookup is answered through the OA message API.",
    security=[],
)
@inbound.response(200, InboundResult)
@errors(inbound, 401, 403, 422)
def inbound_zalo():
    svc = channel_service()
    outcome = svc.inbound_zalo(request.get_data(cache=True), request.headers.get("X-ZEvent-Signature"))
    return {"accepted": True, "outcome": outcome}


# -- staff -----------------------------------------------------------------------------------------------
@blp.route("/dossiers/<code>/deliveries", methods=["GET"])
@requires("staff")
@blp.doc(summary="Nhật ký gửi tin của hồ sơ / the dossier's delivery log (channel, recipient, tries, result)")
@blp.arguments(PagingArgs(), location="query")
@blp.response(200, DeliveryPage)
@errors(blp, 401, 403, 404, 422)
def deliveries(args, code):
    return channel_service().deliveries(actor(), code, args["page"], args["per_page"]).to_dict()


@blp.route("/me/messages", methods=["GET"])
@requires("staff")
@blp.doc(summary="Tin nhắc việc của tôi / my reminders and overdue notices (to me or my roles)")
@blp.arguments(PagingArgs(), location="query")
@blp.response(200, DeliveryPage)
@errors(blp, 401, 403, 422)
def my_messages(args):
    return channel_service().my_messages(actor(), args["page"], args["per_page"]).to_dict()


# -- administrators --------------------------------------------------------------------------------------
@admin.route("/notifications/dead", methods=["GET"])
@requires("admin")
@admin.doc(summary="Thư chết / dead letters: messages given up after the last try")
@admin.arguments(DeadArgs(), location="query")
@admin.response(200, DeliveryPage)
@errors(admin, 401, 403, 422)
def dead(args):
    return channel_service().dead_letters(actor(), args.get("channel"), args["page"], args["per_page"]).to_dict()


@admin.route("/notifications/resend", methods=["POST"])
@requires("admin")
@admin.doc(summary="Gửi lại thư chết / re-send dead letters (a new round of tries, now)")
@admin.arguments(ResendSchema())
@admin.response(200, ResendResult)
@errors(admin, 401, 403, 404, 422)
def resend(body):
    return {"resent": channel_service().resend(actor(), body["ids"])}


@admin.route("/templates", methods=["GET"])
@requires("admin")
@admin.doc(summary="Mẫu tin nhắn / message templates, shipped and overridden")
@admin.response(200, TemplateList)
@errors(admin, 401, 403)
def templates():
    return {"items": channel_service().template_list(actor())}


@admin.route("/templates/preview", methods=["POST"])
@requires("admin")
@admin.doc(summary="Xem trước / preview an event's messages (sample data, or yours; unsaved drafts)")
@admin.arguments(PreviewIn())
@admin.response(200, PreviewOut)
@errors(admin, 401, 403, 404, 422)
def preview(body):
    return channel_service().preview(actor(), body["event"], body["context"], body["drafts"])


@admin.route("/templates/<path:name>", methods=["GET"])
@requires("admin")
@admin.doc(summary="Một mẫu / one template: its source, the shipped default, whether overridden")
@admin.response(200, TemplateSchema)
@errors(admin, 401, 403, 404)
def template(name):
    return channel_service().template_get(actor(), name)


@admin.route("/templates/<path:name>", methods=["PUT"])
@requires("admin")
@admin.doc(summary="Sửa mẫu / override a template (checked by rendering it with sample data first)")
@admin.arguments(TemplateIn())
@admin.response(200, TemplateSchema)
@errors(admin, 401, 403, 404, 422)
def put_template(body, name):
    return channel_service().template_put(actor(), name, body["source"])


@admin.route("/templates/<path:name>", methods=["DELETE"])
@requires("admin")
@admin.doc(summary="Bỏ sửa đổi / back to the shipped template")
@admin.response(204)
@errors(admin, 401, 403, 404)
def delete_template(name):
    channel_service().template_delete(actor(), name)
