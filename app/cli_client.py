"""The `gnomon` commands that talk to a running service over its HTTP API.

`register(group)` adds them to the `gnomon` group. Each command reads the
service address and token from `--url`/`--token` or `GNOMON_URL`/`GNOMON_TOKEN`,
prints a table for people or, with `--json`, JSON for scripts, and turns any
error of the service into one `error: ...` line on stderr and exit status 1.
"""

from __future__ import annotations

import difflib
import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from app.client import DEFAULT_URL, Client, ClientError, ServiceError

POLL_SECONDS = 1.0
FINISHED = ("succeeded", "failed")
RUN_STATUSES = ("running", "succeeded", "failed")
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")
APPLY_CONCURRENCY = 4  # PUTs in flight during `apply` to a service without `_apply`
APPLY_BATCH = 200  # definitions in one `_apply` request (the service takes up to 1,000)
APPLY_BATCH_BYTES = 256 * 1024  # and about this much JSON (the service's limit is 1 MiB)

# Values the service fills in when a definition leaves them out (docs/CONTRACT.md
# and definitions/model.py): a key holding its default compares equal to no key.
DEFAULTS: dict[str, Any] = {
    "tag": "latest",
    "log_paths": [],
    "environment_variables": [],
    "overlap_action": "wait",
    "backoff_exponent": 1.0,
    "require_explicit_success": False,
    "success_required": True,
    "notify_when": "on_state_change_and_failures",
    "num_consecutive_failures": 1,
    "api_url": "https://events.pagerduty.com",
    "dependencies": [],
    "max_attempts": 1,
    "backoff_base_seconds": 0,
    "notifications": [],
    "time_zone": "UTC",
    "mounts": [],
    "labels": {},
    "cap_drop": [],
    "parameters": [],
    "default": "",
    "required": False,
    "buffer_seconds": 0,
    "misfire_policy": "run_once",
    "misfire_grace_seconds": 3600,
}
# Defaults that depend on where a key is: a mount is read-only unless it says not, a
# container's root file system is writable unless it says not. Both sides of a comparison
# get them filled in, as the service leaves them out.
PLACED_DEFAULTS: dict[str, dict[str, Any]] = {
    "mounts_item": {"read_only": True},
    "docker_image_command": {"read_only": False},
}
# The top-level keys a definition can hold; anything else the service shows is its own state.
DEFINITION_KEYS = frozenset({
    "process_definition_name", "process_description", "paused", "schedule", "task_definitions",
    "overlap_action", "notifications", "misfire_policy", "misfire_grace_seconds",
    "max_catch_up_runs", "parameters", "retention_days",
})  # fmt: skip


class Failure(click.ClickException):
    """A failure shown as one `error: ...` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        """Print the one line."""
        click.echo(f"error: {self.format_message()}", err=True)


# ---------------------------------------------------------------- text helpers


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time from the wire as an aware datetime, or None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def show_time(value: str | None) -> str:
    """A wire time as `YYYY-MM-DD HH:MM:SSZ` (UTC), or '-'."""
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def show_seconds(seconds: float) -> str:
    """A duration as `4.2s`, `3m05s` or `2h07m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def show_duration(start: str | None, end: str | None, now: datetime) -> str:
    """How long from `start` to `end` (or to `now` while running), or '-'."""
    began = parse_time(start)
    if began is None:
        return "-"
    return show_seconds(max(0.0, ((parse_time(end) or now) - began).total_seconds()))


def show_schedule(definition: dict[str, Any]) -> str:
    """A definition's schedule in one short phrase."""
    schedule = definition.get("schedule") or {}
    if "cron_schedule" in schedule:
        cron = schedule["cron_schedule"]
        parts = ("minutes", "hours", "day_of_month", "month", "day_of_week")
        text = " ".join(str(cron.get(part, "*")) for part in parts)
        zone = cron.get("time_zone") or "UTC"
        return text if zone == "UTC" else f"{text} ({zone})"
    if "continuous_schedule" in schedule:
        buffer = (schedule["continuous_schedule"] or {}).get("buffer_seconds") or 0
        return f"continuous, {buffer}s apart"
    return "manual"


def cell(value: Any) -> str:
    """A table cell: '-' for nothing, `yes`/`no` for booleans, else the text on one line."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows under headers in left-aligned columns two spaces apart."""
    lines = [list(headers)] + [[cell(value) for value in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    rendered = [
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    rendered[0] = click.style(rendered[0], bold=True)
    return "\n".join(rendered)


def emit_json(value: Any) -> None:
    """Print `value` as indented JSON."""
    click.echo(json.dumps(value, indent=2, sort_keys=True))


# ---------------------------------------------------------------- command plumbing

ClientCommand = Callable[..., None]


def service_command(name: str) -> Callable[[ClientCommand], click.Command]:
    """A click command called `name` that receives a `Client` and the `--json` flag.

    It gains `--url`, `--token` and `--json`; a `ClientError` becomes a `Failure`.
    """

    def decorate(function: ClientCommand) -> click.Command:
        @functools.wraps(function)
        def run(url: str, token: str | None, as_json: bool, **kwargs: Any) -> None:
            client = Client(url, token)
            try:
                function(client, as_json, **kwargs)
            except ClientError as error:
                raise Failure(str(error)) from error
            finally:
                client.close()

        command = click.command(name)(run)
        command.params.extend(connection_options())  # after the command's own options
        return command

    return decorate


def connection_options() -> list[click.Option]:
    """`--url`, `--token` and `--json`, which every service command takes."""
    return [
        click.Option(["--url"], envvar="GNOMON_URL", default=DEFAULT_URL, show_default=True,
                     help="Base URL of the Gnomon service [GNOMON_URL]."),
        click.Option(["--token"], envvar="GNOMON_TOKEN", default=None,
                     help="API token sent as a bearer token [GNOMON_TOKEN]."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON for scripts."),
    ]  # fmt: skip


def done(as_json: bool, action: str, **subject: str) -> None:
    """Report a finished action: `paused nightly`, or its JSON form."""
    if as_json:
        emit_json({"action": action, **subject})
    else:
        click.echo(f"{action} {' '.join(subject.values())}")


# ---------------------------------------------------------------- definitions as code


@dataclass(frozen=True)
class Change:
    """What `apply` does with one definition: created, changed, unchanged or deleted."""

    name: str
    action: str
    source: str
    diff: str = ""


def definition_files(path: Path) -> list[Path]:
    """`path` itself, or every YAML and JSON file under the directory `path`, sorted."""
    if path.is_dir():
        found = (p for p in path.rglob("*") if p.suffix in DEFINITION_SUFFIXES and p.is_file())
        return sorted(found)
    return [path]


def parse_documents(path: Path) -> list[Any]:
    """The documents in one file: JSON for `.json`, else (multi-document) YAML."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return [json.loads(text)]
        return list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError) as error:
        raise Failure(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {error}") from None


def definitions_in(path: Path) -> list[dict[str, Any]]:
    """The definitions of one file: each document is a definition, a list of them, or empty."""
    found: list[dict[str, Any]] = []
    for document in parse_documents(path):
        items = document if isinstance(document, list) else [document] if document else []
        for item in items:
            if not isinstance(item, dict) or not isinstance(
                item.get("process_definition_name"), str
            ):
                raise Failure(f"{path}: every definition needs a process_definition_name")
            found.append(item)
    return found


def load_definitions(paths: Sequence[Path]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every definition in `paths` by name, with the file it came from; names must be unique."""
    loaded: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in (file for given in paths for file in definition_files(given)):
        for definition in definitions_in(path):
            name = definition["process_definition_name"]
            if name in loaded:
                raise Failure(f"{name!r} is defined twice: in {loaded[name][0]} and in {path}")
            loaded[name] = (str(path), definition)
    return loaded


def is_default(key: str | None, value: Any) -> bool:
    """Whether `value` is what the service fills in for a missing `key`."""
    if key not in DEFAULTS:
        return False
    default = DEFAULTS[key]
    return value == default and isinstance(value, bool) == isinstance(default, bool)


def normalize(value: Any, key: str | None = None) -> Any:
    """`value` without nulls and defaults, tasks and dependencies in name order."""
    if isinstance(value, dict):
        if key == "notifications_item" and isinstance(value.get("email"), str):
            value = {"email": value}  # the bare email form Sundial's docs use
        value = {**PLACED_DEFAULTS.get(str(key), {}), **value}
        pairs = ((k, normalize(v, k)) for k, v in value.items())
        return {k: v for k, v in pairs if v is not None and not is_default(k, v)}
    if isinstance(value, list):
        items = [normalize(item, f"{key}_item") for item in value]
        if key in ("task_definitions", "dependencies"):
            items.sort(key=lambda item: str(item.get("task_definition_name", "")))
        return items
    return value


def comparable(definition: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The parts of `definition` that `apply` compares, keeping only top-level `keys`."""
    return normalize({k: v for k, v in definition.items() if k in keys})


def compared_keys(wanted: dict[str, Any]) -> frozenset[str]:
    """The top-level keys to compare; `paused` only when the file sets it."""
    keys = DEFINITION_KEYS | wanted.keys()
    return keys if "paused" in wanted else keys - {"paused"}


def as_yaml(definition: dict[str, Any]) -> list[str]:
    """A definition as YAML lines, keys sorted, for a diff."""
    return yaml.safe_dump(definition, sort_keys=True, allow_unicode=True).splitlines()


def yaml_pair(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """`as_yaml` of both sides, a top-level value they share dumped once: a block
    mapping's YAML is the YAML of each of its keys in turn (a change is often small)."""
    if not before or not after:
        return as_yaml(before), as_yaml(after)
    shared = {key: as_yaml({key: value}) for key, value in before.items()
              if key in after and after[key] == value}  # fmt: skip

    def lines(definition: dict[str, Any]) -> list[str]:
        return [
            line
            for key in sorted(definition)
            for line in shared.get(key) or as_yaml({key: definition[key]})
        ]

    return lines(before), lines(after)


def plan_change(source: str, wanted: dict[str, Any], current: dict[str, Any] | None) -> Change:
    """Compare a file's definition with the service's (None if absent): what `apply` should do."""
    name = wanted["process_definition_name"]
    if current is None:
        return Change(name, "created", source)
    keys = compared_keys(wanted)
    before, after = comparable(current, keys), comparable(wanted, keys)
    if before == after:
        return Change(name, "unchanged", source)
    diff = difflib.unified_diff(
        *yaml_pair(before, after), f"{name} (service)", f"{name} ({source})", lineterm=""
    )
    return Change(name, "changed", source, "\n".join(diff))


def show_diff(diff: str) -> None:
    """Print a unified diff indented, additions green and removals red on a terminal."""
    colours = {"+": "green", "-": "red", "@": "cyan"}
    for line in diff.splitlines():
        colour = None if line.startswith(("+++", "---")) else colours.get(line[:1])
        click.echo(click.style(f"    {line}", fg=colour))


def show_change(change: Change, dry_run: bool) -> None:
    """One line for a planned or made change, and its diff."""
    suffix = " (dry run)" if dry_run and change.action != "unchanged" else ""
    click.echo(f"{change.action:<9} {change.name}{suffix}")
    if change.diff:
        show_diff(change.diff)


def put_all(client: Client, definitions: Sequence[dict[str, Any]]) -> None:
    """PUT `definitions`, APPLY_CONCURRENCY at a time (one connection each); the first
    failure stops what has not started and is raised."""
    local = threading.local()

    def put(definition: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = client.copy()
        local.client.put_definition(definition)

    with ThreadPoolExecutor(APPLY_CONCURRENCY) as pool:
        futures = [pool.submit(put, definition) for definition in definitions]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()


def batches(definitions: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`definitions` in order, in lists of at most APPLY_BATCH and about APPLY_BATCH_BYTES
    of JSON (a larger definition alone)."""
    found: list[list[dict[str, Any]]] = []
    size = 0
    for definition in definitions:
        length = len(json.dumps(definition))
        if not found or len(found[-1]) == APPLY_BATCH or size + length > APPLY_BATCH_BYTES:
            found.append([])
            size = 0
        found[-1].append(definition)
        size += length
    return found


def send_all(client: Client, definitions: Sequence[dict[str, Any]]) -> None:
    """Create or replace `definitions` in batches, each stored all or none; the first
    refused batch stops the rest and is raised. A batch that a service older than `_apply`
    (404, 405) or with a smaller body limit (413) refuses is sent a PUT a definition."""
    for batch in batches(definitions):
        try:
            client.apply_definitions(batch)
        except ServiceError as error:
            if error.status not in (404, 405, 413):
                raise
            put_all(client, batch)


def prune(
    client: Client, current: Iterable[str], keep: Iterable[str], dry_run: bool
) -> list[Change]:
    """Delete every definition named in `current` (on the service) whose name is not in `keep`."""
    names = sorted(set(current) - set(keep))
    if not dry_run:
        for name in names:
            client.delete_definition(name)
    return [Change(name, "deleted", "service") for name in names]


def summary(changes: Sequence[Change], dry_run: bool) -> str:
    """`2 created, 1 changed, 3 unchanged, 0 deleted`, noting a dry run."""
    counts = {action: 0 for action in ("created", "changed", "unchanged", "deleted")}
    for change in changes:
        counts[change.action] += 1
    text = ", ".join(f"{count} {action}" for action, count in counts.items())
    return f"{text} (dry run: nothing was sent)" if dry_run else text


@service_command("apply")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A YAML or JSON file of definitions, or a directory of them; repeatable.",
)
@click.option(
    "--prune",
    "prune_others",
    is_flag=True,
    help="Delete the definitions on the service that the files do not hold.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; send no writes.")
def apply_command(
    client: Client, as_json: bool, paths: tuple[Path, ...], prune_others: bool, dry_run: bool
) -> None:
    """Create or update definitions from files, showing what changed."""
    wanted = load_definitions(paths)
    current = {d["process_definition_name"]: d for d in client.definitions()}
    changes = [
        plan_change(source, definition, current.get(name))
        for name, (source, definition) in wanted.items()
    ]
    if not dry_run:
        send_all(client, [wanted[c.name][1] for c in changes if c.action != "unchanged"])
    if prune_others:
        changes.extend(prune(client, current, wanted, dry_run))
    if as_json:
        emit_json({"dry_run": dry_run, "changes": [asdict(change) for change in changes]})
        return
    for change in changes:
        show_change(change, dry_run)
    click.echo(summary(changes, dry_run))


# ---------------------------------------------------------------- definitions


def definition_row(client: Client, definition: dict[str, Any]) -> dict[str, Any]:
    """What `gnomon definitions` shows of one definition, with its newest run's status."""
    name = definition["process_definition_name"]
    newest = client.processes(name, limit=1)
    return {
        "process_definition_name": name,
        "schedule": definition.get("schedule"),
        "next_fire_at": definition.get("next_fire_at"),
        "paused": bool(definition.get("paused")),
        "last_status": newest[0]["status"] if newest else None,
        "last_process_id": newest[0]["process_id"] if newest else None,
    }


@service_command("definitions")
def definitions_command(client: Client, as_json: bool) -> None:
    """List definitions: schedule, next run, paused, status of the newest run."""
    rows = [definition_row(client, d) for d in client.definitions()]
    if as_json:
        emit_json(rows)
        return
    headers = ("NAME", "SCHEDULE", "NEXT RUN", "PAUSED", "LAST STATUS")
    click.echo(table(headers, [
        [r["process_definition_name"], show_schedule(r), show_time(r["next_fire_at"]),
         r["paused"], r["last_status"]]
        for r in rows
    ]))  # fmt: skip


@service_command("pause")
@click.argument("name")
def pause_command(client: Client, as_json: bool, name: str) -> None:
    """Stop a definition's schedule firing (manual triggers still work)."""
    client.pause(name)
    done(as_json, "paused", process_definition_name=name)


@service_command("resume")
@click.argument("name")
def resume_command(client: Client, as_json: bool, name: str) -> None:
    """Let a paused definition's schedule fire again."""
    client.resume(name)
    done(as_json, "resumed", process_definition_name=name)


@service_command("delete")
@click.argument("name")
def delete_command(client: Client, as_json: bool, name: str) -> None:
    """Delete a definition; the history of its runs stays readable."""
    client.delete_definition(name)
    done(as_json, "deleted", process_definition_name=name)


# ---------------------------------------------------------------- runs


def attempt_of(task: dict[str, Any]) -> int:
    """A task attempt's 1-based number."""
    return int(task.get("attempt") or task.get("previous_attempt_count", 0) + 1)


def task_rows(process: dict[str, Any], now: datetime) -> list[list[Any]]:
    """The rows of a run's task table, in start order."""
    tasks = sorted(process.get("task", []), key=lambda t: (t.get("start_time") or "", t["task_id"]))
    return [
        [
            task["task_definition_name"],
            attempt_of(task),
            task["status"],
            show_time(task.get("start_time")),
            show_duration(task.get("start_time"), task.get("end_time"), now)
            if task["status"] != "submitted" else "-",
            task.get("exit_code"),
            task.get("reason"),
            task["task_id"],
        ]
        for task in tasks
    ]  # fmt: skip


TASK_HEADERS = ("TASK", "ATTEMPT", "STATUS", "STARTED", "DURATION", "EXIT", "REASON", "TASK ID")


def run_summary(process: dict[str, Any], now: datetime) -> list[str]:
    """The heading lines of `gnomon run`: status, trigger, times and reason."""
    lines = [
        f"run         {process['process_id']}",
        f"definition  {process['process_definition_name']}",
        f"status      {process['status']}",
        f"trigger     {cell(process.get('trigger'))}",
        f"started     {show_time(process.get('start_time'))}",
        f"ended       {show_time(process.get('end_time'))}",
        f"duration    {show_duration(process.get('start_time'), process.get('end_time'), now)}",
    ]
    if process.get("reason"):
        lines.append(f"reason      {cell(process['reason'])}")
    return lines


def metadata_rows(process: dict[str, Any]) -> list[list[Any]]:
    """Every metadata entry the run's tasks reported: task, attempt, key, value."""
    return [
        [task["task_definition_name"], attempt_of(task), entry["key"], entry["value"]]
        for task in process.get("task", [])
        for entry in task.get("metadata_entries", [])
    ]


def show_run(process: dict[str, Any], now: datetime) -> None:
    """Print a run: its summary, its task attempts and their metadata."""
    click.echo("\n".join(run_summary(process, now)))
    click.echo()
    click.echo(table(TASK_HEADERS, task_rows(process, now)))
    metadata = metadata_rows(process)
    if metadata:
        click.echo()
        click.echo(table(("TASK", "ATTEMPT", "KEY", "VALUE"), metadata))


def version_diffs(client: Client, name: str, versions: Sequence[dict[str, Any]]) -> list[str]:
    """The unified diff (YAML) of each version against the one before it."""
    bodies = [client.version(name, v["version"])["process_definition"] for v in versions]
    diffs = []
    for before, after, version in zip([{}, *bodies], bodies, versions, strict=False):
        number = version["version"]
        lines = difflib.unified_diff(
            as_yaml(before) if before else [], as_yaml(after),
            f"{name} v{number - 1}" if before else "/dev/null", f"{name} v{number}", lineterm="",
        )  # fmt: skip
        diffs.append("\n".join(lines))
    return diffs


@service_command("history")
@click.argument("name")
def history_command(client: Client, as_json: bool, name: str) -> None:
    """Show every version of a definition (who, when) and what each changed."""
    versions = client.versions(name)
    diffs = version_diffs(client, name, versions)
    if as_json:
        emit_json([{**v, "diff": d} for v, d in zip(versions, diffs, strict=True)])
        return
    for version, diff in zip(versions, diffs, strict=True):
        who = version.get("created_by") or "-"
        click.echo(f"version {version['version']}  {show_time(version['created_at'])}  {who}")
        show_diff(diff)


@service_command("audit")
@click.option("--actor", help="Only events by this actor (a token's name).")
@click.option("--target", help="Only events on this target (a definition name or run id).")
@click.option("--since", help="Only events at or after this ISO-8601 time.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most events."
)
def audit_command(
    client: Client,
    as_json: bool,
    actor: str | None,
    target: str | None,
    since: str | None,
    limit: int,
) -> None:
    """List audit events (changes, triggers, kills, retries), newest first."""
    events = client.audit(actor=actor, target=target, since=since, limit=limit)
    if as_json:
        emit_json(events)
        return
    rows = [
        [show_time(e["at"]), e["actor"], e["action"], e["target"], e.get("detail")] for e in events
    ]
    click.echo(table(("AT", "ACTOR", "ACTION", "TARGET", "DETAIL"), rows))


@service_command("runs")
@click.argument("name", required=False)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status; repeatable.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most runs to show."
)
def runs_command(
    client: Client, as_json: bool, name: str | None, statuses: tuple[str, ...], limit: int
) -> None:
    """List runs, newest first, optionally of one definition."""
    processes = client.processes(name, statuses, limit)
    if as_json:
        emit_json(processes)
        return
    now = datetime.now(UTC)
    headers = ("RUN ID", "DEFINITION", "STATUS", "TRIGGER", "STARTED", "DURATION")
    rows = [
        [p["process_id"], p["process_definition_name"], p["status"], p.get("trigger"),
         show_time(p.get("start_time")), show_duration(p.get("start_time"), p.get("end_time"), now)]
        for p in processes
    ]  # fmt: skip
    click.echo(table(headers, rows))


@service_command("run")
@click.argument("process_id")
def run_command(client: Client, as_json: bool, process_id: str) -> None:
    """Show one run: its task attempts, durations, exit codes, reasons and metadata."""
    process = client.process(process_id)
    if as_json:
        emit_json(process)
    else:
        show_run(process, datetime.now(UTC))


@service_command("kill")
@click.argument("process_id")
def kill_command(client: Client, as_json: bool, process_id: str) -> None:
    """Kill a running run: its containers are stopped and it fails."""
    client.kill(process_id)
    done(as_json, "killed", process_id=process_id)


@service_command("retry")
@click.argument("process_id")
def retry_command(client: Client, as_json: bool, process_id: str) -> None:
    """Give each failed task of a failed run one more attempt."""
    client.retry(process_id)
    done(as_json, "retried", process_id=process_id)


@service_command("notify-test")
@click.argument("name")
def notify_test_command(client: Client, as_json: bool, name: str) -> None:
    """Send a marked test message through every notification of NAME; exit 1 if any failed."""
    results = client.test_notifications(name)
    if as_json:
        emit_json(results)
    elif results:
        rows = [[r["kind"], r["target"], r["state"], r.get("last_error")] for r in results]
        click.echo(table(["KIND", "TARGET", "RESULT", "ERROR"], rows))
    else:
        click.echo(f"{name} has no notifications")
    failed = sum(r["state"] != "sent" for r in results)
    if failed:
        raise Failure(f"{failed} of {len(results)} test notification(s) failed")


# ---------------------------------------------------------------- trigger --wait


class RunWatcher:
    """Shows a run's progress: a redrawn table on a terminal, appended lines elsewhere."""

    def __init__(self, redraw: bool) -> None:
        self.redraw = redraw
        self.drawn_lines = 0
        self.seen: dict[str, tuple[str, Any]] = {}

    def update(self, process: dict[str, Any], now: datetime) -> None:
        """Show the run as it is now."""
        if self.redraw:
            self.draw(process, now)
        else:
            self.append_changes(process, now)

    def draw(self, process: dict[str, Any], now: datetime) -> None:
        """Replace the previous table with the current one."""
        heading = f"run {process['process_id']}  {process['status']}"
        text = heading + "\n" + table(TASK_HEADERS[:-1], [r[:-1] for r in task_rows(process, now)])
        if self.drawn_lines:  # cursor up N lines, clear below; redraw runs only on a terminal
            click.echo(f"\x1b[{self.drawn_lines}F\x1b[J", nl=False, color=True)
        click.echo(text, color=True)
        self.drawn_lines = text.count("\n") + 1

    def append_changes(self, process: dict[str, Any], now: datetime) -> None:
        """Print one line per task attempt whose status changed since the last update."""
        for task in sorted(process.get("task", []), key=lambda t: t.get("start_time") or ""):
            state = (task["status"], task.get("reason"))
            if self.seen.get(task["task_id"]) != state:
                self.seen[task["task_id"]] = state
                reason = f" ({task['reason']})" if task.get("reason") else ""
                click.echo(
                    f"{now:%H:%M:%S}  {task['task_definition_name']}  "
                    f"attempt {attempt_of(task)}  {task['status']}{reason}"
                )


def wait_for_run(client: Client, process_id: str, watcher: RunWatcher | None) -> dict[str, Any]:
    """Poll a run until it has finished, showing it on `watcher`; the finished run."""
    while True:
        process = client.process(process_id)
        if watcher is not None:
            watcher.update(process, datetime.now(UTC))
        if process["status"] in FINISHED:
            return process
        time.sleep(POLL_SECONDS)


def parse_parameters(values: Sequence[str]) -> dict[str, str]:
    """`key=value` options as a mapping; a usage error names one without `=`."""
    parameters: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not key=value", param_hint="-p/--param")
        parameters[key] = text
    return parameters


@service_command("trigger")
@click.argument("name")
@click.option("--task", "task_name", help="Run only this task, ignoring its dependencies.")
@click.option(
    "--wait", is_flag=True, help="Follow the run until it ends; exit status 0 only if it succeeded."
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    callback=lambda _context, _option, values: parse_parameters(values),
    help="A run parameter as key=value (repeatable).",
)
def trigger_command(
    client: Client,
    as_json: bool,
    name: str,
    task_name: str | None,
    wait: bool,
    params: dict[str, str],
) -> None:
    """Start a run of a definition now (even when paused)."""
    process_id = client.trigger(name, task_name, params)
    if not wait:
        done(as_json, "started", process_id=process_id)
        return
    watcher = None if as_json else RunWatcher(redraw=sys.stdout.isatty())
    process = wait_for_run(client, process_id, watcher)
    if as_json:
        emit_json(process)
    else:
        elapsed = show_duration(
            process.get("start_time"), process.get("end_time"), datetime.now(UTC)
        )
        click.echo(f"run {process_id} {process['status']} after {elapsed}")
    if process["status"] != "succeeded":
        sys.exit(1)


# ---------------------------------------------------------------- logs


def show_entry(entry: dict[str, Any], as_json: bool) -> None:
    """Print one log entry: time, source, message; or a JSON line."""
    if as_json:
        click.echo(json.dumps(entry, sort_keys=True))
    else:
        click.echo(f"{show_time(entry.get('when'))} {entry.get('source', '-')}: {entry['message']}")


def show_entries(task: dict[str, Any], as_json: bool) -> None:
    """Print the task's log entries, oldest first."""
    for entry in sorted(task.get("log_entries", []), key=lambda e: e.get("when") or ""):
        show_entry(entry, as_json)


@service_command("logs")
@click.argument("task_id")
@click.option(
    "-f", "--follow", is_flag=True,
    help="Print entries as they are stored (over the log stream) until the task ends.",
)  # fmt: skip
def logs_command(client: Client, as_json: bool, task_id: str, follow: bool) -> None:
    """Print a task attempt's log entries (with --json, one JSON object a line)."""
    task = client.task(task_id)
    if task is None:
        raise Failure(f"No task {task_id!r}.")
    if not follow:
        show_entries(task, as_json)
        return
    for entry in client.log_stream(task["task_id"]):
        show_entry(entry, as_json)


COMMANDS = (
    apply_command, definitions_command, pause_command, resume_command, delete_command,
    trigger_command, runs_command, run_command, logs_command, kill_command, retry_command,
    notify_test_command,
    history_command, audit_command,
)  # fmt: skip


def register(group: click.Group) -> None:
    """Add the service commands to the `gnomon` group."""
    for command in COMMANDS:
        group.add_command(command)
