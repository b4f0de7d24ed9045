"""PartitionStore: staged writes, the write-ahead record, and recovery after a crash between acks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streams.store import DictTableBackend, PartitionStore

T = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


class LossyBackend(DictTableBackend):
    """A DictTableBackend whose writes after the first `keep` are lost: a crash between the
    broker's acknowledgements (the local dict dies with the worker; the changelog keeps the acked)."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    def set(self, table: str, partition: int, key: str, value: str | None) -> None:
        if self.keep > 0:
            self.keep -= 1
            super().set(table, partition, key, value)


def _unit(store: PartitionStore, n: int) -> None:
    """One unit of work changing three kinds of state together."""
    store.put_ticket("T", f'{{"n":{n}}}')
    store.schedule("T", T + timedelta(minutes=n))
    store.put_meta("processor", f'{{"seen":{n}}}')


def _state(backend: DictTableBackend) -> tuple:
    store = PartitionStore(backend, 0)
    return store.get_ticket("T"), store.next_wake(), store.get_meta("processor")


def _acknowledged(backend: DictTableBackend, n: int) -> DictTableBackend:
    """The tables a restart recovers when only the first `n` writes reached the broker."""
    crashed = DictTableBackend()
    for table, partition, key, value in backend.writes[:n]:
        crashed.set(table, partition, key, value)
    return crashed


def test_writes_are_staged_until_commit_and_reads_see_them():
    backend = DictTableBackend()
    store = PartitionStore(backend, 0)
    _unit(store, 1)
    assert store.get_ticket("T") == '{"n":1}' and store.get_meta("processor") == '{"seen":1}'
    assert backend.tables["tickets"] == {} and backend.writes == []
    store.commit()
    assert _state(backend) == ('{"n":1}', T + timedelta(minutes=1), '{"seen":1}')
    assert store.staged == 0


def test_unchanged_value_staged_back_writes_nothing():
    backend = DictTableBackend()
    store = PartitionStore(backend, 0)
    store.put_ticket("T", "a")
    store.commit()
    before = len(backend.writes)
    store.put_ticket("T", "b")
    store.put_ticket("T", "a")  # back to the stored value
    store.commit()
    assert [w for w in backend.writes[before:] if w[0] == "tickets"] == []


def _unit_2_written_ahead(chunk: int | None = None) -> tuple[DictTableBackend, PartitionStore, int, int]:
    """Unit 1 committed, unit 2's write-ahead record sent (its keys not yet): the backend, the
    store, and the number of writes after unit 1 and after unit 2's record."""
    full = DictTableBackend()
    store = PartitionStore(full, 0)
    if chunk is not None:
        store.WAL_CHUNK = chunk
    _unit(store, 1)
    store.commit()
    after_unit_1 = len(full.writes)
    _unit(store, 2)
    store.write_ahead()
    return full, store, after_unit_1, len(full.writes)


def test_lost_key_writes_are_redone_from_the_write_ahead_record():
    # Unit 1 fully written; unit 2's write-ahead record acked, then the crash: only 1 of its keys landed.
    full, store, _, writes_before_keys = _unit_2_written_ahead()
    store.apply_staged()
    crashed = _acknowledged(full, writes_before_keys + 1)
    mixed = (crashed.tables["tickets"].get("T"), crashed.tables["misc"].get("meta\x1f0\x1fprocessor"))
    assert mixed == ('{"n":2}', '{"seen":1}')  # what a restart used to see: new ticket, old meta
    restarted = PartitionStore(crashed, 0)
    assert restarted.recovered_writes == 2
    assert _state(crashed) == ('{"n":2}', T + timedelta(minutes=2), '{"seen":2}')


def test_incomplete_write_ahead_record_is_ignored():
    # Unit 2's record is chunked and only its first chunk reached the broker: unit 2 never committed.
    full, _, after_unit_1, _ = _unit_2_written_ahead(chunk=8)
    crashed = _acknowledged(full, after_unit_1 + 1)
    restarted = PartitionStore(crashed, 0)
    assert restarted.recovered_writes == 0
    assert _state(crashed) == ('{"n":1}', T + timedelta(minutes=1), '{"seen":1}')


def test_chunked_record_round_trips_and_stale_chunks_are_dropped():
    backend = DictTableBackend()
    store = PartitionStore(backend, 0)
    store.WAL_CHUNK = 16
    store.put_ticket("T", "x" * 100)  # a record of several chunks
    store.commit()
    chunks = sorted(k for k in backend.tables["misc"] if k.startswith("wal"))
    assert len(chunks) > 3
    backend.tables["tickets"].clear()  # the key write lost: the record brings it back
    assert PartitionStore(backend, 0).get_ticket("T") == "x" * 100
    store.WAL_CHUNK = 10_000
    store.put_ticket("T", "y")
    store.commit()
    assert sorted(k for k in backend.tables["misc"] if k.startswith("wal")) == ["wal\x1f0\x1f0"]
    assert PartitionStore(backend, 0).get_ticket("T") == "y"


def test_every_crash_point_leaves_a_consistent_state():
    """Cut the write sequence of three units at every position: the restarted store sees exactly
    the state after some unit (never a mix), and never an older one than the last committed."""
    def run(backend: DictTableBackend) -> list[int]:
        committed_after = []  # number of writes when each unit's commit returned
        store = PartitionStore(backend, 0)
        for n in (1, 2, 3):
            _unit(store, n)
            store.write_ahead()  # the shell returns (input acked) once this is on the broker
            committed_after.append(len(backend.writes))
            store.apply_staged()
        return committed_after

    reference = DictTableBackend()
    committed_after = run(reference)
    states = {n: ('{"n":%d}' % n, T + timedelta(minutes=n), '{"seen":%d}' % n) for n in (1, 2, 3)}
    for cut in range(len(reference.writes) + 1):
        crashed = LossyBackend(keep=cut)
        run(crashed)
        restarted = DictTableBackend()  # the changelog as recovered: what the broker acknowledged
        restarted.tables = crashed.tables
        after = _state(restarted)
        last_committed = sum(1 for c in committed_after if c <= cut)
        if last_committed == 0:
            assert after in {(None, None, None), states[1]}, cut
        else:
            assert after in {states[last_committed], states.get(last_committed + 1)}, (cut, after)
