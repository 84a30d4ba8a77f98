"""The console's pages. Each loads its read model in a few queries and renders it; with
`?partial=1` a page answers only its live part, which the page's script polls."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, render_template, request, session, url_for
from flask import redirect as go_to

from app.auth import credentials
from app.console.blueprint import bp
from app.console.present import (
    ICONS,
    command_text,
    container_options,
    definition_zone,
    duration,
    fire_lag,
    history_svg,
    masked_environment,
    notification_rows,
    run_states,
    seconds_text,
    status_badge,
    utc_text,
    version_diff,
    zoned_text,
)
from app.http import name_param, uuid_param
from app.log_stream import log_stream_response
from definitions import definition_to_json
from definitions.layout import layout
from definitions.wording import describe_schedule
from scheduler import overview, queries
from scheduler.models import db
from scheduler.service import utc_now
from scheduler.views import TaskView

PAGE_SIZE = 50
STATUSES = ("running", "succeeded", "failed")
FILTERS = ("definition", "status")


@bp.app_template_global()
def helpers() -> dict[str, object]:
    """Formatting helpers for the templates."""
    return {
        "icons": ICONS,
        "utc": utc_text,
        "zoned": zoned_text,
        "duration": duration,
        "seconds": seconds_text,
        "schedule": describe_schedule,
        "zone_of": definition_zone,
        "status": status_badge,
        "history": history_svg,
        "fire_lag": fire_lag,
    }


def render(template: str, **values: object) -> str:
    """Render a console template; its live part only when the script asks for it."""
    partial = request.args.get("partial") == "1"
    return render_template(f"console/{template}", partial=partial, now=utc_now(), **values)


@bp.get("/")
def runs() -> str:
    """The newest runs, filtered by definition and status, paged."""
    definition = request.args.get("definition", "").strip() or None
    status = request.args.get("status", "")
    statuses = frozenset({status}) if status in STATUSES else frozenset()
    page = max(0, request.args.get("page", 0, type=int) or 0)
    found = overview.run_page(definition, statuses, page * PAGE_SIZE, PAGE_SIZE)
    return render(
        "runs.html",
        found=found,
        page=page,
        definition=definition or "",
        status=status if statuses else "",
        statuses=STATUSES,
        names=overview.definition_names(),
    )


@bp.app_template_global()
def live_url() -> str:
    """This page's URL asking for its live part only."""
    args = {**request.args.to_dict(), "partial": "1"}
    return url_for(request.endpoint or "console.runs", **(request.view_args or {}), **args)


def page_url(page: int) -> str:
    """The runs page `page` with the current filters."""
    args = {k: request.args[k] for k in FILTERS if request.args.get(k)}
    return url_for("console.runs", page=page, **args) if page else url_for("console.runs", **args)


@bp.app_template_global()
def runs_page_url(page: int) -> str:
    """The URL of another page of runs, same filters."""
    return page_url(page)


@bp.app_template_global()
def definitions_page_url(page: int) -> str:
    """The URL of another page of definitions."""
    return url_for("console.definitions", page=page) if page else url_for("console.definitions")


@bp.get("/definitions")
def definitions() -> str:
    """Definitions by name, a page at a time, each with its schedule, next and last runs,
    and recent history."""
    page = max(0, request.args.get("page", 0, type=int) or 0)
    found = overview.definition_page(page * PAGE_SIZE, PAGE_SIZE)
    return render("definitions.html", found=found, page=page)


@bp.get("/definitions/<name>")
def definition(name: str) -> str:
    """One definition: its DAG, tasks, parameters, notifications, runs and versions (with a
    diff between two)."""
    view = queries.get_definition(name_param(name))
    versions = queries.list_versions(name)[::-1]  # newest first
    numbers = [v.version for v in versions]
    new = request.args.get("to", numbers[0], type=int)
    old = request.args.get("from", numbers[1] if len(numbers) > 1 else numbers[0], type=int)
    diff = []
    if old in numbers and new in numbers and old != new:
        bodies = [definition_to_json(queries.get_version(name, n).definition) for n in (old, new)]
        diff = version_diff(*bodies, f"v{old}", f"v{new}")
    return render(
        "definition.html",
        view=view,
        picture=layout(view.definition),
        environment=masked_environment(view.definition),
        commands={
            t.task_definition_name: command_text(view.definition, t.task_definition_name)
            for t in view.definition.task_definitions
        },
        options={
            t.task_definition_name: container_options(t.executable)
            for t in view.definition.task_definitions
        },
        notifications=notification_rows(view.definition),
        recent=overview.recent_runs(name, 20),
        versions=versions,
        diff=diff,
        old=old,
        new=new,
    )


@bp.get("/runs/<run_id>")
def run(run_id: str) -> str:
    """One run: its DAG coloured by task state, its attempts, and live logs."""
    detail = overview.run_detail(uuid_param("process_id", run_id))
    picture, states = run_states(detail, utc_now())
    wanted = request.args.get("task")
    attempts = detail.run.tasks
    chosen = next((t for t in attempts if t.id == wanted), None) or _default_attempt(attempts)
    return render("run.html", detail=detail, picture=picture, states=states, chosen=chosen)


def _default_attempt(attempts: tuple[TaskView, ...]) -> TaskView | None:
    """The attempt whose log the run page opens with: a running one, else the latest."""
    running = [t for t in attempts if t.status in ("starting", "running")]
    return (running or list(attempts) or [None])[-1]


@bp.get("/tasks/<task_id>/log_stream")
def task_log_stream(task_id: str) -> Response:
    """The attempt's log stream for the console's own session (same as the API's)."""
    return log_stream_response(uuid_param("task_id", task_id))


@bp.get("/tasks/<task_id>/log.txt")
def task_log_download(task_id: str) -> Response:
    """The attempt's whole log as a text file."""
    task_id = uuid_param("task_id", task_id)
    overview.attempt_ended(task_id)  # 404 before the download starts
    response = Response(_log_lines(task_id), mimetype="text/plain")
    response.headers["Content-Disposition"] = f'attachment; filename="{task_id}.log"'
    return response


def _log_lines(task_id: str) -> Iterator[str]:
    """Every log entry of the attempt as `time source: message` lines, read in batches."""
    floor = None
    while True:
        with db.connection_context():
            batch = overview.log_entries_after(task_id, floor, None, (), 1000)
        for cursor, entry in batch.entries:
            yield f"{utc_text(entry.when)} {entry.source}: {entry.message}\n"
            floor = cursor
        if len(batch.entries) < 1000:
            return


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    """Sign in with an API token (only asked when tokens are configured)."""
    target = request.args.get("next", "")
    local = target.startswith("/") and not target.startswith(("//", "/\\"))
    target = target if local else "/"  # only back to this service, never to another host
    problem = None
    if request.method == "POST":
        token = credentials().api_token(request.form.get("token", "").strip())
        if token is not None:
            session.clear()
            session["token_digest"] = token.digest
            return go_to(target)
        problem = "That token is not valid here."
    status = 401 if problem else 200
    return render_template("console/login.html", problem=problem, target=target), status


@bp.post("/logout")
def logout() -> Response:
    """Forget the session's token."""
    session.clear()
    return go_to(url_for("console.login"))
