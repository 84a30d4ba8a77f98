"""The console's blueprint: who is looking (session), CSRF checks, and HTML error pages."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from app.auth import ANONYMOUS, ApiToken, Scope, credentials
from app.errors import describe

bp = Blueprint("console", __name__)

OPEN_ENDPOINTS = frozenset({"console.login"})
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Viewer:
    """Who uses the console: a token's name (or anonymous) and whether it may act."""

    name: str
    can_write: bool
    signed_in: bool


class CsrfRefused(HTTPException):
    """A state-changing form without this session's CSRF token."""

    code = 403
    description = (
        "This form was not sent by this console session (the CSRF check failed). "
        "Reload the page and try again."
    )


class ReadOnly(HTTPException):
    """A button pressed with a read-only token."""

    code = 403
    description = "Your token has scope read: it may look, not act. Sign in with a write token."


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def signed_in_token() -> ApiToken | None:
    """The configured API token this session signed in with, if still configured."""
    digest = session.get("token_digest")
    return credentials().by_digest(digest) if isinstance(digest, str) else None


def current_viewer() -> Viewer | None:
    """The viewer of this request; None when tokens are configured and none signed in."""
    if not credentials().api_tokens:
        return Viewer(ANONYMOUS, can_write=True, signed_in=False)
    token = signed_in_token()
    if token is None:
        return None
    return Viewer(token.name, token.scope.allows(Scope.WRITE), signed_in=True)


@bp.before_request
def check_viewer() -> Response | None:
    """Send strangers to the sign-in form; refuse forged or read-only state changes."""
    if request.method == "POST":
        sent = request.form.get(CSRF_FIELD, "")
        if not sent or not hmac.compare_digest(sent, session.get(CSRF_FIELD, "")):
            raise CsrfRefused()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    g.viewer = current_viewer()
    if g.viewer is None:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method == "POST" and not g.viewer.can_write and request.endpoint != "console.logout":
        raise ReadOnly()
    return None


@bp.app_context_processor
def console_globals() -> dict[str, object]:
    """What every console template may use."""
    return {"csrf_token": csrf_token, "viewer": g.get("viewer")}


@bp.errorhandler(Exception)
def error_page(error: Exception) -> tuple[str, int]:
    """An HTML page for any error of a console page, in the API's words."""
    status, code, message, _details = describe(error)
    return render_template("console/error.html", status=status, code=code, message=message), status
