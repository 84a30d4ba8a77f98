"""The console in a real browser (headless Chromium) against a live `gnomon serve` running
real containers: trigger (with parameters), watch, live logs, outputs, kill, retry, pause and
resume, test notifications; tokens and CSRF.

One browser and one service per module keep this to about a minute. Every page is
photographed in light and dark, at desktop and phone width (see tests/support/browser.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.auth import Scope, entry
from app.cli import main
from tests.support.browser import look, screenshot, start_browser
from tests.support.live import LiveService, live_service, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "gnomon-test/busybox"
HELPER = Path(__file__).resolve().parents[2] / "app" / "helpers" / "gnomon-task"
READ_TOKEN, WRITE_TOKEN = "browser-read-token-0123456789", "browser-write-token-0123456789"
TOKENS = f"{entry('watcher', Scope.READ, READ_TOKEN)},{entry('operator', Scope.WRITE, WRITE_TOKEN)}"
WAIT = 30  # seconds: a container start on a busy machine


def task(name: str, script: str, *deps: str, **extra: Any) -> dict[str, Any]:
    """A busybox task running `sh -c script`."""
    return {
        "task_definition_name": name,
        "dependencies": [
            {"task_definition_name": d, "success_required": d != "lint"} for d in deps
        ],
        "executable": {"docker_image_command": {"image": IMAGE, "command": ["sh", "-c", script]}},
        **extra,
    }


def definition(name: str, *tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A definition that fires once a year (never during a test) unless triggered."""
    schedule = {"cron_schedule": {"minutes": "0", "hours": "4", "day_of_month": "1",
                                  "month": "JAN", "day_of_week": "?",
                                  "time_zone": "Europe/Paris"}}  # fmt: skip
    return {"process_definition_name": name, "schedule": schedule,
            "task_definitions": list(tasks), **extra}  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    driver = start_browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def service(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A live service on SQLite running real containers (host network), without tokens."""
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'gnomon.db'}"
    with live_service(url, KILL_GRACE_SECONDS=1) as live:
        yield live


@pytest.fixture(scope="module")
def guarded(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A live service with a read and a write API token."""
    url = f"sqlite:///{tmp_path_factory.mktemp('guarded') / 'gnomon.db'}"
    with live_service(url, API_TOKENS=TOKENS) as live:
        live.http.headers["Authorization"] = f"Bearer {WRITE_TOKEN}"
        yield live


def by_css(driver: Any, selector: str) -> Any:
    """The first element matching `selector`."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    """Every element matching `selector`."""
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def shown(driver: Any, selector: str, text: str = "") -> Any:
    """Wait until an element matching `selector` (and containing `text`) is on the page."""

    def probe() -> Any:
        for element in all_css(driver, selector):
            try:
                if text in element.text:
                    return element
            except Exception:  # replaced by a live refresh between find and read: look again
                continue
        return None

    return wait_for(probe, WAIT, f"{selector!r} with {text!r}", every=0.1)


def press(driver: Any, button: Any) -> None:
    """Click a button whose form asks for confirmation, and confirm."""
    button.click()
    wait_for(lambda: _alert(driver), 5, "the confirmation").accept()


def _alert(driver: Any) -> Any:
    """The open alert, if any."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def run_id_of(driver: Any) -> str:
    """The run id of the run page shown."""
    return driver.current_url.split("/runs/", 1)[1].split("?")[0].split("#")[0]


def photograph(driver: Any, url: str, name: str) -> list[Path]:
    """Screenshots of `url` in light and dark, at desktop and phone width."""
    paths = []
    for scheme in ("light", "dark"):
        for width in ("desktop", "phone"):
            look(driver, scheme, width)
            driver.get(url)
            paths.append(screenshot(driver, f"{name}-{scheme}-{width}"))
    look(driver, "light", "desktop")
    return paths


# ---------------------------------------------------------------- open console


def test_trigger_from_the_definitions_page_then_watch_the_run_turn_green_with_its_log(
    browser: Any, service: LiveService
) -> None:
    script = "sleep 1; echo hello from the container; echo 'ERROR: only a test' >&2; sleep 2"
    service.put_definition(definition(
        "hello",
        task("lint", "true"),
        task("greet", script, "lint", max_attempts=2, max_runtime_seconds=60,
             backoff_base_seconds=5),
        task("report", "echo done", "greet"),
    ))  # fmt: skip
    browser.get(service.url + "/definitions")
    row = shown(browser, 'tr[data-name="hello"]')
    assert "at 04:00 on day 1 of the month in Jan (Europe/Paris)" in row.text
    press(browser, by_css(browser, 'tr[data-name="hello"] button'))
    shown(browser, ".run-status")
    run_id = run_id_of(browser)
    shown(browser, "g.node.s-running, g.node.s-succeeded")
    line = shown(browser, "#log-lines li.out", "hello from the container")
    assert "stdout" in line.text
    shown(browser, "#log-lines li.err.error", "ERROR: only a test")  # stderr, highlighted
    shown(browser, ".run-status .s-succeeded")  # the page refreshed itself
    assert len(all_css(browser, "g.node.s-succeeded")) == 3
    assert service.run(run_id)["status"] == "succeeded"
    for path in photograph(browser, f"{service.url}/runs/{run_id}", "run"):
        assert path.stat().st_size > 10_000


def test_the_live_log_follows_filters_and_finds(browser: Any, service: LiveService) -> None:
    lines = "; ".join(f"echo line {i}" for i in range(30))
    service.put_definition(definition("chatty", task("talk", f"{lines}; echo an error here")))
    run_id = service.trigger("chatty")
    service.wait_run(run_id)
    browser.get(f"{service.url}/runs/{run_id}")
    shown(browser, "#log-state", "ended")
    assert len(all_css(browser, "#log-lines li")) == 31
    by_css(browser, "#log-find").send_keys("line 2")
    shown(browser, "#log-found", "11 of 31 lines")  # line 2, line 20 … line 29
    assert len([li for li in all_css(browser, "#log-lines li") if li.is_displayed()]) == 11
    download = by_css(browser, "a[download]").get_attribute("href")
    text = service.http.get(download, timeout=10).text
    assert text.count("\n") == 31 and "stdout: line 29" in text
    task_id = service.run(run_id)["task"][0]["task_id"]
    followed = CliRunner().invoke(main, ["logs", task_id, "--follow", "--url", service.url])
    assert followed.exit_code == 0, followed.output
    assert followed.stdout.splitlines()[-1].endswith("stdout: an error here")
    assert len(followed.stdout.splitlines()) == 31


def test_kill_a_long_run_from_its_page(browser: Any, service: LiveService) -> None:
    service.put_definition(definition("long", task("sleeper", "echo started; sleep 300")))
    browser.get(service.url + "/")
    shown(browser, "#runs")
    run_id = service.trigger("long")
    shown(browser, "#runs tr", run_id[:8])  # the runs page updated by itself
    by_css(browser, f'a[title="{run_id}"]').click()
    shown(browser, "#log-lines li", "started")
    press(browser, shown(browser, "button.danger", "Kill"))
    shown(browser, ".run-status .s-failed")
    assert service.wait_run(run_id)["task"][0]["reason"] == "killed: run was killed"


def test_retry_a_failed_run_from_its_page(browser: Any, service: LiveService) -> None:
    service.put_definition(definition("flaky", task("once", 'test "$GNOMON_ATTEMPT" -ge 2')))
    run_id = service.trigger("flaky")
    assert service.wait_run(run_id)["status"] == "failed"
    browser.get(f"{service.url}/runs/{run_id}")
    shown(browser, "g.node.s-failed")
    for path in photograph(browser, f"{service.url}/runs/{run_id}", "run-failed"):
        assert path.exists()
    browser.get(f"{service.url}/runs/{run_id}")
    press(browser, shown(browser, "button", "Retry failed tasks"))
    shown(browser, ".run-status .s-succeeded")
    assert service.run(run_id)["status"] == "succeeded"


def test_pause_and_resume_from_the_definition_page(browser: Any, service: LiveService) -> None:
    service.put_definition(definition("hello", task("greet", "true")))
    browser.get(f"{service.url}/definitions/hello")
    press(browser, shown(browser, "button", "Pause"))
    shown(browser, "h1 .badge", "paused")
    assert service.api("GET", "/api/process_definitions/hello").json()["paused"] is True
    press(browser, shown(browser, "button", "Resume"))
    wait_for(lambda: not all_css(browser, "h1 .badge"), WAIT, "the paused badge to go")
    assert service.api("GET", "/api/process_definitions/hello").json()["paused"] is False


def test_trigger_with_parameters_then_see_them_the_output_and_the_notifications(
    browser: Any, service: LiveService
) -> None:
    script = ('printf "%s" "$HELPER" > /tmp/gnomon-task && chmod +x /tmp/gnomon-task'
              ' && /tmp/gnomon-task metadata output.day "$GNOMON_PARAM_DAY in $PWD"')  # fmt: skip
    helper = {"variable_name": "HELPER", "value": HELPER.read_text(encoding="utf-8")}
    load = task("load", script)
    load["executable"]["docker_image_command"].update(
        environment_variables=[helper], working_dir="/tmp", labels={"team": "data"}
    )
    service.put_definition(definition(
        "inputs", load, schedule=None,
        parameters=[{"name": "day", "required": True, "description": "the day to load"},
                    {"name": "mode", "default": "full"}],
        notifications=[{"webhook": {"url": "http://127.0.0.2:9/hook", "notify_when": "always"}}],
    ))  # fmt: skip
    browser.get(service.url + "/definitions")
    shown(browser, 'tr[data-name="inputs"] a.btn', "Trigger…").click()
    day = shown(browser, "details#trigger[open] input[name='parameter.day']")
    assert day.get_attribute("required") is not None
    assert by_css(browser, "input[name='parameter.mode']").get_attribute("value") == "full"
    day.send_keys("2026-12-01")
    for scheme, width in (("dark", "phone"), ("light", "desktop")):
        look(browser, scheme, width)
        wide = browser.execute_script("return document.documentElement.scrollWidth > innerWidth")
        assert not wide, f"the definition page with its trigger form scrolls sideways ({width})"
        screenshot(browser, f"definition-parameters-{scheme}-{width}")
    day = shown(browser, "input[name='parameter.day']")
    day.clear()
    day.send_keys("2026-12-01")
    press(browser, by_css(browser, "details#trigger button[type=submit]"))
    shown(browser, "#run-parameters", "2026-12-01")
    run_id = run_id_of(browser)
    shown(browser, "td.outputs", "day=2026-12-01 in /tmp")  # from the container, live
    assert service.wait_run(run_id)["parameters"] == {"day": "2026-12-01", "mode": "full"}
    shown(browser, "#notifications td", "http://127.0.0.2:9")
    assert "instance" in by_css(browser, "#attempts td.where").text
    photograph(browser, f"{service.url}/runs/{run_id}", "run-parameters")
    look(browser, "light", "phone")
    wide = browser.execute_script("return document.documentElement.scrollWidth > innerWidth")
    assert not wide, "the run page scrolls sideways on a phone"
    look(browser, "light", "desktop")
    browser.get(service.url + "/definitions/inputs")
    press(browser, shown(browser, "button", "Send test notification"))
    failed = shown(browser, ".flash li.f-failed", "Test webhook to http://127.0.0.2:9: failed")
    assert "refused" in failed.text


def test_every_page_photographed_light_and_dark_desktop_and_phone(
    browser: Any, service: LiveService
) -> None:
    for path, name in (("/", "runs"), ("/definitions", "definitions"),
                       ("/definitions/hello", "definition"), ("/?status=failed", "runs-failed"),
                       ("/definitions/hello?from=1&to=2", "definition-diff")):  # fmt: skip
        for shot in photograph(browser, service.url + path, name):
            assert shot.stat().st_size > 5_000
    look(browser, "light", "phone")
    run_id = service.api("GET", "/api/processes").json()[0]["process_id"]
    for path in ("/", "/definitions", "/definitions/hello", f"/runs/{run_id}"):
        browser.get(service.url + path)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone"
    look(browser, "light", "desktop")


def test_the_keyboard_reaches_the_buttons(browser: Any, service: LiveService) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{service.url}/definitions/hello")
    body = by_css(browser, "body")
    reached = []
    for _ in range(12):
        body.send_keys(Keys.TAB)
        reached.append(browser.switch_to.active_element.text)
    assert "Trigger" in reached and "Pause" in reached


# ---------------------------------------------------------------- with tokens


def sign_in(driver: Any, service: LiveService, token: str) -> None:
    """Sign in through the console's form."""
    driver.delete_all_cookies()
    driver.get(service.url + "/definitions")
    field = shown(driver, "input#token")
    field.send_keys(token)
    by_css(driver, ".login button").click()
    shown(driver, "h1", "Definitions")


def test_a_read_token_sees_no_working_buttons(browser: Any, guarded: LiveService) -> None:
    guarded.put_definition(definition("guarded", task("greet", "true")))
    browser.get(guarded.url + "/")
    assert "/login" in browser.current_url
    photograph(browser, browser.current_url, "login")
    sign_in(browser, guarded, READ_TOKEN)
    browser.get(guarded.url + "/definitions/guarded")
    buttons = [b for b in all_css(browser, "form[method=post] button") if b.text != "Sign out"]
    assert len(buttons) == 4
    assert not any(b.is_enabled() for b in buttons)
    assert "watcher · read only" in by_css(browser, ".who").text
    photograph(browser, guarded.url + "/definitions/guarded", "definition-read-only")


class Attacker(BaseHTTPRequestHandler):
    """Another site's page whose form posts to the console as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        page = (f'<form id="f" method="post" action="{self.target}"></form>'
                '<script>document.getElementById("f").submit()</script>').encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_a_forged_form_post_from_another_page_is_refused(
    browser: Any, guarded: LiveService
) -> None:
    guarded.put_definition(definition("guarded", task("greet", "true")))
    sign_in(browser, guarded, WRITE_TOKEN)
    Attacker.target = f"{guarded.url}/definitions/guarded/trigger"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        shown(browser, "h1", "403")
        assert "CSRF" in by_css(browser, "main").text
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert guarded.api("GET", "/api/processes").json() == []
    browser.get(guarded.url + "/definitions/guarded")  # the console's own form still works
    press(browser, shown(browser, "button", "Pause"))
    shown(browser, "h1 .badge", "paused")
    assert guarded.api("GET", "/api/process_definitions/guarded").json()["updated_by"] == "operator"
