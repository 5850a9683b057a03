"""GET /healthz (outside /api/v1): 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import text

from engine.errors import MotcuaError

from .common import errors
from .context import read_session

blp = Blueprint("health", __name__, url_prefix="/", description="Tình trạng dịch vụ / health")


class Unavailable(MotcuaError):
    status = 503
    code = "unavailable"


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})
    database = ma.fields.String(required=True, metadata={"enum": ["ok"]})


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[], summary="Kiểm tra sống / liveness and database check")
@blp.response(200, HealthSchema)
@errors(blp, 503)
def healthz():
    try:
        with read_session() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy"
        raise Unavailable(
            "Cơ sở dữ liệu không trả lời", f"the database does not answer ({type(exc).__name__})"
        ) from exc
    return {"status": "ok", "database": "ok"}
