"""The web console through Flask's test client: pages, sign-in, CSRF, masking, headers,
parameters, outputs, notifications, where attempts ran and fire lag."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.auth import Scope, entry
from app.console.pages import PAGE_SIZE
from executor.fake import Script
from scheduler.models import Definition as DefinitionRow
from scheduler.models import Task
from scheduler.service import utc_now
from scheduler.views import NewMetadataEntry
from tests.app.conftest import Definition, driver, fake, gnomon_of
from tests.support.receivers import Recorder
from tests.support.receivers import receiver as receiver  # a fixture, shared

READ_TOKEN, WRITE_TOKEN = "read-token-of-the-console-tests", "write-token-of-the-console-tests"
TOKENS = f"{entry('viewer', Scope.READ, READ_TOKEN)},{entry('operator', Scope.WRITE, WRITE_TOKEN)}"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    """The CSRF token a page's forms carry."""
    match = CSRF.search(page.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def secret_definition(make_definition: Callable[..., Definition]) -> Definition:
    """A definition with a secret-looking and a plain environment variable, and an optional
    dependency."""
    body = make_definition()
    env = [
        {"variable_name": "DB_PASSWORD", "value": "hunter2-very-secret"},
        {"variable_name": "REGION", "value": "eu-west-1"},
    ]
    body["task_definitions"][0]["executable"]["docker_image_command"]["environment_variables"] = env
    body["task_definitions"][1]["dependencies"][0]["success_required"] = False
    return body


# ---------------------------------------------------------------- open (no tokens)


def test_every_page_renders_and_carries_a_strict_content_security_policy(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:  # fmt: skip
    put_definition()
    run_id = trigger()
    drive()
    task_id = client.get(f"/api/processes/{run_id}").get_json()["task"][0]["task_id"]
    pages = ["/", "/definitions", "/definitions/nightly", f"/runs/{run_id}", "/login",
             "/static/console.css", "/static/console.js", f"/tasks/{task_id}/log.txt"]  # fmt: skip
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        text = response.get_data(as_text=True)
        # nothing is fetched from another host: every src/href is a path of this service
        assert not re.search(r'(src|href)="(https?:)?//', text), path
        assert "<script>" not in text and " style=" not in text, path


def test_runs_page_lists_filters_and_pages_runs(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str],
    drive: Callable[[], None], app: Flask,
) -> None:  # fmt: skip
    put_definition()
    put_definition("other")
    fake(app).script("extract", Script(exit_code=3))
    failed = trigger()
    drive()
    running = trigger("other")
    page = client.get("/").get_data(as_text=True)
    assert failed[:8] in page and running[:8] in page
    assert "✗</span> failed" in page and "▶</span> running" in page  # a sign with each colour
    only_failed = client.get("/?status=failed").get_data(as_text=True)
    assert failed[:8] in only_failed and running[:8] not in only_failed
    only_other = client.get("/?definition=other").get_data(as_text=True)
    assert running[:8] in only_other and failed[:8] not in only_other
    beyond = client.get("/?page=5").get_data(as_text=True)
    assert "No runs" in beyond and 'rel="prev"' in beyond
    live = client.get("/?status=failed&partial=1").get_data(as_text=True)
    assert "<html" not in live and failed[:8] in live


def test_definitions_page_is_paged_by_name(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    names = [f"job-{i:03d}" for i in range(PAGE_SIZE + 1)]
    applied = client.post(
        "/api/process_definitions/_apply", json=[make_definition(n) for n in names]
    )
    assert applied.status_code == 200, applied.get_json()
    first = client.get("/definitions").get_data(as_text=True)
    assert re.findall(r'data-name="([^"]+)"', first) == names[:PAGE_SIZE]
    assert 'href="/definitions?page=1" rel="next"' in first
    last = client.get("/definitions?page=1").get_data(as_text=True)
    assert re.findall(r'data-name="([^"]+)"', last) == names[PAGE_SIZE:]
    assert 'href="/definitions" rel="prev"' in last and 'rel="next"' not in last


def test_definitions_page_shows_schedule_in_words_history_and_failing_definitions(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str],
    drive: Callable[[], None], app: Flask,
) -> None:  # fmt: skip
    put_definition(
        schedule={
            "cron_schedule": {
                "minutes": "0",
                "hours": "6",
                "day_of_month": "?",
                "month": "*",
                "day_of_week": "MON-FRI",
                "time_zone": "Europe/Paris",
            }
        }
    )
    put_definition("quiet")
    client.post("/api/process_definitions/quiet/pause")
    fake(app).script("load", Script(exit_code=1))
    run_id = trigger()
    drive()
    page = client.get("/definitions").get_data(as_text=True)
    assert "at 06:00 on Mon-Fri (Europe/Paris)" in page
    assert re.search(r"\d\d:00 CES?T", page)  # the next run in the definition's zone
    assert re.search(r'<tr class="failing[^"]*" data-name="nightly"', page)
    assert 'data-name="quiet"' in page and "⏸ paused" in page
    assert f'href="/runs/{run_id}"><rect class="mark s-failed"' in page


def test_definition_page_masks_secrets_draws_the_dag_and_diffs_versions(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    body = secret_definition(make_definition)
    assert client.put("/api/process_definitions/nightly", json=body).status_code == 201
    body["task_definitions"][0]["executable"]["docker_image_command"]["command"] = ["false"]
    body["task_definitions"][0]["executable"]["docker_image_command"]["environment_variables"][0][
        "value"] = "another-secret"  # fmt: skip
    assert client.put("/api/process_definitions/nightly", json=body).status_code == 200
    page = client.get("/definitions/nightly").get_data(as_text=True)
    assert "hunter2" not in page and "another-secret" not in page
    assert "DB_PASSWORD=&lt;redacted&gt;" in page and "REGION=eu-west-1" in page
    assert page.count('class="node plain"') == 2
    assert 'class="edge optional"' in page  # load needs extract only to finish: dashed
    assert re.search(r'<span class="del">-\s+&#34;true&#34;</span>', page)
    assert re.search(r'<span class="add">\+\s+&#34;false&#34;</span>', page)
    same = client.get("/definitions/nightly?from=2&to=2").get_data(as_text=True)
    assert 'class="diff"' not in same


def test_run_page_colours_tasks_and_offers_kill_while_running(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str],
    drive: Callable[[], None], app: Flask,
) -> None:  # fmt: skip
    fake(app).script("extract", Script(duration_seconds=None))
    put_definition()
    run_id = trigger()
    drive()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert '<g class="node s-running">' in page and '<g class="node s-waiting">' in page
    assert f'action="/runs/{run_id}/kill"' in page and "/retry" not in page
    assert 'data-stream="/tasks/' in page
    token = csrf_of(client.get(f"/runs/{run_id}"))
    killed = client.post(f"/runs/{run_id}/kill", data={"csrf_token": token})
    assert killed.status_code == 302
    drive()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert '<g class="node s-failed">' in page and '<g class="node s-skipped">' in page
    assert f'action="/runs/{run_id}/retry"' in page and "data-live-stop" in page


def test_a_form_post_without_this_sessions_csrf_token_is_refused(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    forged = client.post("/definitions/nightly/trigger", data={"csrf_token": "guessed"})
    assert forged.status_code == 403 and "CSRF" in forged.get_data(as_text=True)
    assert client.post("/definitions/nightly/pause").status_code == 403
    assert client.get("/api/processes").get_json() == []
    assert client.get("/api/process_definitions/nightly").get_json()["paused"] is False
    token = csrf_of(client.get("/definitions"))
    started = client.post("/definitions/nightly/trigger", data={"csrf_token": token})
    assert started.status_code == 302 and started.headers["Location"].startswith("/runs/")


def test_buttons_pause_resume_and_delete(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    token = csrf_of(client.get("/definitions/nightly"))
    client.post("/definitions/nightly/pause", data={"csrf_token": token})
    assert client.get("/api/process_definitions/nightly").get_json()["paused"] is True
    assert "Resume" in client.get("/definitions/nightly").get_data(as_text=True)
    client.post("/definitions/nightly/resume", data={"csrf_token": token})
    assert client.get("/api/process_definitions/nightly").get_json()["paused"] is False
    gone = client.post("/definitions/nightly/delete", data={"csrf_token": token})
    assert gone.headers["Location"] == "/definitions"
    assert client.get("/definitions/nightly").status_code == 404


def test_errors_are_html_pages_for_people(client: FlaskClient) -> None:
    missing = client.get("/definitions/nope")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "No process definition &#39;nope&#39;." in missing.get_data(as_text=True)
    assert client.get("/runs/not-a-uuid").status_code == 400


# ---------------------------------------------------------------- with API tokens


@pytest.fixture
def guarded(make_app: Callable[..., Flask]) -> Flask:
    """An app with a read and a write API token configured."""
    return make_app(API_TOKENS=TOKENS)


def sign_in(client: FlaskClient, token: str) -> TestResponse:
    """Sign in through the form, as a person does."""
    form = client.get("/login")
    return client.post(
        "/login?next=/definitions", data={"token": token, "csrf_token": csrf_of(form)}
    )


def test_with_tokens_the_console_asks_for_one_and_keeps_it_in_a_strict_cookie(
    guarded: Flask,
) -> None:
    client = guarded.test_client()
    first = client.get("/definitions")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login")
    assert client.get("/static/console.css").status_code == 200  # the sign-in page needs it
    wrong = sign_in(client, "not-a-token")
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    form = csrf_of(client.get("/login"))
    for elsewhere in ("//evil.example/x", "/\\evil.example/x", "https://evil.example/"):
        away = client.post(
            f"/login?next={elsewhere}", data={"token": READ_TOKEN, "csrf_token": form}
        )
        assert away.headers["Location"] == "/", elsewhere
        form = csrf_of(client.get("/login"))
    signed = sign_in(client, WRITE_TOKEN)
    assert signed.status_code == 302 and signed.headers["Location"] == "/definitions"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert WRITE_TOKEN not in cookie
    assert client.get("/definitions").status_code == 200
    assert client.get("/api/processes").status_code == 401  # the API still wants a bearer token
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/"))})
    assert client.get("/").status_code == 302


def test_a_read_token_sees_no_working_buttons_and_cannot_act(
    guarded: Flask, make_definition: Callable[..., Definition]
) -> None:
    client = guarded.test_client()
    auth = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    client.put("/api/process_definitions/nightly", json=make_definition(), headers=auth)
    sign_in(client, READ_TOKEN)
    page = client.get("/definitions/nightly").get_data(as_text=True)
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    actions = [action for action, _ in forms if action != "/logout"]
    assert len(actions) == 4  # trigger, trigger a task, pause, delete
    for action, body in forms:
        button = re.search(r"<button[^>]*>", body).group(0)
        assert ("disabled" in button) == (action != "/logout"), action
    acted = client.post(
        "/definitions/nightly/trigger", data={"csrf_token": csrf_of(client.get("/"))}
    )
    assert acted.status_code == 403 and "scope read" in acted.get_data(as_text=True)
    assert client.get("/api/processes", headers=auth).get_json() == []


def test_a_write_token_may_act(guarded: Flask, make_definition: Callable[..., Definition]) -> None:
    client = guarded.test_client()
    auth = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    client.put("/api/process_definitions/nightly", json=make_definition(), headers=auth)
    sign_in(client, WRITE_TOKEN)
    page = client.get("/definitions/nightly").get_data(as_text=True)
    assert "disabled" not in page
    acted = client.post(
        "/definitions/nightly/trigger", data={"csrf_token": csrf_of(client.get("/"))}
    )
    assert acted.status_code == 302
    runs = client.get("/api/processes", headers=auth).get_json()
    assert [r["trigger"] for r in runs] == ["manual:operator"]


def test_the_session_key_comes_from_the_database_secret(make_app: Callable[..., Flask]) -> None:
    first, second = make_app(), make_app()
    assert first.secret_key == second.secret_key  # same database, same key: sessions survive
    assert isinstance(first.secret_key, bytes) and len(first.secret_key) == 32


def test_trigger_one_task_and_see_the_latest_metadata_on_the_run_page(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Definition],
    drive: Callable[[], None],
) -> None:  # fmt: skip
    fake(app).script("load", Script(duration_seconds=None))  # runs until the test ends
    put_definition()
    form = {"csrf_token": csrf_of(client.get("/definitions/nightly")), "task": "load"}
    started = client.post("/definitions/nightly/trigger", data=form)
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    drive()
    run = client.get(f"/api/processes/{run_id}").get_json()
    assert [t["task_definition_name"] for t in run["task"]] == ["load"]
    task_id = run["task"][0]["task_id"]
    with gnomon_of(app).database.connection_context():
        for value in ("41", "42"):
            app_scheduler(app).add_metadata(
                task_id, [NewMetadataEntry(str(uuid.uuid4()), utc_now(), "rows", value)]
            )
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "<div>rows=42</div>" in page and "rows=41" not in page


def app_scheduler(app: Flask) -> Any:
    """The scheduler of `app`, to store entries as a task's callbacks would."""
    return gnomon_of(app).scheduler


# ---------------------------------------------------------------- newer features


PARAMETERS = [
    {"name": "day", "required": True, "description": "the day to load"},
    {"name": "mode", "default": "full"},
]
OPTIONS = {
    "user": "1000:1000",
    "working_dir": "/work",
    "entrypoint": ["/bin/sh", "-c"],
    "network": "none",
    "read_only": True,
    "cap_drop": ["ALL"],
    "shm_size": 64,
    "labels": {"team": "data"},
    "mounts": [{"type": "volume", "source": "cache", "target": "/cache"}],
}


def test_trigger_form_asks_for_parameters_and_the_run_page_shows_them_with_outputs(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition],
    drive: Callable[[], None],
) -> None:  # fmt: skip
    body = make_definition(parameters=PARAMETERS, schedule=None)
    body["task_definitions"][0]["executable"]["docker_image_command"].update(OPTIONS)
    saved = client.put("/api/process_definitions/nightly", json=body)
    assert saved.status_code == 201, saved.get_json()
    fake(app).script("extract", Script(duration_seconds=None))  # keeps the run going
    page = client.get("/definitions/nightly").get_data(as_text=True)
    assert re.search(r'name="parameter\.day" value=""\s+required', page)
    assert re.search(r'name="parameter\.mode" value="full"(?![^>]*required)[^>]*>', page)
    assert '<th scope="row" class="mono">day</th>' in page and "the day to load" in page
    options = page[page.index('id="container-options"') :]
    for shown in ("1000:1000", "/work", "/bin/sh -c", "none", "ALL", "64 MiB", "team=data",
                  "volume cache → /cache (read-only)"):  # fmt: skip
        assert f'<td class="mono">{shown}</td>' in options, shown
    listed = client.get("/definitions").get_data(as_text=True)
    assert 'href="/definitions/nightly?trigger=1#trigger">Trigger…</a>' in listed
    form = {"csrf_token": csrf_of(client.get("/definitions/nightly"))}
    missing = client.post("/definitions/nightly/trigger", data={**form, "task": ""})
    assert missing.status_code == 400 and "required parameter is missing" in missing.get_data(
        as_text=True
    )
    for bad, problem in (({"parameter.nope": "1"}, "unknown parameter"),
                         ({"parameter.day": "x" * 100_000}, "parameters")):  # fmt: skip
        refused = client.post("/definitions/nightly/trigger", data={**form, **bad})
        assert refused.status_code == 400 and problem in refused.get_data(as_text=True)
    assert client.get("/api/processes").get_json() == []  # nothing half-started
    started = client.post(
        "/definitions/nightly/trigger",
        data={**form, "task": "", "parameter.day": "2026-12-01", "parameter.mode": "delta"},
    )
    assert started.status_code == 302
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/api/processes/{run_id}").get_json()["parameters"] == {
        "day": "2026-12-01", "mode": "delta"}  # fmt: skip
    drive()
    task_id = client.get(f"/api/processes/{run_id}").get_json()["task"][0]["task_id"]
    with gnomon_of(app).database.connection_context():
        entries = [("output.rows", "41"), ("output.rows", "42"), ("note", "kept")]
        app_scheduler(app).add_metadata(
            task_id, [NewMetadataEntry(str(uuid.uuid4()), utc_now(), k, v) for k, v in entries]
        )
        Task.update(node="swarm-node-7").where(Task.id == task_id).execute()
        instance = Task.get_by_id(task_id).instance
    assert instance  # the instance that started the attempt
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert re.search(r'<dt class="mono">day</dt><dd class="mono">2026-12-01</dd>', page)
    assert '<td class="mono outputs"><div>rows=42</div></td>' in page
    assert "<div>note=kept</div>" in page and "output.rows" not in page
    assert 'node <span class="mono">swarm-node-7</span>' in page
    assert f'instance <span class="mono">{instance}</span>' in page
    assert 'id="fire-lag"' not in page  # a manual run was due at no time


def test_a_scheduled_run_shows_its_fire_lag(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    every_minute = {"minutes": "*", "hours": "*", "day_of_month": "*", "month": "*",
                    "day_of_week": "?", "time_zone": "UTC"}  # fmt: skip
    put_definition(schedule={"cron_schedule": every_minute})
    due = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=2)  # ahead of clock
    scheduler = gnomon_of(app).scheduler
    scheduler.executor.open(scheduler.engine)
    with gnomon_of(app).database.connection_context():
        DefinitionRow.update(next_fire_at=due).where(DefinitionRow.name == "nightly").execute()
        scheduler.engine.tick(due + timedelta(seconds=42))
    [run] = client.get("/api/processes").get_json()
    page = client.get(f"/runs/{run['process_id']}").get_data(as_text=True)
    lag = re.search(r'<p class="muted" id="fire-lag">(.*?)</p>', page)
    assert lag, "no fire lag on a scheduled run's page"
    assert lag.group(1) == (
        f"Due {due:%Y-%m-%d %H:%M:%S}Z · created {due + timedelta(seconds=42):%Y-%m-%d %H:%M:%S}Z"
        " · fire lag <strong>42 s</strong>"
    )


ROUTING_KEY = "R0UT1NGKEY-of-the-console-tests"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


@pytest.fixture
def notifying(make_app: Callable[..., Flask]) -> Flask:
    """An app that may send notifications to loopback 127.0.0.1 (the recorder)."""
    return make_app(NOTIFY_ALLOWED_NETWORKS="127.0.0.1", NOTIFY_TIMEOUT_SECONDS=2)


def test_notifications_masked_tested_from_the_definition_page_and_listed_on_the_run_page(
    notifying: Flask, make_definition: Callable[..., Definition], receiver: Recorder
) -> None:
    app, client = notifying, notifying.test_client()
    notifications = [
        {"pagerduty": {"service_key": ROUTING_KEY, "api_url": receiver.url,
                       "num_consecutive_failures": 2}},
        {"webhook": {"url": receiver.url + "/hook/path-token", "notify_when": "always",
                     "secret": WEBHOOK_SECRET}},
        {"webhook": {"url": "http://127.0.0.2:9/nowhere", "notify_when": "on_failure"}},
    ]  # fmt: skip
    body = make_definition(notifications=notifications)
    assert client.put("/api/process_definitions/nightly", json=body).status_code == 201
    page = client.get("/definitions/nightly").get_data(as_text=True)
    assert ROUTING_KEY not in page and WEBHOOK_SECRET not in page and "path-token" not in page
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"mono\">([^<]*)</td><td>([^<]*)</td></tr>",
                      page)  # fmt: skip
    assert rows == [
        ("pagerduty", receiver.url, "after 2 failed runs in a row"),
        ("webhook", receiver.url, "always"),
        ("webhook", "http://127.0.0.2:9", "on_failure"),
    ]
    assert 'action="/definitions/nightly/notifications/test"' in page
    forged = client.post("/definitions/nightly/notifications/test", data={"csrf_token": "x"})
    assert forged.status_code == 403 and receiver.received == []
    tested = client.post(
        "/definitions/nightly/notifications/test",
        data={"csrf_token": csrf_of(client.get("/definitions/nightly"))},
        follow_redirects=True,
    )
    text = tested.get_data(as_text=True)
    assert tested.status_code == 200 and ROUTING_KEY not in text
    assert f'<li class="f-sent">Test webhook to {receiver.url}: sent</li>' in text
    assert re.search(
        r'<li class="f-failed">Test webhook to http://127.0.0.2:9: failed: refused: 127.0.0.2', text
    )
    assert len(receiver.received) == 3  # PagerDuty trigger and resolve, the webhook
    fake(app).script("load", Script(exit_code=1))
    form = {"csrf_token": csrf_of(client.get("/definitions/nightly"))}
    started = client.post("/definitions/nightly/trigger", data=form)
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    driver(app)()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    table = page[page.index('id="notifications"') : page.index("<h2>Attempts</h2>")]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row)[:5]
             for row in re.findall(r'<tr class="d-\w+">(.*?)</tr>', table)]  # fmt: skip
    assert cells == [
        ["webhook", receiver.url, "notify", "pending", "0"],
        ["webhook", "http://127.0.0.2:9", "notify", "pending", "0"],
    ]  # PagerDuty waits for a second failure in a row
    assert re.search(r'<td class="time">\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ</td>', table)
