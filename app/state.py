"""What `create_app` builds once per app and the views reach through `current_app`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app
from peewee import Database
from prometheus_client import CollectorRegistry

from scheduler.embedded import EmbeddedEntries
from scheduler.service import Scheduler

EXTENSION_KEY = "gnomon"


@dataclass(frozen=True)
class Gnomon:
    """The app's database, scheduler, metrics registry and validated settings, and the log
    entries its views of attempts embedded lately."""

    database: Database
    scheduler: Scheduler
    registry: CollectorRegistry
    settings: Mapping[str, object]
    embedded: EmbeddedEntries = field(default_factory=EmbeddedEntries)


def gnomon() -> Gnomon:
    """The Gnomon state of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def scheduler() -> Scheduler:
    """The scheduler of the current app."""
    return gnomon().scheduler
