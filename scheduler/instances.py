"""Instance leases: each instance owns the attempts it started while it renews its lease.

An instance registers its name at start (refused while another live process holds
it), renews the lease from its scheduling loop, and takes over the live attempts
of an instance whose lease has expired. Every take-over is a conditional write per
attempt, so when several survivors look at once each attempt gets one new owner.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from peewee import IntegrityError

from scheduler.errors import InstanceNameTaken
from scheduler.models import Instance, Task
from scheduler.states import LIVE_TASK
from scheduler.tx import lock_instance, write_transaction


def holder_id() -> str:
    """Who holds a lease: this host and process."""
    return f"{socket.gethostname()}/{os.getpid()}"


def _holder_gone(holder: str) -> bool:
    """Whether the process named by `holder` is known to be gone (same host, no such process)."""
    host, _, pid_text = holder.rpartition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's process: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier life of this process id (a restarted container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def register(name: str, now: datetime, lease: timedelta) -> None:
    """Take the lease on `name`; InstanceNameTaken if a live process holds it."""
    me = holder_id()
    with write_transaction():
        row = lock_instance(name)
        if row is not None:
            if row.heartbeat_at + lease > now and not _holder_gone(row.holder):
                raise InstanceNameTaken(_taken_message(name, row.holder, row.heartbeat_at))
            Instance.update(holder=me, started_at=now, heartbeat_at=now).where(
                Instance.name == name
            ).execute()
            return
        try:
            with write_transaction():
                Instance.create(name=name, holder=me, started_at=now, heartbeat_at=now)
        except IntegrityError:
            raise InstanceNameTaken(_taken_message(name, "another process", now)) from None


def _taken_message(name: str, holder: str, heartbeat_at: datetime) -> str:
    """Why an instance may not start under `name`."""
    return (
        f"instance name {name!r} is in use by a live Gnomon instance ({holder}, last "
        f"heartbeat {heartbeat_at:%Y-%m-%dT%H:%M:%SZ}); give this one another "
        "GNOMON_INSTANCE, or stop the other and wait for its lease "
        "(GNOMON_INSTANCE_LEASE_SECONDS) to expire"
    )


def renew(name: str, now: datetime) -> bool:
    """Renew this process's lease on `name`; False if another process had taken it."""
    me = holder_id()
    with write_transaction():
        renewed = (
            Instance.update(heartbeat_at=now)
            .where((Instance.name == name) & (Instance.holder == me))
            .execute()
        )
        if renewed:
            return True
        taken = Instance.delete().where(Instance.name == name).execute()
        Instance.create(name=name, holder=me, started_at=now, heartbeat_at=now)
        return not taken


def ownerless(now: datetime, lease: timedelta, me: str) -> list[str | None]:
    """Owners of live attempts that hold no lease any more (expired, or none: None too)."""
    owners = {
        o
        for (o,) in Task.select(Task.instance).where(Task.status.in_(LIVE_TASK)).distinct().tuples()
    }
    owners.discard(me)
    if not owners:
        return []
    alive = {
        name
        for (name,) in Instance.select(Instance.name)
        .where(Instance.heartbeat_at > now - lease)
        .tuples()
    }
    return [o for o in owners if o not in alive]


def take_over(owner: str | None, me: str) -> list[Task]:
    """Make `me` the owner of `owner`'s live attempts; returns those this call moved."""
    with write_transaction():
        candidates = list(Task.select().where(Task.status.in_(LIVE_TASK) & _owned_by(owner)))
        return [
            task
            for task in candidates
            if Task.update(instance=me)
            .where((Task.id == task.id) & Task.status.in_(LIVE_TASK) & _owned_by(owner))
            .execute()
            == 1
        ]


def _owned_by(owner: str | None) -> object:
    """The condition that an attempt belongs to `owner` (None: to no instance)."""
    return Task.instance.is_null() if owner is None else Task.instance == owner
