"""`gnomon apply` without a service: reading definition files and deciding what changed."""

from __future__ import annotations

import copy
import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from app.cli_client import (
    Change,
    Failure,
    as_yaml,
    load_definitions,
    normalize,
    plan_change,
    summary,
    yaml_pair,
)


def definition(name: str = "nightly", **overrides: Any) -> dict[str, Any]:
    """A definition as a person writes it in a file: defaults left out."""
    body: dict[str, Any] = {
        "process_definition_name": name,
        "schedule": {
            "cron_schedule": {
                "minutes": "0", "hours": "3", "day_of_month": "*", "month": "*",
                "day_of_week": "?",
            }
        },
        "task_definitions": [
            {"task_definition_name": "extract",
             "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}}},
            {"task_definition_name": "load",
             "dependencies": [{"task_definition_name": "extract"}],
             "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}}},
        ],
    }  # fmt: skip
    body.update(overrides)
    return body


def as_stored(body: dict[str, Any], paused: bool = False) -> dict[str, Any]:
    """What the service answers for `body`: every default filled in, tasks reordered."""
    stored = copy.deepcopy(body)
    stored.update(overlap_action="wait", notifications=[], paused=paused,
                  misfire_policy="run_once", misfire_grace_seconds=3600)  # fmt: skip
    stored["schedule"]["cron_schedule"]["time_zone"] = "UTC"
    for task in stored["task_definitions"]:
        task.setdefault("dependencies", [])
        for dependency in task["dependencies"]:
            dependency.setdefault("success_required", True)
        task.update(max_attempts=1, backoff_base_seconds=0, backoff_exponent=1.0,
                    require_explicit_success=False)  # fmt: skip
        command = task["executable"]["docker_image_command"]
        command.update(tag="latest", log_paths=[], environment_variables=[])
    stored["task_definitions"].reverse()
    return stored


def test_a_definition_the_service_lacks_is_created() -> None:
    assert plan_change("f.yaml", definition(), None) == Change("nightly", "created", "f.yaml")


def test_the_service_s_defaults_and_task_order_are_no_change() -> None:
    change = plan_change("f.yaml", definition(), as_stored(definition()))
    assert change.action == "unchanged" and change.diff == ""


def test_defaults_written_out_in_the_file_are_no_change() -> None:
    explicit = as_stored(definition())
    del explicit["paused"]
    assert plan_change("f.yaml", explicit, as_stored(definition())).action == "unchanged"


def test_the_pause_state_is_left_alone_unless_the_file_sets_it() -> None:
    paused_on_service = as_stored(definition(), paused=True)
    assert plan_change("f.yaml", definition(), paused_on_service).action == "unchanged"
    change = plan_change("f.yaml", definition(paused=False), paused_on_service)
    assert change.action == "changed"
    assert "-paused: true" in change.diff.splitlines()


def test_a_change_shows_a_unified_diff_of_the_yaml_forms() -> None:
    wanted = definition()
    wanted["schedule"]["cron_schedule"]["hours"] = "4"
    change = plan_change("jobs/nightly.yaml", wanted, as_stored(definition()))
    assert change.action == "changed"
    lines = change.diff.splitlines()
    assert lines[:2] == ["--- nightly (service)", "+++ nightly (jobs/nightly.yaml)"]
    assert "-    hours: '3'" in lines and "+    hours: '4'" in lines


def test_a_field_removed_from_the_file_is_a_change() -> None:
    stored = as_stored(definition(process_description="old words"))
    change = plan_change("f.yaml", definition(), stored)
    assert change.action == "changed"
    assert "-process_description: old words" in change.diff.splitlines()


def test_a_non_default_value_going_back_to_the_default_is_a_change() -> None:
    stored = as_stored(definition())
    stored["task_definitions"][0]["max_attempts"] = 3
    assert plan_change("f.yaml", definition(), stored).action == "changed"


def test_state_the_service_adds_to_a_definition_is_ignored() -> None:
    stored = as_stored(definition())
    stored.update(next_fire_at="2030-01-01T03:00:00.000Z", version=4)
    assert plan_change("f.yaml", definition(), stored).action == "unchanged"


def test_a_bare_email_notification_equals_its_wrapped_form() -> None:
    bare = {"name": "ops", "email": "ops@example.com"}
    wrapped = {"email": {**bare, "notify_when": "on_state_change_and_failures"}}
    assert normalize([bare], "notifications") == normalize([wrapped], "notifications")


def test_false_is_not_mistaken_for_a_zero_default() -> None:
    assert normalize({"backoff_base_seconds": False}) == {"backoff_base_seconds": False}
    assert normalize({"backoff_base_seconds": 0}) == {}


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_files_hold_one_or_many_definitions_in_yaml_or_json(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "process_definition_name: a\n---\n- {process_definition_name: b}\n"
          "- {process_definition_name: c}\n---\n")  # fmt: skip
    write(tmp_path / "sub" / "d.json", json.dumps([{"process_definition_name": "d"}]))
    write(tmp_path / "e.yml", "process_definition_name: e\n")
    write(tmp_path / "notes.txt", "not a definition")
    loaded = load_definitions([tmp_path])
    assert sorted(loaded) == ["a", "b", "c", "d", "e"]
    assert loaded["d"][0] == str(tmp_path / "sub" / "d.json")


def test_a_name_defined_twice_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "process_definition_name: x\n")
    write(tmp_path / "b.yaml", "process_definition_name: x\n")
    with pytest.raises(Failure, match="'x' is defined twice"):
        load_definitions([tmp_path])


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("bad.yaml", "a: [", "not valid yaml"),
        ("bad.json", "{", "not valid json"),
        ("list.yaml", "- 1\n- 2\n", "needs a process_definition_name"),
        ("nameless.yaml", "task_definitions: []\n", "needs a process_definition_name"),
    ],
)
def test_unreadable_files_are_named_in_the_error(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(Failure, match=problem) as caught:
        load_definitions([path])
    assert str(path) in caught.value.message


def test_the_summary_counts_every_action() -> None:
    changes = [
        Change("a", "created", "f"),
        Change("b", "unchanged", "f"),
        Change("c", "deleted", "s"),
    ]
    assert summary(changes, dry_run=False) == "1 created, 0 changed, 1 unchanged, 1 deleted"
    assert summary([], dry_run=True).endswith("(dry run: nothing was sent)")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON-like value: odd strings (quotes, line breaks, astral characters,
    YAML keywords), numbers, nulls, and nested lists and maps."""
    odd = ["", "yes", "null", "- x", "a: b", "...", "---", "x\n", " ", "#", "😀 ✓ é\u2028"]
    pick = rng.random()
    if depth > 2 or pick < 0.5:
        choices = [*odd, "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 120))),
                   rng.randint(-5, 10**6), True, None, 1.5, {}, []]  # fmt: skip
        return rng.choice(choices)
    if pick < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {f"k{rng.randint(0, 9)}": random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_the_yaml_of_a_diff_is_dumped_once_per_shared_value_yet_the_same() -> None:
    rng = random.Random(4)
    for _ in range(300):
        before = {f"key{i}": random_value(rng) for i in range(rng.randint(0, 6))}
        after = {k: v if rng.random() < 0.6 else random_value(rng) for k, v in before.items()}
        after.update({f"new{i}": random_value(rng) for i in range(rng.randint(0, 2))})
        assert yaml_pair(before, after) == (as_yaml(before), as_yaml(after))
