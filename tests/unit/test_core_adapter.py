"""The stream adapter over the core: a partition processor that flushes to tables and is
rebuilt from them (a worker restart) must derive what replay derives."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.net_outcome import net_outcome

from events.codec import DeadLetterReason, decode
from policies.attainment import PARTIAL
from policies.catalog import default_catalog, load_catalog
from policies.contracts import load_contracts_yaml, parse_contracts
from streams.core_adapter import PartitionProcessor, RealCore
from streams.replay import replay_file
from streams.store import DictTableBackend, PartitionStore
from tests.golden_support import Scenario, scenarios
from tests.support import as_wire, at, decoded, wire

CATALOG = default_catalog()


def _stream_like(path: Path, restart_every: int) -> list[dict]:
    """Feed a scenario through a RealCore partition processor, flushing after every event and
    rebuilding the processor from the tables every `restart_every` events."""
    scenario = Scenario.load(path)
    catalog = load_catalog(scenario.catalog) if scenario.catalog is not None else CATALOG
    contracts = load_contracts_yaml(path / "contracts.yaml", catalog)
    backend = DictTableBackend()
    core = RealCore(catalog=catalog)

    def fresh():
        proc = core.new_processor(PartitionStore(backend, 0), lambda _s: True)
        for c in contracts:
            proc.upsert_contract((c, None))
        return proc

    proc = fresh()
    outputs = []
    lines = (path / "events.jsonl").read_bytes().splitlines()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        ev = decode(raw)
        if isinstance(ev, DeadLetterReason):
            continue
        if ev.type == "contract.upserted":
            try:
                _, contract = core.contract_of(ev)
            except ValueError:
                continue
            outputs += proc.upsert_contract(contract)
            continue
        out, _rejected = proc.apply(ev)
        outputs += out
        proc.persist()
        if n % restart_every == 0:
            proc = fresh()
    if scenario.until is not None:
        outputs += proc.advance_to(scenario.until)
    # One partition: its attainment partials go over the internal topic's encoding and are summed
    # per quarter by the function the attainment agent calls (a reported quarter reports once).
    final = [o for o in outputs if o.type != PARTIAL]
    quarters: dict[str, dict] = {}
    for o in outputs:
        if o.type == PARTIAL:
            partial = core.decode_internal(core.encode_internal(o))
            parts = quarters.setdefault(f"{partial.fields['customer_id']}|{partial.fields['quarter']}", {})
            if not parts.get("reported"):
                report = core.attainment_report(parts, partial, 1)
                if report is not None:
                    final.append(report)
                    parts["reported"] = True
    return sorted(core.encode(o).decode() for o in final if o.type != "dead_letter")


def _replayed(path: Path) -> list[dict]:
    scenario = Scenario.load(path)
    buf = io.BytesIO()
    replay_file(path / "events.jsonl", path / "contracts.yaml", scenario.until, buf, progress=None,
                catalog=load_catalog(scenario.catalog) if scenario.catalog is not None else None)
    return sorted(line.decode() for line in buf.getvalue().splitlines() if b"\"dead_letter\"" not in line)


@pytest.mark.parametrize("path", [p for p in scenarios() if not (p / "events.jsonl").read_text().count("contract.upserted")],
                         ids=lambda p: p.name)
@pytest.mark.parametrize("restart_every", [1, 3])
def test_partition_processor_restarted_from_tables_equals_replay(path, restart_every):
    # SPEC §5/§10: the same net outcome (replay sorts the file, the stream takes it in file order;
    # a file with late lines gives the stream a breach and its retraction that sorted replay never has)
    assert net_outcome(_stream_like(path, restart_every)) == net_outcome(_replayed(path))


def test_stream_bounds_event_time_by_the_wall_clock_plus_max_future():
    # SPEC §10: the adapter reads the wall clock (pinned here); the core gets the bound
    from datetime import datetime, timedelta, timezone

    from streams.store import PartitionStore as _PS
    from tests.support import contracts as _contracts, opened

    core = RealCore(catalog=CATALOG)
    wall = datetime(2026, 2, 3, 15, tzinfo=timezone.utc)
    core.clock = lambda: wall
    proc = core.new_processor(_PS(DictTableBackend(), 0), lambda _s: True)
    for c in _contracts("nm"):
        proc.upsert_contract((c, None))
    out, rejected = proc.apply(opened("T1", "nm", "high", "2026-02-03T16:00:01Z"))
    assert (out, rejected.reason) == ([], "future_timestamp") and proc.now is None
    out, rejected = proc.apply(opened("T1", "nm", "high", "2026-02-03T16:00:00Z"))
    assert rejected is None and proc.now == wall + timedelta(hours=1)


def test_a_snapshot_of_the_old_two_processor_layout_still_revises_its_closed_months():
    """A partition whose month closes were kept by the old monitoring half ("processor.monitoring")
    took that table back without each service's revision horizon, so a late event revised no closed
    month until the service's next close (review of 2026-12-06, S1: a June refund never withdrawn).

    Vectorize Pro, 1,000 USD, from June 1: outage of June 10 00:00-10:00 = 600 min > 216 (0.5 % of
    43,200), refund (600 - 216) / 43,200 x 1,000 = 8.89 USD; excluded late, June is met: withdrawn."""
    (contract,) = parse_contracts({"contracts": [{
        "customer_id": "v", "policy": "vectorize", "plan": "pro", "effective_from": "2026-06-01T00:00:00Z",
        "services": [{"service_id": "vz-v", "monthly_fee": "1000.00", "currency": "USD"}]}]}, CATALOG, source="test")
    core = RealCore(catalog=CATALOG)

    def late_exclusion(old_layout: bool) -> list[tuple]:
        backend = DictTableBackend()

        def fresh():
            proc = core.new_processor(PartitionStore(backend, 0), lambda _s: True)
            proc.upsert_contract((contract, None), release=False)
            return proc

        proc = fresh()
        for ev in (wire("outage.started", "2026-06-10T00:00:00Z", "s1", service_id="vz-v", outage_id="O1"),
                   wire("outage.resolved", "2026-06-10T10:00:00Z", "r1", service_id="vz-v", outage_id="O1")):
            assert proc.apply(decoded(ev))[1] is None
        closed = [as_wire(o) for o in proc.advance_to(at("2026-07-02T00:00:00Z"))]
        assert [o["refund_amount"] for o in closed if o["type"] == "refund.eligible"] == ["8.89"]
        proc.persist()
        if old_layout:  # the meta as the two-processor layout wrote it
            store = PartitionStore(backend, 0)
            snapshot = json.loads(store.get_meta(PartitionProcessor.TICKETS_META))
            store.put_meta(PartitionProcessor.MONITORING_META, json.dumps({"now": snapshot.pop("now_monitoring"),
                                                                           "close": snapshot["close"]}))
            snapshot["close"] = []
            store.put_meta(PartitionProcessor.TICKETS_META, json.dumps(snapshot))
            store.commit()
        out, _ = fresh().apply(decoded(wire("outage.classified", "2026-07-02T00:05:00Z", "k1", service_id="vz-v",
                                            outage_id="O1", cause="excluded", category="third_party")))
        return [(o["type"], o.get("revision")) for o in map(as_wire, out)]

    assert late_exclusion(old_layout=False) == [("uptime.month_closed", 2), ("refund.withdrawn", 2)]
    assert late_exclusion(old_layout=True) == late_exclusion(old_layout=False)  # before: []
