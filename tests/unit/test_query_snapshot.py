"""The query API's snapshot (streams.snapshot): immutable views, one unit at a time, across threads."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from streams.snapshot import SnapshotPublisher, TableView
from streams.store import DictTableBackend, PartitionStore


def test_a_published_view_never_changes_and_folds_its_delta_into_a_new_base():
    table = {"a": "1", "b": "2"}
    first = TableView(dict(table))

    def fold() -> TableView:
        return TableView(dict(table))

    def write(view: TableView, writes: dict) -> TableView:
        for k, v in writes.items():  # the table moves on, as the worker's does
            if v is None:
                table.pop(k, None)
            else:
                table[k] = v
        return view.with_writes(writes, fold)

    second = write(first, {"a": "10", "c": "3", "b": None})
    assert dict(first.items()) == {"a": "1", "b": "2"}
    assert dict(second.items()) == {"a": "10", "c": "3"}
    assert second.get("b") is None and second.get("a") == "10"
    view = second
    for i in range(3000):  # past the fold threshold: the view is the table again, the delta empty
        view = write(view, {f"k{i}": str(i)})
    assert view.get("k2999") == "2999" and view.get("a") == "10" and view.get("b") is None
    assert len(view) == 3002 and len(view._base) > 1024  # folded: the base is the table as it stood
    assert TableView({"x": b"bytes"}).get("x") == "bytes"  # a Faust table's stored bytes, read as text
    assert dict(second.items()) == {"a": "10", "c": "3"}


def _published() -> tuple[DictTableBackend, PartitionStore, SimpleNamespace, SnapshotPublisher]:
    """A worker holding partition 0 over in-memory tables, and a publisher that published it once."""
    backend = DictTableBackend()
    store = PartitionStore(backend, 0)
    worker = SimpleNamespace(processors={0: object()}, backend=backend, contracts_version=0, contract_terms={})
    publisher = SnapshotPublisher()
    publisher.publish(worker, {})
    return backend, store, worker, publisher


def _unit(store: PartitionStore, k: int) -> dict:
    """One unit of work writing three tables: a ticket, a service and the partition's meta."""
    store.put_ticket("T1", f'{{"n":{k}}}')
    store.put_service("S1", f'{{"n":{k}}}')
    store.put_meta("processor", f'{{"n":{k}}}')
    store.write_ahead()
    return store.apply_staged()


def test_a_reader_never_sees_part_of_a_unit():
    backend, store, worker, publisher = _published()
    units = 1000
    seen: list[tuple[str | None, str | None, str | None]] = []
    mixed: list[tuple] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            snapshot = publisher.current  # one reference per "request"
            t = snapshot.tables["tickets"].get("T1")
            s = snapshot.tables["services"].get("S1")
            m = snapshot.tables["misc"].get("meta\x1f0\x1fprocessor")
            seen.append((t, s, m))
            if not t == s == m:
                mixed.append((snapshot.version, t, s, m))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for k in range(1, units + 1):
            publisher.publish(worker, {0: _unit(store, k)})
            if k % 100 == 0:
                # let the reader read between units: the publishes can all fit in one of the
                # interpreter's thread switch intervals, and it then saw a single unit (a flaky
                # failure of the check below, once in CI)
                reads = len(seen)
                deadline = time.monotonic() + 1.0
                while len(seen) == reads and time.monotonic() < deadline:
                    time.sleep(0.0005)
    finally:
        done.set()
        reader.join()
    assert mixed == []
    assert len({x for x in seen if x[0] is not None}) > 1, "the reader saw several units go by"
    final = publisher.current.tables
    assert final["tickets"].get("T1") == final["misc"].get("meta\x1f0\x1fprocessor") == f'{{"n":{units}}}'


def test_the_write_ahead_chunks_and_the_due_index_stay_out_and_a_new_processor_rebuilds_the_views():
    backend, store, worker, publisher = _published()
    store.schedule("T1", None)
    first = publisher.publish(worker, {0: _unit(store, 1)})
    assert not any(k.startswith("wal\x1f") for k, _ in first.tables["misc"].items())
    assert set(first.tables) == {"tickets", "services", "misc"}
    assert first.partitions == {0: first.version}
    # a write outside any unit (a store's recovery) reaches the views when the processors change
    backend.set("tickets", 1, "T2", '{"n":7}')
    unchanged = publisher.publish(worker, {})
    assert unchanged.tables["tickets"].get("T2") is None and unchanged.partitions == first.partitions
    worker.processors[1] = object()
    rebuilt = publisher.publish(worker, {})
    assert rebuilt.tables["tickets"].get("T2") == '{"n":7}'
    assert set(rebuilt.partitions) == {0, 1}
    # rebuilt from the tables as they stand: the write-ahead chunks stay out there too
    assert not any(k.startswith("wal\x1f") for k, _ in rebuilt.tables["misc"].items())
