"""/api/audit: who changed or started what, and when, newest first."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.schemas import AuditEventSchema, AuditFilterSchema, load_query
from app.state import gnomon
from scheduler import queries
from scheduler.views import AuditFilter

bp = Blueprint("audit", __name__, url_prefix="/api/audit")

FILTER = AuditFilterSchema()
EVENTS = AuditEventSchema(many=True)


@bp.get("", strict_slashes=False)
def list_audit() -> Response:
    """Audit events matching the filters, a page at a time (`before_id` pages back)."""
    args = load_query(FILTER, request.args)
    events = queries.list_audit(
        AuditFilter(
            actor=args.get("actor"),
            target=args.get("target"),
            since=args.get("since"),
            before_id=args.get("before_id"),
            limit=args.get("limit", gnomon().settings["MAX_RECORDS_DEFAULT"]),
        )
    )
    return jsonify(EVENTS.dump(events))
