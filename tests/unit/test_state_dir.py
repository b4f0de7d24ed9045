"""streams/state_dir.py without a broker: the file holds a prefix of each changelog — rows and
offset together, a failed write (disk full) stops every later one instead of leaving a gap —
and one directory belongs to one worker."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from streams.settings import SettingsError
from streams.state_dir import StateDir, StateDirInUse

TOPIC = "slaproc-tickets-changelog"


def _held(state: StateDir, partition: int = 0) -> dict[str, bytes]:
    return dict(state.rows(TOPIC, partition))


def test_rows_and_offsets_move_together_and_a_batch_keeps_each_keys_last_record(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path, "app")
    state.write(TOPIC, [(0, "a", b"1", 10), (0, "b", b"2", 11), (0, "a", b"3", 12), (1, "c", b"4", 5)])
    assert _held(state) == {"a": b"3", "b": b"2"} and state.offset(TOPIC, 0) == 12
    state.write(TOPIC, [(0, "b", None, 13)])  # a delete on the changelog
    assert _held(state) == {"a": b"3"} and state.offset(TOPIC, 0) == 13 and state.offset(TOPIC, 1) == 5
    state.forget(TOPIC)
    assert _held(state) == {} and state.offset(TOPIC, 0) is None and state.offset(TOPIC, 1) is None


def test_a_failed_write_stops_every_later_one_so_the_file_stays_a_prefix(tmp_path: Path, caplog) -> None:
    """Disk full while records 2 is written: without the stop, record 3's write would move the
    offset to 3 and a restart would start after record 2, which the file never got."""
    state = StateDir.open(tmp_path, "app")

    async def acknowledge_three() -> None:
        state.acknowledged(TOPIC, (0, "t-1", b"x" * 100, 1))
        await asyncio.sleep(0)
        pages = state.db.execute("PRAGMA page_count").fetchone()[0]
        state.db.execute(f"PRAGMA max_page_count={pages}")  # the volume is full
        state.acknowledged(TOPIC, (0, "t-2", b"y" * 200_000, 2))
        await asyncio.sleep(0)
        state.db.execute("PRAGMA max_page_count=1073741823")  # space freed again
        state.acknowledged(TOPIC, (0, "t-3", b"z", 3))
        await asyncio.sleep(0)

    with caplog.at_level(logging.CRITICAL, logger="streams.state_dir"):
        asyncio.run(acknowledge_three())
    assert state.failed is not None and "full" in state.failed
    assert state.offset(TOPIC, 0) == 1 and set(_held(state)) == {"t-1"}  # recovery re-reads from offset 2
    assert any("writing slaproc-tickets-changelog failed" in r.getMessage() for r in caplog.records)
    state.write(TOPIC, [(0, "t-4", b"w", 4)])  # nothing is written any more, recovery records included
    assert state.offset(TOPIC, 0) == 1


def test_one_directory_one_worker_and_a_damaged_file_is_named(tmp_path: Path) -> None:
    first = StateDir.open(tmp_path / "w1", "app")
    with pytest.raises(StateDirInUse, match="in use by another worker"):
        StateDir.open(tmp_path / "w1", "app")
    first.close()
    StateDir.open(tmp_path / "w1", "app").close()  # released
    damaged = tmp_path / "w2"
    damaged.mkdir()
    (damaged / "app.sqlite3").write_bytes(b"this is not a database file" * 100)
    with pytest.raises(SettingsError, match=r"app\.sqlite3 cannot be used .*deleting it is safe"):
        StateDir.open(damaged, "app")
    with sqlite3.connect(tmp_path / "w1" / "app.sqlite3") as db:  # the healthy one is a plain SQLite file
        assert db.execute("SELECT count(*) FROM rows").fetchone() == (0,)
