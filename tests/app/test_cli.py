"""The `gnomon` service commands: against a live service, and against a scripted stub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from app import cli_client
from app.cli_client import RunWatcher, register
from tests.support.live import free_port

RUN_ID = "6f1c2a52-5a53-4d55-9c2e-0d1c2f4b7e11"
TASK_ID = "0c5e7d0e-3b7a-4a4e-9a0b-2f1f3c1d2e3f"


@pytest.fixture
def gnomon() -> click.Group:
    """A `gnomon` group holding the service commands."""
    group = click.Group("gnomon")
    register(group)
    return group


def invoke(group: click.Group, url: str, *args: str, **env: str) -> Result:
    """Run `gnomon ARGS` against the service at `url`."""
    return CliRunner().invoke(group, list(args), env={"GNOMON_URL": url, **env})


# ---------------------------------------------------------------- a live service


@dataclass
class Service:
    """A live service's URL, and a test client of the same app to set the scene quickly."""

    url: str
    client: FlaskClient

    def put(self, body: dict[str, Any]) -> None:
        """Register a definition."""
        name = body["process_definition_name"]
        response = self.client.put(f"/api/process_definitions/{name}", json=body)
        assert response.status_code in (200, 201), response.get_json()

    def get(self, path: str) -> Any:
        """The JSON answer of GET `path`."""
        return self.client.get(path).get_json()

    def trigger(self, name: str) -> str:
        """Start a run of `name`; its id."""
        response = self.client.post(f"/api/process_definitions/{name}/trigger")
        return response.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture
def service(app: Flask, client: FlaskClient) -> Iterator[Service]:
    """The test app (fake executor, no scheduler loop) served over HTTP on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="cli-live", daemon=True
    )
    thread.start()
    yield Service(f"http://127.0.0.1:{server.server_port}", client)
    server.shutdown()
    server.server_close()
    thread.join()


def job(name: str, hours: str = "3", **extra: Any) -> dict[str, Any]:
    """A two-task definition in the form a person writes it."""
    return {
        "process_definition_name": name,
        "schedule": {"cron_schedule": {
            "minutes": "0", "hours": hours, "day_of_month": "*", "month": "*", "day_of_week": "?",
        }},
        "task_definitions": [
            {"task_definition_name": "extract",
             "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}}},
            {"task_definition_name": "load", "dependencies": [{"task_definition_name": "extract"}],
             "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}}},
        ],
        **extra,
    }  # fmt: skip


def write_jobs(folder: Path, *bodies: dict[str, Any]) -> Path:
    """Write each definition to its own YAML file in `folder`."""
    folder.mkdir(exist_ok=True)
    for body in bodies:
        path = folder / f"{body['process_definition_name']}.yaml"
        path.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML too
    return folder


def names_on(service: Service) -> list[str]:
    """The names of the definitions the service holds."""
    return [d["process_definition_name"] for d in service.get("/api/process_definitions")]


def test_apply_creates_then_reports_unchanged(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    folder = write_jobs(tmp_path / "jobs", job("nightly"), job("hourly", hours="*"))
    first = invoke(gnomon, service.url, "apply", "-f", str(folder))
    assert first.exit_code == 0, first.output
    assert "created   hourly" in first.stdout and "created   nightly" in first.stdout
    again = invoke(gnomon, service.url, "apply", "-f", str(folder))
    assert again.stdout.splitlines() == [
        "unchanged hourly",
        "unchanged nightly",
        "0 created, 0 changed, 2 unchanged, 0 deleted",
    ]


def test_apply_sends_batches_each_stored_whole(
    gnomon: click.Group, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_client, "APPLY_BATCH", 2)
    names = [f"job-{i}" for i in range(5)]
    folder = write_jobs(tmp_path / "jobs", *(job(name) for name in names))
    result = invoke(gnomon, service.url, "apply", "-f", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *(f"created   {name}" for name in names),
        "5 created, 0 changed, 0 unchanged, 0 deleted",
    ]
    assert names_on(service) == names
    assert [len(batch) for batch in cli_client.batches([job(n) for n in names])] == [2, 2, 1]


def test_apply_shows_a_diff_and_updates_the_service(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    service.put(job("nightly"))
    folder = write_jobs(tmp_path / "jobs", job("nightly", hours="4"))
    result = invoke(gnomon, service.url, "apply", "-f", str(folder))
    assert result.exit_code == 0, result.output
    assert "changed   nightly" in result.stdout
    assert "    -    hours: '3'" in result.stdout and "    +    hours: '4'" in result.stdout
    stored = service.get("/api/process_definitions/nightly")
    assert stored["schedule"]["cron_schedule"]["hours"] == "4"


def test_apply_dry_run_sends_no_writes(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    service.put(job("old"))
    service.put(job("nightly"))
    folder = write_jobs(tmp_path / "jobs", job("nightly", hours="4"), job("new"))
    result = invoke(gnomon, service.url, "apply", "-f", str(folder), "--prune", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "changed   nightly (dry run)" in result.stdout
    assert "created   new (dry run)" in result.stdout
    assert "deleted   old (dry run)" in result.stdout
    assert sorted(names_on(service)) == ["nightly", "old"]
    stored = service.get("/api/process_definitions/nightly")
    assert stored["schedule"]["cron_schedule"]["hours"] == "3"


def test_apply_prune_deletes_what_the_files_lack(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    service.put(job("old"))
    folder = write_jobs(tmp_path / "jobs", job("nightly"))
    result = invoke(gnomon, service.url, "apply", "-f", str(folder), "--prune", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(c["name"], c["action"]) for c in report["changes"]] == [
        ("nightly", "created"),
        ("old", "deleted"),
    ]
    assert names_on(service) == ["nightly"]


def test_apply_keeps_a_pause_made_with_gnomon_pause(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    folder = write_jobs(tmp_path / "jobs", job("nightly"))
    invoke(gnomon, service.url, "apply", "-f", str(folder))
    invoke(gnomon, service.url, "pause", "nightly")
    result = invoke(gnomon, service.url, "apply", "-f", str(folder))
    assert "unchanged nightly" in result.stdout
    assert service.get("/api/process_definitions/nightly")["paused"] is True


def test_apply_shows_the_service_s_validation_error_on_one_line(
    gnomon: click.Group, service: Service, tmp_path: Path
) -> None:
    body = job("broken")
    body["task_definitions"][0]["max_attempts"] = 0
    result = invoke(gnomon, service.url, "apply", "-f", str(write_jobs(tmp_path / "j", body)))
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "task_definitions.0.max_attempts" in line


def test_definitions_lists_schedule_pause_and_last_status(
    gnomon: click.Group, service: Service
) -> None:
    service.put(job("nightly"))
    service.put(job("manual", schedule=None))
    assert invoke(gnomon, service.url, "pause", "nightly").stdout == "paused nightly\n"
    run_id = service.trigger("nightly")
    result = invoke(gnomon, service.url, "definitions")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "NEXT", "RUN", "PAUSED", "LAST", "STATUS"]
    assert rows[0].split() == ["manual", "manual", "-", "no", "-"]
    assert rows[1].split() == ["nightly", "0", "3", "*", "*", "?", "-", "yes", "running"]
    rows_json = json.loads(invoke(gnomon, service.url, "definitions", "--json").stdout)
    assert rows_json[1]["last_process_id"] == run_id and rows_json[1]["paused"] is True
    assert invoke(gnomon, service.url, "resume", "nightly").stdout == "resumed nightly\n"
    assert service.get("/api/process_definitions/nightly")["paused"] is False


def test_delete_and_the_404_after_it(gnomon: click.Group, service: Service) -> None:
    service.put(job("nightly"))
    assert invoke(gnomon, service.url, "delete", "nightly").stdout == "deleted nightly\n"
    again = invoke(gnomon, service.url, "delete", "nightly")
    assert again.exit_code == 1
    assert again.stderr == "error: No process definition 'nightly'.\n"


def test_trigger_runs_and_run_show_the_new_run(gnomon: click.Group, service: Service) -> None:
    service.put(job("nightly"))
    started = invoke(gnomon, service.url, "trigger", "nightly", "--json")
    run_id = json.loads(started.stdout)["process_id"]
    runs = invoke(gnomon, service.url, "runs", "nightly", "--status", "running", "--limit", "5")
    assert runs.exit_code == 0, runs.output
    assert runs.stdout.splitlines()[1].split()[:3] == [run_id, "nightly", "running"]
    assert invoke(gnomon, service.url, "runs", "--status", "failed").stdout.count("\n") == 1
    shown = invoke(gnomon, service.url, "run", run_id)
    assert shown.exit_code == 0, shown.output
    assert f"run         {run_id}" in shown.stdout
    assert any(line.startswith("extract  1 ") for line in shown.stdout.splitlines())
    as_json = json.loads(invoke(gnomon, service.url, "run", run_id, "--json").stdout)
    assert as_json["process_id"] == run_id


def test_kill_and_retry(gnomon: click.Group, service: Service) -> None:
    service.put(job("nightly"))
    run_id = service.trigger("nightly")
    retried = invoke(gnomon, service.url, "retry", run_id)
    assert retried.exit_code == 1 and retried.stderr.startswith("error: ")
    assert retried.stderr.count("\n") == 1
    killed = invoke(gnomon, service.url, "kill", run_id, "--json")
    assert json.loads(killed.stdout) == {"action": "killed", "process_id": run_id}


def test_a_malformed_id_shows_the_field_problem(gnomon: click.Group, service: Service) -> None:
    result = invoke(gnomon, service.url, "run", "not-a-uuid")
    assert result.exit_code == 1
    assert result.stderr == "error: process_id must be a UUID. (process_id: Not a valid UUID.)\n"


def test_triggering_an_unknown_task_is_a_404(gnomon: click.Group, service: Service) -> None:
    service.put(job("nightly"))
    result = invoke(gnomon, service.url, "trigger", "nightly", "--task", "nope")
    assert result.exit_code == 1 and "nope" in result.stderr


def test_an_unreachable_service_is_one_line(gnomon: click.Group) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke(gnomon, url, "definitions")
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot reach the service at {url}: Connection refused\n"


# ---------------------------------------------------------------- a scripted stub


class Stub:
    """A scripted HTTP service: each route answers its list of replies in turn, then the last."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []

    def on(self, method: str, path: str, *replies: Any, status: int = 200, **headers: str) -> None:
        """Answer `method path` with `replies` (JSON bodies) in turn."""
        self.routes[(method, path)] = [(status, reply, headers) for reply in replies]

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Record the request and send the next scripted reply (404 if none)."""
        url = urlsplit(handler.path)
        self.requests.append(
            (handler.command, url.path, parse_qs(url.query), dict(handler.headers))
        )
        replies = self.routes.get((handler.command, url.path), [(404, {"message": "?"}, {})])
        status, body, headers = replies.pop(0) if len(replies) > 1 else replies[0]
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stub, str]]:
    """A stub service on a free loopback port, and its URL; polling is made fast."""
    monkeypatch.setattr(cli_client, "POLL_SECONDS", 0.01)
    script = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """Answer from the script."""
            script.answer(self)

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield script, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_apply_to_a_service_without_apply_sends_puts(
    gnomon: click.Group, stub: tuple[Stub, str], tmp_path: Path
) -> None:
    script, url = stub
    script.on("GET", "/api/process_definitions", [])
    script.on("POST", "/api/process_definitions/_apply", {"message": "no"}, status=405)
    script.on("PUT", "/api/process_definitions/nightly", job("nightly"), status=201)
    result = invoke(gnomon, url, "apply", "-f", str(write_jobs(tmp_path / "j", job("nightly"))))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "created   nightly"
    assert [r[:2] for r in script.requests][-2:] == [
        ("POST", "/api/process_definitions/_apply"),
        ("PUT", "/api/process_definitions/nightly"),
    ]


def process(status: str, *tasks: dict[str, Any]) -> dict[str, Any]:
    """A run in wire form."""
    end = "2030-01-01T00:00:09.000Z" if status != "running" else None
    return {"process_id": RUN_ID, "process_definition_name": "nightly", "status": status,
            "start_time": "2030-01-01T00:00:00.000Z", "end_time": end, "trigger": "manual",
            "task": list(tasks)}  # fmt: skip


def attempt(status: str, *messages: str, reason: str | None = None) -> dict[str, Any]:
    """A task attempt in wire form with log entries `messages`."""
    entries = [
        {"log_entry_id": f"00000000-0000-4000-8000-{i:012d}", "message": m, "source": "stdout",
         "when": f"2030-01-01T00:00:0{i}.000Z"}
        for i, m in enumerate(messages)
    ]  # fmt: skip
    return {"task_id": TASK_ID, "process_id": RUN_ID, "task_definition_name": "extract",
            "process_definition_name": "nightly", "status": status, "attempt": 1,
            "previous_attempt_count": 0, "start_time": "2030-01-01T00:00:00.000Z",
            "end_time": None, "reason": reason, "exit_code": None, "log_entries": entries,
            "metadata_entries": []}  # fmt: skip


def script_trigger(stub: Stub, *states: dict[str, Any]) -> None:
    """Make a trigger of `nightly` start RUN_ID, which goes through `states`."""
    location = {"Location": f"/api/processes/{RUN_ID}"}
    stub.on("POST", "/api/process_definitions/nightly/trigger", "", status=204, **location)
    stub.on("GET", f"/api/processes/{RUN_ID}", *states)


def test_trigger_wait_prints_each_change_and_succeeds(
    gnomon: click.Group, stub: tuple[Stub, str]
) -> None:
    script, url = stub
    script_trigger(
        script,
        process("running", attempt("running")),
        process("running", attempt("running")),
        process("succeeded", attempt("succeeded")),
    )
    result = invoke(gnomon, url, "trigger", "nightly", "--wait")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("  ", 1)[1] for line in lines[:-1]] == [
        "extract  attempt 1  running",
        "extract  attempt 1  succeeded",
    ]
    assert lines[-1] == f"run {RUN_ID} succeeded after 9.0s"


def test_trigger_wait_exits_non_zero_when_the_run_fails(
    gnomon: click.Group, stub: tuple[Stub, str]
) -> None:
    script, url = stub
    script_trigger(script, process("failed", attempt("failed", reason="exit code 3")))
    result = invoke(gnomon, url, "trigger", "nightly", "--task", "extract", "--wait")
    assert result.exit_code == 1
    assert "extract  attempt 1  failed (exit code 3)" in result.stdout
    trigger = next(r for r in script.requests if r[0] == "POST")
    assert trigger[2] == {"task_definition_name": ["extract"]}


def test_trigger_wait_json_prints_the_finished_run(
    gnomon: click.Group, stub: tuple[Stub, str]
) -> None:
    script, url = stub
    script_trigger(script, process("running"), process("succeeded"))
    result = invoke(gnomon, url, "trigger", "nightly", "--wait", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_the_live_view_redraws_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    watcher = RunWatcher(redraw=True)
    now = datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)
    watcher.update(process("running", attempt("running")), now)
    watcher.update(process("succeeded", attempt("succeeded")), now)
    first, second = capsys.readouterr().out.split("\x1b[3F\x1b[J")
    assert first.splitlines()[0] == f"run {RUN_ID}  running"
    assert second.splitlines()[0] == f"run {RUN_ID}  succeeded"
    assert "extract  1        succeeded" in second


def sse(*entries: tuple[str, str], end: bool = False) -> str:
    """A text/event-stream body: a `log` event per (id, message), then `end` if asked."""
    events = [": heartbeat\n\n"]
    for event_id, message in entries:
        data = {"log_entry_id": f"00000000-0000-4000-8000-{event_id:0>12}", "message": message,
                "source": "stdout", "when": f"2030-01-01T00:00:0{event_id}.000Z"}  # fmt: skip
        events.append(f"id: {event_id}\nevent: log\ndata: {json.dumps(data)}\n\n")
    return "".join(events) + ("event: end\ndata: {}\n\n" if end else "")


def test_logs_follow_reads_the_stream_and_resumes_after_a_dropped_connection(
    gnomon: click.Group, stub: tuple[Stub, str]
) -> None:
    script, url = stub
    script.on("GET", f"/api/tasks/{TASK_ID}", attempt("running", "one"))
    stream = f"/api/tasks/{TASK_ID}/log_stream"
    busy = {"error": "too_many_streams", "message": "full", "details": {"retry_after_seconds": 0}}
    script.on("GET", stream, busy, status=503)
    script.routes[("GET", stream)] += [
        (200, sse(("1", "one"), ("2", "two")), {"Content_Type": "text/event-stream"}),  # drops
        (200, sse(("3", "three"), end=True), {"Content_Type": "text/event-stream"}),
    ]
    result = invoke(gnomon, url, "logs", TASK_ID, "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2030-01-01 00:00:01Z stdout: one",
        "2030-01-01 00:00:02Z stdout: two",
        "2030-01-01 00:00:03Z stdout: three",
    ]
    resumed = [headers.get("Last-Event-ID") for method, path, _, headers in script.requests
               if path == stream]  # fmt: skip
    assert resumed == [None, None, "2"]
    json_lines = invoke(gnomon, url, "logs", TASK_ID, "--json").stdout.splitlines()
    assert json.loads(json_lines[0])["message"] == "one"


def test_logs_of_an_unknown_task(gnomon: click.Group, stub: tuple[Stub, str]) -> None:
    script, url = stub
    missing = {"error": "not_found", "message": "No task.", "details": {}}
    script.on("GET", f"/api/tasks/{TASK_ID}", missing, status=404)
    result = invoke(gnomon, url, "logs", TASK_ID)
    assert (result.exit_code, result.stderr) == (1, f"error: No task '{TASK_ID}'.\n")


def test_a_token_is_sent_as_a_bearer_token(gnomon: click.Group, stub: tuple[Stub, str]) -> None:
    script, url = stub
    script.on("POST", "/api/process_definitions/nightly/pause", "", status=204)
    invoke(gnomon, url, "pause", "nightly", GNOMON_TOKEN="from-env")
    invoke(gnomon, url, "pause", "nightly", "--token", "from-flag")
    sent = [r[3].get("Authorization") for r in script.requests]
    assert sent == ["Bearer from-env", "Bearer from-flag"]


def test_an_error_without_a_json_body_is_one_line(
    gnomon: click.Group, stub: tuple[Stub, str]
) -> None:
    script, url = stub
    script.on("GET", "/api/process_definitions", "<html>bad gateway</html>", status=502)
    result = invoke(gnomon, url, "definitions")
    assert (result.exit_code, result.stderr) == (1, "error: HTTP 502 Bad Gateway\n")
