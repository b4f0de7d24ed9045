"""The open-clocks gauge (`slaproc_open_clocks`): counted by `policies.tickets.open_clock_count`,
kept per partition with its tables (streams/core_adapter.py) and set per provider by
`streams.metrics.refresh` — the path a scrape takes. After a restart: tests/unit/test_gauges_restart.py."""
from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from streams.core_adapter import RealCore
from streams.metrics import Metrics, refresh
from streams.store import DictTableBackend, PartitionStore
from tests.support import CATALOG, contracts, opened, reply, status


def test_the_gauge_counts_running_clocks_per_provider_not_paused_or_done_ones():
    proc = RealCore(catalog=CATALOG).new_processor(PartitionStore(DictTableBackend(), 0), lambda _s: True)
    installed = contracts("rsp", "nm")
    for c in installed:
        proc.upsert_contract((c, None))
    for ev in (
        # rescale urgent: first response (paused while waiting on the customer) + resolution
        opened("P1", "rsp", "urgent", "2026-02-02T10:00:00Z"),
        status("P1", "waiting_on_customer", "2026-02-02T10:30:00Z"),  # first response paused: not counted
        opened("P2", "rsp", "urgent", "2026-02-02T10:00:00Z"),         # both running
        # neural magic high: one first-response clock; N1's is met (done), N2's runs
        opened("N1", "nm", "high", "2026-02-02T10:00:00Z"),
        opened("N2", "nm", "high", "2026-02-02T10:00:00Z"),
        reply("N1", "2026-02-02T10:10:00Z"),
    ):
        assert proc.apply(ev)[1] is None
    proc.persist()
    worker = SimpleNamespace(processors={0: proc}, contracts={c.customer_id: (c,) for c in installed})
    metrics = Metrics(CollectorRegistry())
    refresh(metrics, worker)

    def gauge(provider: str) -> float | None:
        return metrics.registry.get_sample_value("slaproc_open_clocks", {"provider": provider})

    assert [(s.metric, s.done) for s in proc.store.ticket("N1").slots] == [("first_response", True)]
    assert gauge("rescale") == 3       # P1's resolution, P2's first response and resolution
    assert gauge("neural-magic") == 1  # N2's first response
    assert gauge("neptune") is None    # no contract, no clock: no series
