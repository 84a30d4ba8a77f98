"""What a notification says about a run: facts read from the database, then its renderings."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

from scheduler.models import Delivery, LogEntry, Run, Task

LAST_LOG_LINES = 10
TEST_STATUS = "test"


@dataclass(frozen=True)
class TaskReport:
    """The latest attempt of one task of the run."""

    name: str
    status: str
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    reason: str | None
    last_lines: tuple[str, ...]

    @property
    def duration(self) -> str:
        """Its container run time, as `12.3 s`, or `-`."""
        if self.started_at is None or self.ended_at is None:
            return "-"
        return f"{(self.ended_at - self.started_at).total_seconds():.1f} s"


@dataclass(frozen=True)
class RunReport:
    """One finished run (or a test message) as the notifications tell it."""

    definition: str
    version: int
    run_id: str | None
    status: str  # succeeded | failed | test
    previous_status: str | None
    started_at: datetime | None
    ended_at: datetime | None
    reason: str | None
    link: str
    tasks: tuple[TaskReport, ...] = ()

    @property
    def test(self) -> bool:
        """Whether this is a test message rather than news of a run."""
        return self.status == TEST_STATUS


def run_link(public_url: str, run_id: str | None) -> str:
    """The web console's page of the run (its list of runs for a test message)."""
    base = public_url.rstrip("/")
    return f"{base}/runs/{run_id}" if run_id else f"{base}/runs"


def load_report(delivery: Delivery, public_url: str) -> RunReport:
    """The report a delivery carries: its run as it ended, with each task's latest attempt."""
    run = Run.get_by_id(delivery.run_id)
    return RunReport(
        definition=run.definition_name,
        version=run.definition_version,
        run_id=run.id,
        status=delivery.status,
        previous_status=delivery.previous_status,
        started_at=run.started_at,
        ended_at=run.ended_at,
        reason=run.reason,
        link=run_link(public_url, run.id),
        tasks=_task_reports(run.id),
    )


def test_report(definition: str, version: int, public_url: str) -> RunReport:
    """A clearly marked test message about `definition`."""
    return RunReport(
        definition=definition,
        version=version,
        run_id=None,
        status=TEST_STATUS,
        previous_status=None,
        started_at=None,
        ended_at=None,
        reason="This is a test message sent from Gnomon; no run has ended.",
        link=run_link(public_url, None),
    )


def _task_reports(run_id: str) -> tuple[TaskReport, ...]:
    """Each task's latest attempt, in the order the tasks were first created."""
    latest: dict[str, Task] = {}
    for task in Task.select().where(Task.run == run_id).order_by(Task.created_at, Task.attempt):
        latest[task.task_name] = task
    return tuple(
        TaskReport(t.task_name, t.status, t.attempt, t.started_at, t.ended_at, t.reason,
                   _last_lines(t.id))
        for t in latest.values()
    )  # fmt: skip


def _last_lines(task_id: str) -> tuple[str, ...]:
    """The last lines an attempt logged, oldest first."""
    newest = (
        LogEntry.select(LogEntry.message)
        .where(LogEntry.task == task_id)
        .order_by(LogEntry.when.desc(), LogEntry.seq.desc())
        .limit(LAST_LOG_LINES)
    )
    return tuple(reversed([entry.message for entry in newest]))


# ---------------------------------------------------------------- renderings


def subject(report: RunReport) -> str:
    """`Gnomon: <definition> failed` (or succeeded); test messages say so first."""
    if report.test:
        return f"[TEST] Gnomon: {report.definition} notification test"
    return f"Gnomon: {report.definition} {report.status}"


def _time(value: datetime | None) -> str | None:
    """A time as ISO-8601 UTC with `Z`, or None."""
    return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _headline(report: RunReport) -> list[tuple[str, str]]:
    """The run's facts as (label, value) lines."""
    facts = [
        ("Definition", f"{report.definition} (version {report.version})"),
        ("Run", report.run_id or "-"),
        ("Status", report.status),
        ("Previous status", report.previous_status or "-"),
        ("Started", _time(report.started_at) or "-"),
        ("Ended", _time(report.ended_at) or "-"),
    ]
    return facts + ([("Reason", report.reason)] if report.reason else [])


def email_text(report: RunReport) -> str:
    """The plain-text part of an email."""
    lines = [f"{label}: {value}" for label, value in _headline(report)]
    lines += ["", f"Open the run: {report.link}", ""]
    for task in report.tasks:
        lines.append(
            f"- {task.name}: {task.status}, attempt {task.attempts}, {task.duration}"
            + (f", {task.reason}" if task.reason else "")
        )
        lines += [f"    | {line}" for line in task.last_lines]
    return "\n".join(lines) + "\n"


def email_html(report: RunReport) -> str:
    """The HTML part of an email (every value escaped)."""
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _headline(report))
    rows = "".join(
        f"<tr><td>{e(t.name)}</td><td>{e(t.status)}</td><td>{t.attempts}</td>"
        f"<td>{e(t.duration)}</td><td>{e(t.reason or '')}</td>"
        f"<td><pre>{e(chr(10).join(t.last_lines))}</pre></td></tr>"
        for t in report.tasks
    )
    head = "<tr><th>Task</th><th>Status</th><th>Attempts</th><th>Duration</th>"
    head += "<th>Reason</th><th>Last log lines</th></tr>"
    return (
        f"<html><body><h1>{e(subject(report))}</h1><table>{facts}</table>"
        f'<p><a href="{e(report.link, quote=True)}">Open the run</a></p>'
        f"<table>{head}{rows}</table></body></html>"
    )


def webhook_body(report: RunReport, delivery_id: str) -> bytes:
    """The JSON body of a webhook delivery."""
    tasks = [
        {"task_definition_name": t.name, "status": t.status, "attempts": t.attempts,
         "start_time": _time(t.started_at), "end_time": _time(t.ended_at), "reason": t.reason}
        for t in report.tasks
    ]  # fmt: skip
    document = {
        "type": "test" if report.test else "process.finished",
        "delivery_id": delivery_id,
        "process_definition_name": report.definition,
        "version": report.version,
        "process_id": report.run_id,
        "status": report.status,
        "previous_status": report.previous_status,
        "start_time": _time(report.started_at),
        "end_time": _time(report.ended_at),
        "reason": report.reason,
        "link": report.link,
        "tasks": tasks,
    }
    return json.dumps(document, separators=(",", ":")).encode()
