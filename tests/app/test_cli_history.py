"""`gnomon history` and `gnomon audit` against a live service."""

from __future__ import annotations

import json

import click

from tests.app.test_cli import Service, gnomon, invoke, job, service

__all__ = ["gnomon", "service"]  # fixtures used here


def test_history_lists_versions_with_who_when_and_a_diff(
    gnomon: click.Group, service: Service
) -> None:
    service.put(job("nightly"))
    service.put(job("nightly", hours="4"))
    result = invoke(gnomon, service.url, "history", "nightly")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    headings = [line for line in lines if line.startswith("version ")]
    assert [h.split()[1] for h in headings] == ["1", "2"]
    assert all(h.endswith("anonymous") for h in headings)
    second = lines[lines.index(headings[1]) :]
    assert "    -    hours: '3'" in second and "    +    hours: '4'" in second


def test_history_as_json_and_of_an_unknown_name(gnomon: click.Group, service: Service) -> None:
    service.put(job("nightly"))
    result = invoke(gnomon, service.url, "history", "nightly", "--json")
    (version,) = json.loads(result.stdout)
    assert version["version"] == 1 and version["diff"].startswith("--- /dev/null")
    missing = invoke(gnomon, service.url, "history", "nope")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ")


def test_audit_lists_events_newest_first_with_filters(
    gnomon: click.Group, service: Service
) -> None:
    service.put(job("a"))
    service.put(job("b"))
    service.client.post("/api/process_definitions/a/pause")
    result = invoke(gnomon, service.url, "audit")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("anonymous", "pause", "a"),
        ("anonymous", "create", "b"),
        ("anonymous", "create", "a"),
    ]
    only_a = invoke(gnomon, service.url, "audit", "--target", "a", "--limit", "1", "--json")
    assert [e["action"] for e in json.loads(only_a.stdout)] == ["pause"]
    bad = invoke(gnomon, service.url, "audit", "--since", "yesterday")
    assert bad.exit_code == 1 and "since" in bad.stderr
