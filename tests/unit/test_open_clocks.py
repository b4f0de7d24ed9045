"""The open-clocks gauge (`slaproc_open_clocks`): counted by `policies.tickets.open_clock_count`,
set per provider by `streams.metrics.refresh` — the path a scrape takes."""
from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics, refresh
from tests.support import Run, opened, reply, status


def test_the_gauge_counts_running_clocks_per_provider_not_paused_or_done_ones():
    run = Run("rsp", "nm", thresholds=())
    run.feed(
        # rescale urgent: first response (paused while waiting on the customer) + resolution
        opened("P1", "rsp", "urgent", "2026-02-02T10:00:00Z"),
        status("P1", "waiting_on_customer", "2026-02-02T10:30:00Z"),  # first response paused: not counted
        opened("P2", "rsp", "urgent", "2026-02-02T10:00:00Z"),         # both running
        # neural magic high: one first-response clock; N1's is met (done), N2's runs
        opened("N1", "nm", "high", "2026-02-02T10:00:00Z"),
        opened("N2", "nm", "high", "2026-02-02T10:00:00Z"),
        reply("N1", "2026-02-02T10:10:00Z"),
    )
    proc = run.proc
    worker = SimpleNamespace(processors={0: SimpleNamespace(store=proc.store)},
                             contracts={cid: (entry.plan,) for cid, entry in proc.contracts.items()})
    metrics = Metrics(CollectorRegistry())
    refresh(metrics, worker)

    def gauge(provider: str) -> float | None:
        return metrics.registry.get_sample_value("slaproc_open_clocks", {"provider": provider})

    assert [(s.metric, s.done) for s in proc.store.ticket("N1").slots] == [("first_response", True)]
    assert gauge("rescale") == 3       # P1's resolution, P2's first response and resolution
    assert gauge("neural-magic") == 1  # N2's first response
