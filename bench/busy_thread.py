"""Bulk inserts on SQLite beside a busy thread: the driver's executemany against Gnomon's.

    .venv/bin/python -m bench.busy_thread [--rows 1000 --repeats 5]

sqlite3's `executemany` lets go of the interpreter lock around every row's step and
takes it back after; while another thread runs Python (a request being rendered, a
log being parsed), a taking-back can wait for the switch interval, 5 ms, so a batch
waits about that long for each of its rows. `scheduler.bulk` writes many rows to a
statement (`INSERT … VALUES (…), (…), …`), one taking-back a statement.

In a migrated SQLite database, with one thread counting in a loop the whole time,
`--rows` rows of the trigger_key table are inserted through `bulk.insert_rows`,
against the driver's `executemany` of the same INSERT (the baseline), each in a
transaction of its own; the median of `--repeats` of each. Also both alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

from bench.support import Figure, format_table
from scheduler.bulk import insert_rows
from scheduler.database import migrate, open_database
from scheduler.models import TriggerKey, db

FIELDS = (TriggerKey.definition_name, TriggerKey.key, TriggerKey.run_id, TriggerKey.created_at)
INSERT = 'INSERT INTO "trigger_key" ("definition_name", "key", "run_id", "created_at") '
INSERT += "VALUES (?, ?, ?, ?)"


@contextmanager
def busy_thread(busy: bool) -> Iterator[None]:
    """While inside, one thread (if `busy`) runs Python without a pause."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=spin, daemon=True)
    if busy:
        thread.start()
        time.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        if busy:
            thread.join()


def median_ms(action: Callable[[], object], repeats: int, busy: bool) -> float:
    """The median time of `action` in ms, `repeats` times, beside a busy thread or not."""
    times = []
    with busy_thread(busy):
        for _ in range(repeats):
            started = time.perf_counter()
            action()
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def measure(rows: int = 1000, repeats: int = 5) -> list[Figure]:
    """The figures, on a new SQLite database in a temporary directory."""
    batches = count()

    def keys() -> list[tuple[str, str, str, datetime]]:
        now = datetime.now(UTC).replace(tzinfo=None)  # as the driver stores it: naive UTC
        name = f"batch{next(batches)}"
        return [(name, f"k{i:06d}", str(uuid.uuid4()), now) for i in range(rows)]

    with tempfile.TemporaryDirectory(prefix="gnomon-bench-busy-") as tmp:
        database = open_database(f"sqlite:///{Path(tmp) / 'busy.db'}")
        db.initialize(database)
        migrate(database)
        with database.connection_context():
            connection = database.connection()

            def ours() -> None:
                with database.atomic():
                    insert_rows(FIELDS, keys())

            def theirs() -> None:
                with database.atomic():
                    connection.executemany(INSERT, keys())

            found = {busy: (median_ms(ours, repeats, busy), median_ms(theirs, repeats, busy))
                     for busy in (False, True)}  # fmt: skip
            stored = TriggerKey.select().count()
        database.close()
    if stored != 4 * repeats * rows:
        raise RuntimeError(f"{stored} rows stored of {4 * repeats * rows}")
    return [
        Figure("busy_thread", f"insert {rows} rows beside a busy thread", found[True][0], "ms",
               baseline=found[True][1]),
        Figure("busy_thread", f"insert {rows} rows alone", found[False][0], "ms",
               baseline=found[False][1]),
    ]  # fmt: skip


def main() -> None:
    """Run it from the command line and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(format_table(measure(args.rows, args.repeats)))


if __name__ == "__main__":
    main()
