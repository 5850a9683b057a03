"""Citizens online (docs/online.md): the public catalogue, online submission, sign-in by a code sent by SMS
or with the national identity provider (OpenID Connect), the citizen's own dossiers (supplement, withdrawal,
documents and result files, payment), and the payment gateway's confirmation (IPN).

Thin: each route parses, calls one function of engine/ (catalogue, citizens, online, payments) and answers.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import marshmallow as ma
from flask import current_app, redirect, request, send_file
from flask_smorest import Blueprint
from marshmallow import validate

from engine import catalogue, citizens, online
from engine.errors import InvalidInput, MotcuaError, NotFound

from .attachments import DOWNLOAD_DOC, content_disposition
from .citizen_auth import (
    CitizenUnauthenticated,
    citizen_required,
    client_ip,
    current_citizen,
    optional_citizen,
    token_answer,
)
from .common import DateTimeString, PageSchema, PagingArgs, Str, errors
from .context import read_session, services
from .schemas import ApplicantSchema

log = logging.getLogger("motcua.citizens")

# -- the public catalogue and online submission (no sign-in) --------------------------------------------------
blp = Blueprint(
    "citizens_public",
    __name__,
    url_prefix="/api/v1/public",
    description="Công dân / citizens online: danh mục thủ tục, nộp hồ sơ trực tuyến, đăng nhập bằng mã SMS hoặc định danh điện tử",
)


class CatalogueArgs(PagingArgs):
    q = ma.fields.String(
        validate=validate.Length(max=200), metadata={"description": "tên, mã thủ tục hoặc cơ quan / name, code, agency"}
    )
    agency = ma.fields.String(validate=validate.Length(max=64))
    level = ma.fields.String(validate=validate.OneOf(catalogue.LEVELS))


class PublicProcedureSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    agency = Str()
    deadline = Str(metadata={"description": "thời hạn giải quyết / legal deadline"})
    cutoff = Str()
    fee = ma.fields.Integer(required=True, metadata={"description": "lệ phí (VND)"})
    level = Str(metadata={"enum": list(catalogue.LEVELS)})
    level_label = Str()
    online = ma.fields.Boolean(
        required=True, metadata={"description": "nhận hồ sơ trực tuyến / takes online submissions"}
    )


class PublicProcedurePageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(PublicProcedureSchema), required=True)


class PublicStepSchema(ma.Schema):
    name = Str()
    deadline = Str()
    procedure = Str(
        metadata={"description": "mã thủ tục của bước (thủ tục được gọi) / the procedure whose step it is (a callee)"}
    )


class PublicFormRefSchema(ma.Schema):
    key = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    download = ma.fields.String(required=True, metadata={"description": "đường dẫn tải / relative download path"})


class PublicProcedureDetailSchema(PublicProcedureSchema):
    version = ma.fields.Integer(required=True)
    steps = ma.fields.List(ma.fields.Nested(PublicStepSchema), required=True)
    documents = ma.fields.List(ma.fields.Dict(), required=True, metadata={"description": "thành phần hồ sơ"})
    form = ma.fields.Dict(
        allow_none=True,
        required=True,
        metadata={"description": "biểu mẫu người nộp điền {key, title, schema, ui_schema} / the applicant's form"},
    )
    forms = ma.fields.List(ma.fields.Nested(PublicFormRefSchema), required=True)


class ProcedureCodeArgs(ma.Schema):
    agency = ma.fields.String(validate=validate.Length(max=64))


@blp.route("/procedures", methods=["GET"])
@blp.doc(security=[], summary="Danh mục thủ tục công khai / the public catalogue")
@blp.arguments(CatalogueArgs(), location="query")
@blp.response(200, PublicProcedurePageSchema)
@errors(blp, 422)
def public_procedures(args):
    with read_session() as s:
        return catalogue.list_public(
            s, args.get("q"), args.get("agency"), args.get("level"), args["page"], args["per_page"]
        )


@blp.route("/procedures/<code>", methods=["GET"])
@blp.doc(security=[], summary="Một thủ tục / one procedure of the public catalogue")
@blp.arguments(ProcedureCodeArgs(), location="query")
@blp.response(200, PublicProcedureDetailSchema)
@errors(blp, 404, 422)
def public_procedure(args, code):
    with read_session() as s:
        return catalogue.public_procedure(s, services().dossiers.runtimes, code, args.get("agency"))


@blp.route("/procedures/<code>/forms/<key>", methods=["GET"])
@blp.doc(
    security=[],
    summary="Tải biểu mẫu / download the applicant's form (JSON Schema)",
    responses={"200": {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}},
)
@errors(blp, 404)
def public_form(code, key):
    with read_session() as s:
        form = catalogue.public_form(s, services().dossiers.runtimes, code, key)
    body = json.dumps(form, ensure_ascii=False, indent=2).encode("utf-8")
    resp = current_app.response_class(body, mimetype="application/json")
    resp.headers["Content-Disposition"] = content_disposition(f"{code}-{key}")
    return resp


class SubmitSchema(ma.Schema):
    procedure_code = ma.fields.String(required=True, validate=validate.Length(min=1, max=64))
    agency = ma.fields.String(validate=validate.Length(min=1, max=64))
    applicant = ma.fields.Nested(ApplicantSchema, required=True)
    data = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)


SUBMIT_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": SubmitSchema},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["payload"],
                "properties": {
                    "payload": {"type": "string", "description": "the JSON body above, as text"},
                    "<document_key>": {
                        "type": "string",
                        "format": "binary",
                        "description": "one part per document of the checklist, named by its key",
                    },
                },
            }
        },
    },
}


class SubmittedSchema(ma.Schema):
    code = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["new"]})
    status_code = ma.fields.Integer(required=True)
    status_label = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    channel = ma.fields.Integer(required=True)
    received_at = DateTimeString(required=True)
    due_at = DateTimeString()
    documents = ma.fields.List(ma.fields.Dict(), required=True)


@blp.route("/dossiers", methods=["POST"])
@blp.doc(
    security=[],
    summary="Nộp hồ sơ trực tuyến / submit a dossier online (level 3/4, toàn trình, một phần)",
    requestBody=SUBMIT_DOC,
    description="JSON, or multipart/form-data with the JSON in `payload` and one file per document of the "
    "intake form's checklist (`x-documents`), each part named by its key. Anonymous callers are rate-limited "
    "per IP and per phone (429); a citizen's token ties the dossier to them. A level 1/2 procedure is a 422 "
    "naming the level; 413/422 for a file as at the desk.",
)
@blp.response(201, SubmittedSchema)
@errors(blp, 401, 404, 413, 422, 429)
def submit():
    who = optional_citizen()
    files = []
    if request.mimetype == "multipart/form-data":
        raw = request.form.get("payload")
        if not raw:
            raise InvalidInput(
                "Thiếu phần 'payload' (JSON của hồ sơ)",
                "the 'payload' part (the dossier's JSON) is missing",
                {"fields": {"payload": "Thiếu / missing"}},
            )
        try:
            body = json.loads(raw)
        except ValueError:
            raise InvalidInput(
                "'payload' không phải JSON", "'payload' is not JSON", {"fields": {"payload": "JSON"}}
            ) from None
        files = [(key, f.filename or key, f.mimetype, f.stream) for key, f in request.files.items(multi=True)]
    else:
        body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("Cần một đối tượng JSON", "a JSON object is required", {"fields": {"_form": "JSON"}})
    try:
        body = SubmitSchema().load(body)
    except ma.ValidationError as exc:
        raise InvalidInput(
            "Dữ liệu gửi lên không hợp lệ", "the request data is invalid", {"fields": _flat(exc.messages)}
        ) from None
    return online.submit(
        services().dossiers,
        body["procedure_code"],
        body["applicant"],
        body.get("data") or {},
        files,
        agency=body.get("agency"),
        citizen=who,
        ip=client_ip(),
    ), 201


def _flat(messages, prefix=""):
    out = {}
    for k, v in (messages or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = "; ".join(map(str, v)) if isinstance(v, list) else str(v)
    return out


# -- sign-in --------------------------------------------------------------------------------------------------
class OtpRequestSchema(ma.Schema):
    phone = ma.fields.String(required=True, validate=validate.Length(min=1, max=32))


class OtpSentSchema(ma.Schema):
    phone = ma.fields.String(required=True)
    expires_in = ma.fields.Integer(required=True, metadata={"description": "giây / seconds"})


class OtpVerifySchema(ma.Schema):
    phone = ma.fields.String(required=True, validate=validate.Length(min=1, max=32))
    code = ma.fields.String(required=True, validate=validate.Length(min=1, max=16))


class CitizenTokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = ma.fields.Integer(required=True)
    role = ma.fields.String(required=True, metadata={"enum": ["citizen"]})
    phone = Str()
    id_number = Str()
    name = Str()


@blp.route("/otp", methods=["POST"])
@blp.doc(security=[], summary="Gửi mã đăng nhập qua SMS / send a sign-in code by SMS")
@blp.arguments(OtpRequestSchema())
@blp.response(202, OtpSentSchema)
@errors(blp, 422, 429)
def otp_request(body):
    svc = services()
    templates = svc.dossiers.notifier.templates
    return citizens.request_code(svc.db, svc.settings, body["phone"], client_ip(), templates), 202


@blp.route("/otp/verify", methods=["POST"])
@blp.doc(security=[], summary="Đăng nhập bằng mã / sign in with the code")
@blp.arguments(OtpVerifySchema())
@blp.response(200, CitizenTokenSchema)
@errors(blp, 422, 429)
def otp_verify(body):
    svc = services()
    return token_answer(citizens.verify_code(svc.db, svc.settings, body["phone"], body["code"], client_ip()))


class OidcLoginArgs(ma.Schema):
    next = ma.fields.String(validate=validate.Length(max=300), metadata={"description": "trang quay lại / page"})


@blp.route("/oidc/login", methods=["GET"])
@blp.doc(
    security=[],
    summary="Đăng nhập bằng định danh điện tử / sign in with the national identity provider (OpenID Connect)",
    responses={"302": {"description": "to the identity provider"}},
)
@blp.arguments(OidcLoginArgs(), location="query")
@errors(blp, 404, 422)
def oidc_login(args):
    client = _oidc_client()
    back = args.get("next") or "/cong-dan"
    if not back.startswith("/") or back.startswith("//"):
        back = "/cong-dan"
    from flask import session

    session["oidc_next"] = back
    return client.authorize_redirect(_redirect_uri())


@blp.route("/oidc/callback", methods=["GET"])
@blp.doc(
    security=[],
    summary="Quay về từ nhà cung cấp định danh / back from the identity provider",
    responses={"302": {"description": "to the citizen's page, the token in the URL fragment"}},
)
@errors(blp, 401, 403, 404)
def oidc_callback():
    from authlib.integrations.base_client.errors import OAuthError
    from flask import session

    client = _oidc_client()
    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        log.warning("sign-in with the identity provider failed: %s", exc)
        raise CitizenUnauthenticated(
            "Đăng nhập bằng định danh điện tử không thành công", f"sign-in with the identity provider failed: {exc}"
        ) from None
    claims = token.get("userinfo") or {}
    claim = services().settings.online.oidc_id_claim
    citizen = citizens.citizen_of_identity(claims.get(claim), claims.get("name"))
    answer = token_answer(citizen)
    back = session.pop("oidc_next", None) or "/cong-dan"
    fragment = urlencode({k: answer[k] for k in ("access_token", "expires_in", "id_number", "name") if answer[k]})
    return redirect(f"{back}#{fragment}")


def _redirect_uri() -> str:
    return services().settings.online.public_url.rstrip("/") + "/api/v1/public/oidc/callback"


def _oidc_client():
    client = current_app.extensions.get("motcua_oidc")
    if client is None:
        raise NotFound(
            "Chưa cấu hình đăng nhập bằng định danh điện tử (MOTCUA_OIDC_ISSUER)",
            "sign-in with the identity provider is not configured (MOTCUA_OIDC_ISSUER)",
        )
    return client


# -- the citizen's own dossiers -------------------------------------------------------------------------------
my = Blueprint(
    "citizens_my",
    __name__,
    url_prefix="/api/v1/public/my",
    description="Hồ sơ của tôi / a signed-in citizen's own dossiers (citizen token)",
)
my.before_request(citizen_required)


class MyDossierSchema(ma.Schema):
    code = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    procedure_name = Str()
    status = ma.fields.String(required=True)
    status_code = ma.fields.Integer(required=True)
    status_label = ma.fields.String(required=True)
    received_at = DateTimeString(required=True)
    due_at = DateTimeString()
    channel = ma.fields.Integer(required=True)
    finished = ma.fields.Boolean(required=True)


class MyDossierPageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(MyDossierSchema), required=True)


class MyFileSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, metadata={"enum": ["document", "result"]})
    document_key = Str()
    document_name = Str(metadata={"description": "tên giấy tờ trong danh mục / the checklist's name of the document"})
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    uploaded_at = DateTimeString()


class MyPaymentSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    amount = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["pending", "paid"]})
    created_at = DateTimeString()
    paid_at = DateTimeString()
    receipt_no = Str()
    transaction_no = Str()


class MyStepSchema(ma.Schema):
    name = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    started_at = DateTimeString()
    completed_at = DateTimeString()


class MyDossierDetailSchema(MyDossierSchema):
    status_label_en = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    processed_at = DateTimeString()
    returned_at = DateTimeString()
    applicant = ma.fields.Nested(ApplicantSchema, required=True)
    data = ma.fields.Dict(required=True, metadata={"description": "chỉ các trường người nộp khai / applicant's fields"})
    data_view = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String()),
        required=True,
        metadata={
            "description": "các trường người nộp khai theo nhãn của tờ khai, như trang của cán bộ (không có trường "
            "nội bộ) / the applicant's fields as the intake form labels them, as on the staff's page"
        },
    )
    steps = ma.fields.List(ma.fields.Nested(MyStepSchema), required=True)
    documents = ma.fields.List(ma.fields.Nested(MyFileSchema), required=True)
    result_files = ma.fields.List(ma.fields.Nested(MyFileSchema), required=True)
    payments = ma.fields.List(ma.fields.Nested(MyPaymentSchema), required=True)
    can_withdraw = ma.fields.Boolean(required=True)
    can_supplement = ma.fields.Boolean(required=True)
    supplement_request = ma.fields.Dict(allow_none=True, required=True)


@my.route("/dossiers", methods=["GET"])
@my.doc(summary="Hồ sơ của tôi / my dossiers")
@my.arguments(PagingArgs(), location="query")
@my.response(200, MyDossierPageSchema)
@errors(my, 401, 422)
def my_dossiers(args):
    with read_session() as s:
        return citizens.my_dossiers(s, current_citizen(), args["page"], args["per_page"])


@my.route("/dossiers/<code>", methods=["GET"])
@my.doc(summary="Một hồ sơ của tôi / one of my dossiers (someone else's is a 404)")
@my.response(200, MyDossierDetailSchema)
@errors(my, 401, 404)
def my_dossier(code):
    with read_session() as s:
        return citizens.citizen_view(s, services().dossiers.runtimes, current_citizen(), code)


UPLOAD_DOC = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "<document_key>": {
                        "type": "string",
                        "format": "binary",
                        "description": "one part per document, named by its checklist key",
                    },
                    "note": {"type": "string", "maxLength": 2000},
                },
            }
        }
    },
}


@my.route("/dossiers/<code>/supplement", methods=["POST"])
@my.doc(
    summary="Nộp bổ sung giấy tờ / answer a supplement request with the missing documents",
    requestBody=UPLOAD_DOC,
    description="Only while the dossier is in status 5 (supplement requested); the receiving officer then "
    "confirms with the supplement-received action. 413/422 for a file as at the desk; 409 in another status.",
)
@my.response(200, MyDossierDetailSchema)
@errors(my, 401, 404, 409, 413, 422)
def my_supplement(code):
    files = [(key, f.filename or key, f.mimetype, f.stream) for key, f in request.files.items(multi=True)]
    online.supplement(services().dossiers, current_citizen(), code, files, request.form.get("note"))
    with read_session() as s:
        return citizens.citizen_view(s, services().dossiers.runtimes, current_citizen(), code)


class WithdrawSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=validate.Length(min=1, max=2000))


@my.route("/dossiers/<code>/withdraw", methods=["POST"])
@my.doc(summary="Rút hồ sơ / withdraw my dossier while it is not processed")
@my.arguments(WithdrawSchema())
@my.response(200, MyDossierDetailSchema)
@errors(my, 401, 404, 409, 422)
def my_withdraw(body, code):
    online.withdraw(services().dossiers, current_citizen(), code, body["reason"])
    with read_session() as s:
        return citizens.citizen_view(s, services().dossiers.runtimes, current_citizen(), code)


@my.route("/dossiers/<code>/files/<int:file_id>", methods=["GET"])
@my.doc(
    summary="Tải giấy tờ hoặc kết quả điện tử / download one of my documents or result files", responses=DOWNLOAD_DOC
)
@errors(my, 401, 404)
def my_file(code, file_id):
    view, path = online.open_file(services().dossiers, current_citizen(), code, file_id)
    resp = send_file(path, mimetype=view["content_type"], conditional=False, etag=False, max_age=0)
    resp.headers["Content-Disposition"] = content_disposition(view["filename"])
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


class PayAnswerSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    amount = ma.fields.Integer(required=True)
    payment_url = ma.fields.String(required=True, metadata={"description": "chuyển người nộp tới đây / redirect here"})


@my.route("/dossiers/<code>/payment", methods=["POST"])
@my.doc(summary="Thanh toán lệ phí / pay the fee: the gateway's signed payment URL")
@my.response(200, PayAnswerSchema)
@errors(my, 401, 404, 409)
def my_payment(code):
    return online.payment_link(services().dossiers, current_citizen(), code)


# -- the payment gateway's confirmation -----------------------------------------------------------------------
pay = Blueprint(
    "payments",
    __name__,
    url_prefix="/api/v1/payments",
    description="Cổng thanh toán / the payment gateway's server-to-server confirmation (IPN)",
)


class IpnAnswerSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "00 paid, 01 already paid, 02 not paid"})
    message = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    receipt_no = Str()


@pay.route("/ipn", methods=["GET", "POST"])
@pay.doc(
    security=[],
    summary="Xác nhận thanh toán (IPN) / payment confirmation from the gateway (signed parameters)",
    description="Parameters in the query string (GET) or a form body (POST), signed with HMAC-SHA512 "
    "(`secure_hash`). 403 for a wrong signature, 404 for an unknown order, 422 for a wrong amount; a "
    "replayed confirmation answers 200 with code 01 and changes nothing.",
)
@pay.response(200, IpnAnswerSchema)
@errors(pay, 403, 404, 409, 422)
def ipn():
    params = request.args.to_dict() if request.method == "GET" else request.form.to_dict()
    try:
        return online.confirm_payment(services().dossiers, params, client_ip())
    except MotcuaError as exc:
        log.warning("IPN refused (%s) from %s: %s", exc.status, client_ip(), exc.message_en)
        raise


def init_app(app) -> None:
    """Register the identity provider's client when MOTCUA_OIDC_ISSUER is set (authlib's Flask client)."""
    o = app.extensions["motcua"].settings.online
    if not (o.oidc_issuer and o.oidc_client_id):
        return
    from authlib.integrations.flask_client import OAuth

    if not app.secret_key:
        app.secret_key = app.extensions["motcua"].settings.secret_key  # signs the sign-in's state cookie
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    oauth = OAuth(app)
    app.extensions["motcua_oidc"] = oauth.register(
        "national_identity",
        client_id=o.oidc_client_id,
        client_secret=o.oidc_client_secret,
        server_metadata_url=o.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": o.oidc_scope},
    )
