"""The console's buttons: each a POST form (CSRF-checked, write scope) calling the scheduler,
then back to the page it came from with a message."""

from __future__ import annotations

from flask import Response, flash, g, redirect, request, url_for

from app.console.blueprint import bp
from app.http import name_param, uuid_param
from app.process_definitions import TRIGGER_BODY
from app.state import scheduler

PARAMETER_FIELD = "parameter."  # form fields `parameter.<name>` carry the run's parameters


def actor() -> str:
    """The audit trail's name for the console's user."""
    return g.viewer.name


@bp.post("/definitions/<name>/trigger")
def trigger(name: str) -> Response:
    """Start a run of the whole definition, or of one task, with the parameters filled in."""
    task = request.form.get("task") or None
    parameters = TRIGGER_BODY.load({"parameters": given_parameters()})["parameters"]
    run_id = scheduler().trigger(
        name_param(name), task_name=task, actor=actor(), parameters=parameters
    )
    flash(f"Started run {run_id}" + (f" of task {task}." if task else "."))
    return redirect(url_for("console.run", run_id=run_id))


def given_parameters() -> dict[str, str]:
    """The parameter values of the trigger form, by parameter name."""
    return {
        key.removeprefix(PARAMETER_FIELD): value
        for key, value in request.form.items()
        if key.startswith(PARAMETER_FIELD)
    }


@bp.post("/definitions/<name>/notifications/test")
def test_notifications(name: str) -> Response:
    """Send a marked test message through each of the definition's notifications."""
    results = scheduler().test_notifications(name_param(name), actor=actor())
    for result in results:
        outcome = "sent" if result.state == "sent" else f"failed: {result.last_error}"
        flash(f"Test {result.kind} to {result.target}: {outcome}", result.state)
    if not results:
        flash(f"{name} has no notifications to test.")
    return redirect(url_for("console.definition", name=name, _anchor="notifications"))


@bp.post("/definitions/<name>/pause")
def pause(name: str) -> Response:
    """Stop the definition's schedule."""
    scheduler().set_paused(name_param(name), True, actor=actor())
    flash(f"Paused {name}.")
    return redirect(url_for("console.definition", name=name))


@bp.post("/definitions/<name>/resume")
def resume(name: str) -> Response:
    """Let the definition's schedule fire again."""
    scheduler().set_paused(name_param(name), False, actor=actor())
    flash(f"Resumed {name}.")
    return redirect(url_for("console.definition", name=name))


@bp.post("/definitions/<name>/delete")
def delete(name: str) -> Response:
    """Delete the definition; its runs stay readable."""
    scheduler().delete_definition(name_param(name), actor=actor())
    flash(f"Deleted {name}; its runs stay listed.")
    return redirect(url_for("console.definitions"))


@bp.post("/runs/<run_id>/kill")
def kill(run_id: str) -> Response:
    """Kill a running run."""
    scheduler().kill(uuid_param("process_id", run_id), actor=actor())
    flash("Kill requested: the run's containers are being stopped.")
    return redirect(url_for("console.run", run_id=run_id))


@bp.post("/runs/<run_id>/retry")
def retry(run_id: str) -> Response:
    """Give the run's failed tasks one more attempt."""
    scheduler().retry(uuid_param("process_id", run_id), actor=actor())
    flash("Retrying the failed tasks.")
    return redirect(url_for("console.run", run_id=run_id))
