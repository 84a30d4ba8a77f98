"""`python -m bench --tiny` runs the benchmarks that need no Docker and prints one table."""

from __future__ import annotations

import math

import pytest

from bench.__main__ import main, quick_load
from bench.support import Figure, format_table


@pytest.mark.slow
def test_the_quick_benchmarks_run_at_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--tiny", "--only", "callbacks,definitions,history,busy_thread"])

    table = capsys.readouterr().out
    assert status in (0, 1)  # tiny sizes on a busy machine may miss targets
    for name in ("log entries stored, gnomon serve over HTTP", "gnomon apply of 100", "p99",
                 "insert 100 rows beside a busy thread"):  # fmt: skip
        assert name in table


@pytest.mark.docker
@pytest.mark.slow
def test_the_load_benchmark_runs_at_tiny_size(busybox_image: str) -> None:
    figures = {f.name.split(" (")[0].split(" of ")[0]: f for f in quick_load(tiny=True)}

    assert figures["read errors"].value == 0
    assert figures["stream errors"].value == 0
    assert figures["callback entries missing"].value == 0  # counted page by page
    assert not math.isnan(figures["streamed output line delay p99"].value)  # lines came live
    assert figures["DAG step p50, loaded vs idle"].baseline
    assert figures["engine's container start p50"].baseline  # the engine's own part


def test_a_missed_target_shows_in_the_table() -> None:
    slow = Figure("b", "rate", 10, "entries/s", baseline=20, target=50, higher_is_better=True)
    fast = Figure("b", "ratio", 1.2, "s", baseline=1.0, target=1.1, target_on_ratio=True)

    assert (slow.met, fast.met) == (False, False)
    assert format_table([slow, fast]).splitlines()[1].split()[-1] == "NO"
