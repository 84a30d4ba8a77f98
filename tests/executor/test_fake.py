"""FakeExecutor: scripted attempts on explicit time, for the scheduler's unit tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from executor.base import Ending, EngineUnavailable, InFlight
from executor.fake import EPOCH, FakeExecutor, Script
from tests.executor.support import RecordingListener, make_spec


@pytest.fixture
def fake() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def heard(fake: FakeExecutor) -> RecordingListener:
    listener = RecordingListener()
    fake.open(listener)
    return listener


def test_nothing_happens_until_advance(fake: FakeExecutor, heard: RecordingListener) -> None:
    spec = make_spec(["true"])
    fake.start(spec)
    assert fake.starts == [spec] and heard.started == [] and heard.finished == []
    fake.advance()
    assert heard.starts(spec.task_id) == [(spec.task_id, EPOCH, "fake-1")]
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None
    assert (outcome.ending, outcome.exit_code, outcome.reason) == (Ending.EXITED, 0, None)


def test_scripts_by_task_name_give_exit_codes_lines_and_durations(
    fake: FakeExecutor, heard: RecordingListener
) -> None:
    lines = (("stdout", "hello"), ("stderr", "oops"))
    fake.script("compile", Script(exit_code=3, lines=lines, duration_seconds=30))
    spec = make_spec(["true"], task_name="compile")
    fake.start(spec)
    fake.advance(10)
    assert heard.messages(spec.task_id) == ["hello", "oops"]
    assert heard.outcome(spec.task_id) is None and spec.task_id in fake.running
    fake.advance(25)
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None
    assert (outcome.exit_code, outcome.reason) == (3, "exit code 3")
    assert outcome.ended_at == EPOCH + timedelta(seconds=30)
    assert fake.now() == EPOCH + timedelta(seconds=35)


def test_predicate_scripts_and_explicit_finish(
    fake: FakeExecutor, heard: RecordingListener
) -> None:
    fake.script_when(lambda spec: spec.attempt > 1, Script(duration_seconds=None))
    spec = make_spec(["true"], attempt=2)
    fake.start(spec)
    fake.advance(3600)
    assert heard.outcome(spec.task_id) is None
    fake.finish(spec.task_id, exit_code=1, lines=["bye"])
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None and outcome.reason == "exit code 1"
    assert heard.messages(spec.task_id) == ["bye"]


@pytest.mark.parametrize(
    ("ending", "started", "reason"),
    [
        (Ending.IMAGE_NOT_FOUND, False, "image not found: gnomon-test/busybox:latest"),
        (Ending.OOM_KILLED, True, "killed: out of memory"),
        (Ending.LOST, True, "container lost"),
    ],
)
def test_scripted_endings(
    fake: FakeExecutor, heard: RecordingListener, ending: Ending, started: bool, reason: str
) -> None:
    fake.script("t", Script(ending=ending, duration_seconds=5))
    spec = make_spec(["true"], task_name="t")
    fake.start(spec)
    fake.advance(5)
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None and (outcome.ending, outcome.reason) == (ending, reason)
    assert bool(heard.starts(spec.task_id)) is started


def test_max_runtime_times_out(fake: FakeExecutor, heard: RecordingListener) -> None:
    fake.default_script = Script(duration_seconds=None)
    spec = make_spec(["true"], max_runtime_seconds=60)
    fake.start(spec)
    fake.advance(61)
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None
    assert (outcome.ending, outcome.reason) == (
        Ending.TIMED_OUT,
        "killed: exceeded max_runtime_seconds (60)",
    )
    assert outcome.ended_at == EPOCH + timedelta(seconds=60)


def test_kills_are_recorded_and_end_attempts(fake: FakeExecutor, heard: RecordingListener) -> None:
    fake.default_script = Script(duration_seconds=None)
    running, queued = make_spec(["true"]), make_spec(["true"])
    fake.start(running)
    fake.advance()
    fake.start(queued)
    fake.kill(running.task_id, "killed: run was killed")
    fake.kill(queued.task_id, "killed: run was killed")
    fake.advance()
    assert fake.kills == [
        (running.task_id, "killed: run was killed"),
        (queued.task_id, "killed: run was killed"),
    ]
    for spec, started in ((running, True), (queued, False)):
        outcome = heard.outcome(spec.task_id)
        assert outcome is not None and outcome.ending == Ending.KILLED
        assert (outcome.started_at is not None) is started
    assert heard.starts(queued.task_id) == []


def test_engine_down(fake: FakeExecutor, heard: RecordingListener) -> None:
    fake.engine_down = "docker engine unreachable"
    assert not fake.health().ok
    with pytest.raises(EngineUnavailable):
        fake.start(make_spec(["true"]))
    assert fake.starts == []
    fake.engine_down = None
    assert fake.health().ok


def test_recover_reports_running_again_and_unknown_as_lost(
    fake: FakeExecutor, heard: RecordingListener
) -> None:
    fake.default_script = Script(duration_seconds=None)
    alive, unknown = make_spec(["true"]), make_spec(["true"])
    fake.start(alive)
    fake.advance()
    fake.recover([InFlight(alive), InFlight(unknown)])
    assert len(heard.starts(alive.task_id)) == 2
    outcome = heard.outcome(unknown.task_id)
    assert outcome is not None and (outcome.ending, outcome.reason) == (
        Ending.LOST,
        "container lost",
    )


def test_an_injected_clock_drives_time(heard: RecordingListener) -> None:
    now = [EPOCH]
    fake = FakeExecutor(clock=lambda: now[0])
    fake.open(heard)
    fake.default_script = Script(duration_seconds=10)
    spec = make_spec(["true"])
    fake.start(spec)
    fake.advance()
    now[0] += timedelta(seconds=10)
    fake.advance()
    outcome = heard.outcome(spec.task_id)
    assert outcome is not None and outcome.ended_at == EPOCH + timedelta(seconds=10)
