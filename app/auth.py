"""Who may call what: API tokens and their scopes, task tokens, and the metrics token.

Every request needs a bearer token unless its view says otherwise (`requires`):
reads need scope `read`, changes `write` (`admin` implies `write` implies
`read`). A service with no API tokens configured is open (it then listens on
loopback only, see `exposure`), except for the task callbacks, which always
need the task's own token or an API token with `write`. Only SHA-256 digests
of API tokens are configured; tokens themselves are never stored or logged.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from flask import Flask, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from app.config import ConfigError
from app.state import scheduler

AUTH_KEY = "gnomon.auth"
ACCESS_ATTRIBUTE = "gnomon_access"
ANONYMOUS = "anonymous"  # the actor of a request to a service without API tokens
TASK_ACTOR = "task:"  # + the attempt id: the actor of a request made with a task token
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
ENTRY = re.compile(rf"({NAME_PATTERN}):(read|write|admin):([0-9a-fA-F]{{64}})")
ENTRY_FORMAT = "name:scope:sha256hex, scope read, write or admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_NAMES = frozenset({"localhost"})


class Scope(enum.StrEnum):
    """What an API token may do; each scope implies the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """Whether this scope covers `needed`."""
        order = list(Scope)
        return order.index(self) >= order.index(needed)


class Access(enum.Enum):
    """What a view asks of the caller."""

    PUBLIC = "public"  # nothing
    READ = "read"  # an API token with scope read (or none configured)
    WRITE = "write"  # an API token with scope write (or none configured)
    TASK = "task"  # the task's own token, or an API token with scope write
    METRICS = "metrics"  # the metrics token or any API token (when either is configured)


@dataclass(frozen=True)
class ApiToken:
    """A configured API token: its name (the actor in the audit trail), scope and digest."""

    name: str
    scope: Scope
    digest: str


@dataclass(frozen=True)
class Credentials:
    """The API tokens and metrics token digest a service accepts."""

    api_tokens: tuple[ApiToken, ...]
    metrics_digest: str | None

    def api_token(self, presented: str | None) -> ApiToken | None:
        """The configured token `presented` is, if any (every digest compared in constant time)."""
        return self.by_digest(digest(presented)) if presented else None

    def by_digest(self, wanted: str) -> ApiToken | None:
        """The configured token whose digest is `wanted` (every digest compared in constant
        time)."""
        found = None
        for token in self.api_tokens:
            if hmac.compare_digest(token.digest, wanted):
                found = token
        return found

    def is_metrics_token(self, presented: str | None) -> bool:
        """Whether `presented` is the metrics token."""
        if not presented or self.metrics_digest is None:
            return False
        return hmac.compare_digest(self.metrics_digest, digest(presented))


# ---------------------------------------------------------------- tokens and entries


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """The SHA-256 hex digest of a token (enough: tokens are random, not passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def entry(name: str, scope: Scope, token: str) -> str:
    """The configuration line of an API token: `name:scope:sha256hex`."""
    return f"{name}:{scope.value}:{digest(token)}"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an API token, or None."""
    if not re.fullmatch(NAME_PATTERN, name):
        return "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    if name == ANONYMOUS:
        return f"{ANONYMOUS!r} is reserved for requests to a service without tokens"
    return None


def load_credentials(settings: Mapping[str, object]) -> Credentials:
    """The tokens of API_TOKENS, API_TOKENS_FILE and METRICS_TOKEN_SHA256; ConfigError if bad."""
    sources = [("API_TOKENS (env GNOMON_API_TOKENS)", re.split(r"[,\n]", settings["API_TOKENS"]))]
    if settings["API_TOKENS_FILE"]:
        sources.append(_file_lines(settings["API_TOKENS_FILE"]))
    problems: list[str] = []
    tokens: dict[str, ApiToken] = {}
    for source, lines in sources:
        for number, line in enumerate(lines, 1):
            _add_entry(line.strip(), f"{source}, entry {number},", tokens, problems)
    if problems:
        raise ConfigError(problems)
    metrics = settings["METRICS_TOKEN_SHA256"].lower() or None
    return Credentials(tuple(tokens.values()), metrics)


def _file_lines(path: str) -> tuple[str, list[str]]:
    """The lines of the token file, without comments; ConfigError if it cannot be read."""
    source = f"API_TOKENS_FILE ({path})"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{source} cannot be read: {error.strerror or error}."]) from error
    return source, [line.split("#", 1)[0] for line in text.splitlines()]


def _add_entry(line: str, where: str, tokens: dict[str, ApiToken], problems: list[str]) -> None:
    """Parse one entry into `tokens`, or note why it is wrong (never echoing it)."""
    if not line:
        return
    match = ENTRY.fullmatch(line)
    if match is None:
        problems.append(f"{where} is not {ENTRY_FORMAT}.")
        return
    name, scope, hexdigest = match.groups()
    problem = name_problem(name)
    if problem is None and name in tokens:
        problem = "is configured twice"
    if problem:
        problems.append(f"{where} token name {name!r} {problem}.")
        return
    tokens[name] = ApiToken(name, Scope(scope), hexdigest.lower())


# ---------------------------------------------------------------- listening safely


class Exposure(enum.Enum):
    """What `gnomon serve` does about the address it is asked to listen on."""

    SAFE = "safe"  # loopback, or API tokens configured
    INSECURE = "insecure"  # beyond loopback, open, because the operator insisted
    REFUSED = "refused"


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`."""
    host = host.strip().strip("[]").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure(host: str, has_api_tokens: bool, insecure: bool) -> Exposure:
    """Whether serving on `host` is safe, insecure but allowed, or refused."""
    if has_api_tokens or is_loopback(host):
        return Exposure.SAFE
    return Exposure.INSECURE if insecure else Exposure.REFUSED


# ---------------------------------------------------------------- the request hook

View = TypeVar("View", bound=Callable[..., object])


def requires(access: Access) -> Callable[[View], View]:
    """Mark a view as needing `access` instead of the default (read for GET, write otherwise)."""

    def mark(view: View) -> View:
        setattr(view, ACCESS_ATTRIBUTE, access)
        return view

    return mark


def credentials() -> Credentials:
    """The tokens the current app accepts."""
    return current_app.extensions[AUTH_KEY]


def init_app(app: Flask, settings: Mapping[str, object]) -> None:
    """Load the configured tokens and check every request of `app` against them."""
    app.extensions[AUTH_KEY] = load_credentials(settings)
    app.before_request(authenticate)


def authenticate() -> None:
    """Refuse a request its bearer token does not allow; note its actor for the audit trail."""
    g.actor = ANONYMOUS
    access = required_access()
    if access is Access.PUBLIC:
        return
    presented = bearer_token()
    if access is Access.TASK:
        g.actor = task_caller(presented)
    elif access is Access.METRICS:
        metrics_caller(presented)
    elif credentials().api_tokens:
        token = api_caller(presented, Scope(access.value))
        g.actor, g.scope = token.name, token.scope


def may_see_secrets() -> bool:
    """Whether the caller may read secrets in definitions: a `write` token, or an open service."""
    return g.get("scope", Scope.ADMIN).allows(Scope.WRITE)


def required_access() -> Access:
    """What the matched view asks for; unmatched requests count as reads or writes too."""
    view = current_app.view_functions.get(request.endpoint or "")
    default = Access.READ if request.method in SAFE_METHODS else Access.WRITE
    return getattr(view, ACCESS_ATTRIBUTE, default)


def bearer_token() -> str | None:
    """The request's bearer token, if it sent one."""
    authorization = request.authorization
    if authorization is None or authorization.type != "bearer":
        return None
    return authorization.token or None


def api_caller(presented: str | None, needed: Scope) -> ApiToken:
    """The API token of the request; 401 if none is valid, 403 if its scope is too small."""
    token = credentials().api_token(presented)
    if token is None:
        raise unauthorized(presented)
    if not token.scope.allows(needed):
        raise Forbidden(f"Token {token.name!r} has scope {token.scope}; this needs {needed}.")
    return token


def task_caller(presented: str | None) -> str:
    """The actor of a task callback: the task itself, or an API token with scope write.

    Any other token is a 403, whether API tokens are configured or not.
    """
    if presented is None:
        raise unauthorized(None, "A task callback needs the task's GNOMON_TASK_TOKEN.")
    task_id = str(request.view_args.get("task_id", "")).lower()
    if scheduler().task_token_valid(task_id, presented):
        return TASK_ACTOR + task_id
    token = credentials().api_token(presented)
    if token is None or not token.scope.allows(Scope.WRITE):
        raise Forbidden(f"This token may not report for task {task_id}.")
    return token.name


def metrics_caller(presented: str | None) -> None:
    """Let the metrics token or any API token through, once either is configured."""
    accepted = credentials()
    if not accepted.api_tokens and accepted.metrics_digest is None:
        return
    if not (accepted.is_metrics_token(presented) or accepted.api_token(presented)):
        raise unauthorized(presented)


def unauthorized(presented: str | None, message: str | None = None) -> Unauthorized:
    """The 401 for a missing or unknown token, with its `WWW-Authenticate: Bearer` challenge."""
    if presented is None:
        challenge = {"realm": "gnomon"}
        default = "This needs a valid API token: send Authorization: Bearer <token>."
    else:
        challenge = {"realm": "gnomon", "error": "invalid_token"}
        default = "The bearer token is not valid here."
    return Unauthorized(message or default, www_authenticate=WWWAuthenticate("bearer", challenge))
