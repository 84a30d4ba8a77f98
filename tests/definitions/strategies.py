"""Hypothesis strategies of wire definitions and of arbitrary JSON, for the property tests."""

from typing import Any

from hypothesis import strategies as st

from .samples import cron_wire

_names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z")
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
_seconds = st.integers(0, 2**31 - 1)


@st.composite
def wire_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """Valid wire definitions with optional fields present or absent (DAG: deps on earlier)."""
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    tasks = [draw(_wire_task(name, names[:i])) for i, name in enumerate(names)]
    optional = {
        "paused": st.booleans(),
        "process_description": _text,
        "overlap_action": st.sampled_from(["wait", "terminate", "skip", "allow"]),
        "schedule": st.one_of(
            st.builds(cron_wire, minutes=st.sampled_from(["0", "*/5", "0,30", "15-20"])),
            st.builds(lambda s: {"continuous_schedule": {"buffer_seconds": s}}, _seconds),
            st.just({"continuous_schedule": {}}),
        ),
        "notifications": st.lists(_notification, max_size=3),
        "misfire_policy": st.sampled_from(["run_once", "skip", "run_all"]),
        "misfire_grace_seconds": _seconds,
        "max_catch_up_runs": st.integers(1, 100),
    }
    extra = draw(st.fixed_dictionaries({}, optional=optional))
    return {"process_definition_name": draw(_names), "task_definitions": tasks, **extra}


_notification = st.one_of(
    st.fixed_dictionaries({"name": _text.filter(bool), "email": _text.filter(bool)}),
    st.builds(lambda k: {"pagerduty": {"service_key": k}}, _text.filter(bool)),
    st.builds(lambda u: {"webhook": {"url": "https://x/" + u}}, st.from_regex(r"\A[a-z]{0,5}\Z")),
    st.builds(
        lambda s: {"webhook": {"url": "https://x/", "secret": "whsec_" + s}},
        st.from_regex(r"\A[A-Za-z0-9+/]{32}\Z"),
    ),
)


@st.composite
def _wire_task(draw: st.DrawFn, name: str, earlier: list[str]) -> dict[str, Any]:
    """A valid wire task depending on some of the `earlier` names."""
    deps = draw(st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([]))
    command = {"image": draw(_text.filter(bool)), "command": draw(st.lists(_text, max_size=3))}
    command |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "tag": _text.filter(bool),
                "memory": st.integers(6, 2**31 - 1),
                "taskRoleArn": _text,
                "environment_variables": st.just([{"variable_name": "A", "value": "1"}]),
            },
        )
    )
    task = {
        "task_definition_name": name,
        "executable": {"docker_image_command": command},
        "dependencies": [
            {"task_definition_name": d, "success_required": draw(st.booleans())} for d in deps
        ],
    }
    return task | draw(
        st.fixed_dictionaries(
            {},
            optional={
                "max_attempts": st.integers(1, 1000),
                "max_runtime_seconds": _seconds,
                "backoff_base_seconds": _seconds,
                "backoff_exponent": st.floats(1.0, 1e6),
                "require_explicit_success": st.booleans(),
            },
        )
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(data: Any, prefix: str = "") -> list[str]:
    """Every dotted path inside `data`."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return []
    found = []
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        found += [path, *paths(value, path)]
    return found
