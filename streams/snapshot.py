"""What the query API reads: an immutable snapshot of the worker's committed state, published by
the processing loop at the end of every unit of work and read by the API thread.

- `TableView`: one state table (tickets, services, misc) as of a commit. Never changed once
  published: a new commit makes a new view that shares the unchanged part (a base dict plus a
  delta of the keys written since; once the delta outgrows an eighth of the base, the base is
  copied again from the table, so a commit costs O(keys written), amortised, not O(table)). The
  base holds the table's own value objects: the views cost a key index, not a copy of the state.
- `Snapshot`: the views, the partitions held (each with the version of its state), the
  contracts, the query routes (which worker owns which input partition). Published by
  replacing one attribute (`SnapshotPublisher.current`): a reader takes the reference once and
  sees one commit's state throughout (never half of a unit: the publisher runs after the
  unit's writes are applied, between two awaits of the processing loop).
- `Replica`: the reader's side, in the API thread: read-only `PartitionProcessor`s rebuilt
  from a snapshot (the processor's own state is its `meta` entry, restored as after a restart;
  contracts installed without closing anything), cached per partition state version. The
  views run the same core code on it as they did on the live processors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterator, Mapping

from streams.store import WAL_PREFIX, entity_key, meta_key

__all__ = ["TableView", "Snapshot", "SnapshotPublisher", "Replica", "READ_TABLES"]

#: The tables the query API reads (the due index and the write-ahead chunks are the processor's own).
READ_TABLES = ("tickets", "services", "misc")
_MISSING = object()


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def _read(key: str) -> bool:
    """Whether the query API reads the key (the write-ahead chunks are the processor's own)."""
    return not key.startswith(WAL_PREFIX)


def stored(backend: Any, table: str) -> "TableView":
    """The table as it stands, as a view whose base shares the stored values (bytes in a Faust
    table, decoded when read): a copy of the key index only, not of the state."""
    t = backend.tables[table]
    data = getattr(t, "data", t)  # a Faust table's store, or a plain dict
    return TableView({key: value for key, value in data.items() if _read(key)})


class TableView:
    """A table as of one commit: `base` overridden by `delta` (a None value: deleted)."""

    __slots__ = ("_base", "_delta")

    def __init__(self, base: Mapping[str, str], delta: Mapping[str, str | None] | None = None) -> None:
        self._base = base
        self._delta = delta or {}

    def get(self, key: str) -> str | None:
        value = self._delta.get(key, _MISSING)
        return _text(self._base.get(key) if value is _MISSING else value)  # type: ignore[arg-type]

    def items(self) -> Iterator[tuple[str, str]]:
        delta = self._delta
        for key, stored_value in self._base.items():
            text = _text(stored_value) if key not in delta else None
            if text is not None:
                yield key, text
        for key, value in delta.items():
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def with_writes(self, writes: Mapping[str, str | None], fold: Callable[[], "TableView"]) -> "TableView":
        """A new view with `writes` applied; this one is left as it is. Once the delta outgrows an
        eighth of the base, the view is `fold()` instead: the table as it now stands (the caller's
        own copy, sharing the stored values with the table, so the views never hold a second copy
        of the state)."""
        if not writes:
            return self
        delta = {**self._delta, **writes}
        if len(delta) > max(1024, len(self._base) // 8):
            return fold()
        return TableView(self._base, delta)


@dataclass(frozen=True)
class Snapshot:
    """The worker's committed state as the query API sees it (immutable once published)."""

    version: int = 0
    tables: Mapping[str, TableView] = field(default_factory=lambda: {t: TableView({}) for t in READ_TABLES})
    #: partition -> version of its state (changes at every unit that changed the partition)
    partitions: Mapping[int, int] = field(default_factory=dict)
    #: customer_id -> {terms key -> (Contract, at)}, in the worker's installation order
    contracts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    contracts_version: int = 0
    #: input topic name -> partition -> URL of the worker that owns it (the query routes)
    routes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)


class SnapshotPublisher:
    """Runs on the processing loop: `publish(worker, committed)` after each unit of work.

    `committed`: partition -> the writes its unit applied ({(table, key): value}). When the
    set of processors changed (assignment, revocation, a processor rebuilt after a failed
    unit) the views are rebuilt from the tables (O(table), rare); otherwise only the writes
    are applied."""

    def __init__(self, route_topics: Callable[[], Mapping[str, Mapping[int, str]]] = dict) -> None:
        self.current = Snapshot()
        self.route_topics = route_topics
        self._holders: tuple[tuple[int, int], ...] | None = None

    def publish(self, worker: Any, committed: Mapping[int, Mapping[tuple[str, str], str | None]]) -> Snapshot:
        old = self.current
        holders = tuple(sorted((p, id(proc)) for p, proc in worker.processors.items()))
        if holders != self._holders:
            self._holders = holders
            tables = {name: stored(worker.backend, name) for name in READ_TABLES}
            partitions = {p: old.version + 1 for p, _ in holders}
        else:
            tables = dict(old.tables)
            partitions = dict(old.partitions)
            by_table: dict[str, dict[str, str | None]] = {}
            for partition, writes in committed.items():
                if writes:
                    partitions[partition] = old.version + 1
                for (table, key), value in writes.items():
                    if table in tables and _read(key):
                        by_table.setdefault(table, {})[key] = value
            for table, table_writes in by_table.items():
                tables[table] = tables[table].with_writes(table_writes, partial(stored, worker.backend, table))
        contracts, contracts_version = old.contracts, old.contracts_version
        if worker.contracts_version != contracts_version:
            contracts = {c: dict(terms) for c, terms in worker.contract_terms.items()}
            contracts_version = worker.contracts_version
        self.current = Snapshot(old.version + 1, tables, partitions, contracts, contracts_version,
                                self.route_topics())
        return self.current


class _SnapshotTables:
    """The `TableBackend` reads over a snapshot (what the report's ticket scan uses)."""

    def __init__(self, tables: Mapping[str, TableView]) -> None:
        self.tables = tables

    def get(self, table: str, key: str) -> str | None:
        return self.tables[table].get(key)

    def items(self, table: str) -> Iterator[tuple[str, str]]:
        return self.tables[table].items()

    def set(self, table: str, partition: int, key: str, value: str | None) -> None:
        raise TypeError("a snapshot is read-only")


class _SnapshotPartition:
    """The `PartitionStore` reads of one partition over a snapshot (read-only)."""

    recovered_writes = 0

    def __init__(self, backend: _SnapshotTables, partition: int) -> None:
        self.backend = backend
        self.partition = partition

    def get_ticket(self, ticket_id: str) -> str | None:
        return self.backend.get("tickets", ticket_id)

    def get_service(self, service_id: str) -> str | None:
        return self.backend.get("services", service_id)

    def get(self, kind: str, key: str) -> str | None:
        return self.backend.get("misc", entity_key(kind, key))

    def get_meta(self, name: str) -> str | None:
        return self.backend.get("misc", meta_key(self.partition, name))

    def _read_only(self, *args: Any) -> Any:
        raise TypeError("a snapshot is read-only")

    put_ticket = put_service = put = put_meta = schedule = pop_due = _read_only


class Replica:
    """Read-only processors over published snapshots, for the API thread only (not thread-safe:
    one API thread owns it). `view(snapshot)` gives an object with `processors` and `settings`
    as the views expect of the worker."""

    def __init__(self, catalog: Any, core_settings: Any, partitions: int,
                 owner_of: Callable[[str, int], int]) -> None:
        self.catalog = catalog
        self.core_settings = core_settings
        self.partitions = partitions
        self.owner_of = owner_of
        self._built: dict[int, tuple[tuple[int, int], Any]] = {}  # partition -> (versions, processor)
        # One backend for every replica processor, pointed at the snapshot being answered from: a
        # processor whose partition did not change since it was built reads the same values of its
        # own keys from any later snapshot, and a report's scan of the tickets reads one snapshot.
        self.backend = _SnapshotTables(Snapshot().tables)

    def processor(self, snapshot: Snapshot, partition: int) -> Any:
        """The partition's processor as of `snapshot`; None when the worker does not hold it.
        Answer from it before asking for another snapshot's (the shared backend follows the last)."""
        self.backend.tables = snapshot.tables
        state_version = snapshot.partitions.get(partition)
        if state_version is None:
            return None
        key = (state_version, snapshot.contracts_version)
        built = self._built.get(partition)
        if built is not None and built[0] == key:
            return built[1]
        proc = self._build(snapshot, partition)
        self._built[partition] = (key, proc)
        return proc

    def processors(self, snapshot: Snapshot) -> dict[int, Any]:
        for gone in set(self._built) - set(snapshot.partitions):
            del self._built[gone]
        return {p: self.processor(snapshot, p) for p in sorted(snapshot.partitions)}

    def _build(self, snapshot: Snapshot, partition: int) -> Any:
        from streams.core_adapter import PartitionProcessor

        n, owner_of = self.partitions, self.owner_of
        proc = PartitionProcessor(self.catalog, _SnapshotPartition(self.backend, partition),  # type: ignore[arg-type]
                                  lambda service_id: owner_of(service_id, n) == partition, self.core_settings)
        for terms in snapshot.contracts.values():
            for contract, at in terms.values():
                # `install`, not `upsert_contract`: the committed state already has the months the
                # live processor closed; a replica answers questions and closes nothing.
                proc.core.install(contract, at=at)
        return proc
