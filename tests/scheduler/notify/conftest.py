"""Fixtures of the notification tests: the engine world, a sender on its clock, receivers."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

import pytest

from scheduler.models import Delivery
from scheduler.notify.metrics import NotifyMetrics
from scheduler.notify.sender import Sender
from scheduler.notify.settings import NotifySettings
from tests.scheduler.test_engine import World
from tests.scheduler.test_engine import world as world  # a fixture, shared
from tests.support.receivers import receiver as receiver  # a fixture, shared
from tests.support.receivers import smtp as smtp  # a fixture, shared

LOOPBACK = (ip_network("127.0.0.1/32"),)
PUBLIC_URL = "http://gnomon.example:8080"


@pytest.fixture
def make_sender(world: World) -> Callable[..., Sender]:
    """Factory of senders on the world's clock and registry; `overrides` change settings."""
    metrics = NotifyMetrics(world.registry)

    def make(**overrides: Any) -> Sender:
        settings = NotifySettings(
            public_url=PUBLIC_URL,
            allowed_networks=LOOPBACK,
            timeout_seconds=2,
            retry_for_seconds=3600,
            **overrides,
        )
        return Sender(settings, world.clock, metrics)

    return make


def deliveries(run_id: str | None = None) -> list[Delivery]:
    """The outbox rows (of one run), oldest first."""
    query = Delivery.select().order_by(Delivery.created_at, Delivery.position)
    return list(query.where(Delivery.run == run_id) if run_id else query)


def drain(sender: Sender) -> int:
    """Let `sender` try every delivery due now, on this thread; how many it tried."""
    tried = 0
    while sender.step(sender.clock()):
        tried += 1
    return tried
