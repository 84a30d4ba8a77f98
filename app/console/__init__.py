"""The web console at `/`: runs, definitions, one definition, one run with its live logs.

Pages are server-rendered (Jinja, package data); a small script served by Gnomon
refreshes the live parts and streams logs over `log_stream`. Nothing is loaded from
another host, and a strict Content-Security-Policy says so. With API tokens the
console asks for one and keeps it in a signed HttpOnly SameSite=Strict session; every
form carries a CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Response

from app.auth import ACCESS_ATTRIBUTE, Access
from app.console import actions, pages  # noqa: F401  (their routes join the blueprint)
from app.console.blueprint import bp

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask, server_secret: bytes) -> None:
    """Mount the console on `app`, its session signed with a key derived from `server_secret`."""
    app.secret_key = hmac.new(server_secret, b"gnomon console session", hashlib.sha256).digest()
    app.config.update(
        SESSION_COOKIE_NAME="gnomon_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.register_blueprint(bp)
    # The console checks its own session (and the static files are not secret): the API's
    # bearer check must let these through.
    for endpoint, view in app.view_functions.items():
        if endpoint == "static" or endpoint.startswith(bp.name + "."):
            setattr(view, ACCESS_ATTRIBUTE, Access.PUBLIC)
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """Every answer forbids other hosts' scripts, styles, fonts and frames."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
