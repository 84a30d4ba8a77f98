"""What the benchmarks share: a real `gnomon serve` process, percentiles and result figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from scheduler.database import open_database
from scheduler.models import db
from scheduler.tokens import server_secret, task_token
from tests.support.live import free_port


@dataclass(frozen=True)
class Figure:
    """One measured figure, its same-run baseline and its target, for the summary table.

    `higher_is_better` says which side of `target` passes; a figure with no target only
    reports.
    """

    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: float | None = None
    higher_is_better: bool = False
    target_on_ratio: bool = False  # the target bounds value / baseline, not value

    @property
    def ratio(self) -> float | None:
        """The value over its baseline, if there is one."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target."""
        if self.target is None:
            return None
        measured = self.ratio if self.target_on_ratio else self.value
        if measured is None:
            return False
        return measured >= self.target if self.higher_is_better else measured <= self.target


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (fraction 0.99 for p99)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


@dataclass
class Served:
    """A running `gnomon serve` process: its base URL, process and database URL."""

    url: str
    process: subprocess.Popen
    database_url: str

    def task_token(self, task_id: str) -> str:
        """The callback token of attempt `task_id`, read from the server's database."""
        database = open_database(self.database_url)
        db.initialize(database)
        with database.connection_context():
            return task_token(server_secret(), task_id)


@contextmanager
def gnomon_serve(
    workdir: Path, env: Mapping[str, str] | None = None, *, startup_seconds: float = 60
) -> Iterator[Served]:
    """Run `gnomon serve` on a free loopback port with a SQLite file in `workdir`."""
    port = free_port()
    database_url = f"sqlite:///{workdir / 'gnomon.db'}"
    environment = {
        **os.environ,
        "GNOMON_DATABASE_URL": database_url,
        "GNOMON_PORT": str(port),
        "GNOMON_HOST": "127.0.0.1",
        "GNOMON_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(url, process, startup_seconds)
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {(workdir / 'serve.log').read_text()[-2000:]}") from None
        yield Served(url, process, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_healthy(url: str, process: subprocess.Popen, seconds: float) -> None:
    """Poll the server's health check until it answers, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gnomon serve exited with status {process.returncode}")
        try:
            if requests.get(url + "/_internal_/healthcheck", timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gnomon serve did not answer within {seconds} s")


def format_table(figures: Sequence[Figure]) -> str:
    """The figures as one aligned text table: value, baseline, ratio, target, verdict."""
    headers = ("bench", "figure", "value", "baseline", "ratio", "target", "ok")
    rows = [headers] + [_row(f) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _row(f: Figure) -> tuple[str, ...]:
    """One figure's cells."""
    unit = f" {f.unit}" if f.unit else ""
    baseline = "" if f.baseline is None else f"{f.baseline:.4g}{unit}"
    ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
    target = ""
    if f.target is not None:
        sign = ">=" if f.higher_is_better else "<="
        target = f"ratio {sign} {f.target:g}" if f.target_on_ratio else f"{sign} {f.target:g}{unit}"
    verdict = {None: "", True: "yes", False: "NO"}[f.met]
    return (f.bench, f.name, f"{f.value:.4g}{unit}", baseline, ratio, target, verdict)
