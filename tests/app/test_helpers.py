"""The in-container helpers: one suite over `gnomon-task` (curl, busybox wget) and `gnomon_task`.

Each runs as a task would, against a recording stub of the callback endpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HELPERS = Path(__file__).resolve().parents[2] / "app" / "helpers"
SHELL_HELPER = HELPERS / "gnomon-task"
PYTHON_HELPER = HELPERS / "gnomon_task.py"
TASK_ID = "0c5e7d0e-3b7a-4a4e-9a0b-2f1f3c1d2e3f"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BUSYBOX_APPLETS = (
    "sh",
    "awk",
    "sed",
    "tail",
    "cat",
    "od",
    "tr",
    "date",
    "sleep",
    "timeout",
    "wget",
)
TRICKY = 'quote " backslash \\ newline\nnext tab\t bell \x07 esc \x1b $(date) %s é € 🙂 \x7f end'


@dataclass
class Recorder:
    """What the stub received, and the statuses it answers with next (then 204)."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Record a POST and answer it."""
        length = int(handler.headers.get("Content-Length") or 0)
        self.requests.append((handler.path, dict(handler.headers), handler.rfile.read(length)))
        status = self.statuses.pop(0) if self.statuses else 204
        body = b"" if status == 204 else json.dumps({"message": f"stub says {status}"}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def bodies(self, callback: str) -> list[Any]:
        """The JSON bodies posted to `callback`."""
        suffix = f"/api/tasks/{TASK_ID}/{callback}"
        return [json.loads(body) for path, _, body in self.requests if path == suffix]


@pytest.fixture
def stub() -> Iterator[tuple[Recorder, str]]:
    """A recording callback stub on a free loopback port, and its base URL."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            """Record and answer."""
            recorder.answer(self)

        def log_message(self, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def busybox_bin(tmp_path: Path) -> str:
    """A PATH holding only busybox applets (no curl), like a busybox image."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed")
    folder = tmp_path / "busybox-bin"
    folder.mkdir()
    for applet in BUSYBOX_APPLETS:
        (folder / applet).symlink_to(busybox)
    return str(folder)


@pytest.fixture(params=["sh-curl", "sh-busybox-wget", "python"])
def helper(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """How to run one helper implementation: its command prefix and base environment."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    if request.param == "sh-curl":
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed")
        return ["sh", str(SHELL_HELPER)], env
    if request.param == "sh-busybox-wget":
        path = busybox_bin(tmp_path)
        return [f"{path}/sh", str(SHELL_HELPER)], {**env, "PATH": path}
    return [sys.executable, str(PYTHON_HELPER)], env


def run(
    helper: tuple[list[str], dict[str, str]], url: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the helper with the task environment Gnomon gives a container."""
    command, base = helper
    task_env = {
        "GNOMON_URL": url,
        "GNOMON_TASK_ID": TASK_ID,
        "GNOMON_TASK_TOKEN": "secret-token",
        "GNOMON_TASK_DEFINITION_NAME": "extract",
    }
    return subprocess.run(
        [*command, *args], env={**base, **task_env, **env}, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


def test_log_posts_one_entry_with_the_message_intact(helper: Any, stub: Any) -> None:
    recorder, url = stub
    result = run(helper, url, "log", TRICKY)
    assert result.returncode == 0, result.stderr
    ((entry,),) = recorder.bodies("log_entries")
    assert entry["message"] == TRICKY and entry["source"] == "extract"
    assert UUID.match(entry["log_entry_id"]) and WHEN.match(entry["when"])
    _, headers, _ = recorder.requests[0]
    assert headers["Authorization"] == "Bearer secret-token"
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "message", ["loaded 42 rows", "é € 🙂", 'a "quote"', "back\\slash", "tab\there", "del\x7f",
                "a\nb", "$(date) `id` %s $HOME *"],
)  # fmt: skip
def test_each_message_arrives_intact(helper: Any, stub: Any, message: str) -> None:
    recorder, url = stub
    assert run(helper, url, "log", message).returncode == 0
    assert recorder.bodies("log_entries")[0][0]["message"] == message


def test_a_plain_report_starts_only_date_and_the_client(tmp_path: Path, stub: Any) -> None:
    """Cheap enough to call often: no awk, cat or sed for a message with nothing to escape.
    Under dash (busybox's own shell may run its applets without a new process), every
    command the helper starts from PATH notes its name."""
    recorder, url = stub
    busybox, dash, calls = shutil.which("busybox"), shutil.which("dash"), tmp_path / "calls"
    if busybox is None or dash is None:
        pytest.skip("busybox and dash are needed")
    folder = tmp_path / "noting-bin"
    folder.mkdir()
    for applet in BUSYBOX_APPLETS[1:]:
        (folder / applet).write_text(
            f'#!{dash}\necho {applet} >>{calls}\nexec {busybox} {applet} "$@"\n'
        )
        (folder / applet).chmod(0o755)
    result = run(([dash, str(SHELL_HELPER)], {"PATH": str(folder)}), url, "log", "hi")
    assert result.returncode == 0, result.stderr
    started = [name for name in calls.read_text().split() if name != "wget"]
    assert started == ["date", "timeout"]  # busybox's timeout may run its own wget
    assert recorder.bodies("log_entries")[0][0]["message"] == "hi"


def test_metadata_posts_one_key_and_value(helper: Any, stub: Any) -> None:
    recorder, url = stub
    assert run(helper, url, "metadata", 'rows "loaded"', "42\n43").returncode == 0
    ((entry,),) = recorder.bodies("metadata")
    assert (entry["key"], entry["value"]) == ('rows "loaded"', "42\n43")
    assert UUID.match(entry["metadata_entry_id"])


def test_succeed_posts_to_succeed(helper: Any, stub: Any) -> None:
    recorder, url = stub
    assert run(helper, url.rstrip("/") + "/", "succeed").returncode == 0
    assert [path for path, _, _ in recorder.requests] == [f"/api/tasks/{TASK_ID}/succeed"]


def test_fail_logs_the_reason_first(helper: Any, stub: Any) -> None:
    recorder, url = stub
    assert run(helper, url, "fail", "no input file").returncode == 0
    paths = [path.rsplit("/", 1)[-1] for path, _, _ in recorder.requests]
    assert paths == ["log_entries", "fail"]
    assert recorder.bodies("log_entries")[0][0]["message"] == "no input file"


def test_a_refusal_is_reported_and_not_retried(helper: Any, stub: Any) -> None:
    recorder, url = stub
    recorder.statuses = [409]
    result = run(helper, url, "succeed")
    assert result.returncode == 1
    assert "succeed" in result.stderr and "409" in result.stderr
    assert len(recorder.requests) == 1


def test_an_unavailable_service_is_retried(helper: Any, stub: Any) -> None:
    recorder, url = stub
    recorder.statuses = [503, 503]
    assert run(helper, url, "log", "hello").returncode == 0
    assert [body[0]["message"] for body in recorder.bodies("log_entries")] == ["hello"] * 3


@pytest.mark.slow
def test_a_refused_connection_gives_up_within_the_bound(helper: Any) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        started = time.monotonic()
        result = run(helper, url, "log", "hello")
    assert result.returncode == 1 and "no answer" in result.stderr
    assert time.monotonic() - started < 8


@pytest.mark.slow
def test_a_silent_service_never_hangs_the_job(helper: Any) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the kernel; nobody ever answers
        started = time.monotonic()
        result = run(helper, f"http://127.0.0.1:{silent.getsockname()[1]}", "succeed")
    assert result.returncode == 1
    assert time.monotonic() - started < 8


@pytest.mark.parametrize(
    "args", [(), ("nonsense",), ("log",), ("log", "a", "b"), ("metadata", "k"), ("fail", "a", "b")]
)
def test_wrong_usage_exits_2(helper: Any, args: tuple[str, ...]) -> None:
    result = run(helper, "http://127.0.0.1:9", *args)
    assert result.returncode == 2 and "usage" in result.stderr


def test_outside_a_task_container_it_says_so(helper: Any) -> None:
    result = run(helper, "", "log", "hello")
    assert result.returncode == 1
    assert "GNOMON_URL is not set" in result.stderr


def test_the_python_helper_is_importable(stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, url = stub
    monkeypatch.syspath_prepend(str(HELPERS))
    monkeypatch.setenv("GNOMON_URL", url)
    monkeypatch.setenv("GNOMON_TASK_ID", TASK_ID)
    import gnomon_task

    gnomon_task.metadata("rows", "42")
    gnomon_task.fail("bad input")
    recorder.statuses = [409]
    with pytest.raises(gnomon_task.GnomonTaskError, match="409 stub says 409"):
        gnomon_task.succeed()
    assert [p.rsplit("/", 1)[-1] for p, _, _ in recorder.requests] == [
        "metadata", "log_entries", "fail", "succeed",
    ]  # fmt: skip
    assert "Authorization" not in recorder.requests[0][1]
