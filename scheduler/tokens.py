"""Task tokens: each attempt gets a bearer token valid only for its own callbacks."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from peewee import IntegrityError

from scheduler.models import Setting
from scheduler.tx import write_transaction

SECRET_KEY = "task_token_secret"


def server_secret() -> bytes:
    """The server's task-token secret, made on first start and kept in the database."""
    row = Setting.get_or_none(Setting.key == SECRET_KEY)
    if row is None:
        try:
            with write_transaction():
                row = Setting.create(key=SECRET_KEY, value=secrets.token_hex(32))
        except IntegrityError:  # another instance made it first: use theirs
            row = Setting.get(Setting.key == SECRET_KEY)
    return bytes.fromhex(row.value)


def task_token(secret: bytes, task_id: str) -> str:
    """The token of attempt `task_id`."""
    return hmac.new(secret, task_id.encode(), hashlib.sha256).hexdigest()


def token_matches(secret: bytes, task_id: str, token: str) -> bool:
    """Whether `token` is the token of attempt `task_id` (constant time)."""
    return hmac.compare_digest(task_token(secret, task_id), token)
