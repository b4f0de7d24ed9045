"""SPEC §14: the catalog keeps every published version of a policy; a ticket is measured
under the version in force when it was opened, a month under the one in force at its start,
and a new version never rewrites the past, also across a restart of the stream worker."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from events.contract import ContractTerms
from events.models import TicketOpened, TicketReplied
from policies.catalog import CATALOG_DIR, CatalogError, load_catalog
from policies.contracts import contract_from_terms
from policies.processor import Processor
from streams.core_adapter import RealCore
from streams.store import DictTableBackend, PartitionStore

UTC = timezone.utc
GOLDEN_CATALOG = Path(__file__).parents[1] / "golden" / "nm_catalog_version_midmonth" / "catalog"
V1, V2 = "2026.11.1", "2026.11.2"
V2_FROM = datetime(2026, 10, 21, 4, tzinfo=UTC)  # 2026-10-21T00:00:00-04:00, the second version's effective_from


def _terms(**extra) -> ContractTerms:
    return ContractTerms.model_validate({"customer_id": "nm-ver", "policy": "neural-magic", "plan": "enterprise",
                                         "timezone": "America/New_York", **extra})


def _opened(ticket: str, at: datetime, priority: str = "high") -> TicketOpened:
    return TicketOpened(event_id=f"{ticket}-open", occurred_at=at, ticket_id=ticket, customer_id="nm-ver",
                        priority=priority)


def _replied(ticket: str, at: datetime) -> TicketReplied:
    return TicketReplied(event_id=f"{ticket}-reply", occurred_at=at, ticket_id=ticket, author="provider")


def _only_v1(tmp_path: Path) -> Path:
    d = tmp_path / "v1"
    d.mkdir()
    shutil.copy(GOLDEN_CATALOG / "neural-magic.yaml", d)
    return d


def _write_v2(directory: Path, **changes) -> None:
    data = yaml.safe_load((GOLDEN_CATALOG / f"neural-magic@{V2}.yaml").read_text())
    data.update(changes)
    (directory / f"neural-magic@{data['catalog_version']}.yaml").write_text(yaml.safe_dump(data))


# --- the catalog ----------------------------------------------------------------------------

def test_version_in_force_switches_at_effective_from_inclusive():
    catalog = load_catalog(GOLDEN_CATALOG)
    assert catalog.versions("neural-magic") == ((V1, None), (V2, V2_FROM))
    assert catalog.version("neural-magic") == V2  # the latest
    assert catalog.version_at("neural-magic", V2_FROM - timedelta(microseconds=1)) == V1
    assert catalog.version_at("neural-magic", V2_FROM) == V2
    assert catalog.version_at("neural-magic", datetime(1990, 1, 1, tzinfo=UTC)) == V1


def test_resolve_under_a_version_gives_that_versions_targets():
    catalog = load_catalog(GOLDEN_CATALOG)
    terms = _terms()
    old = catalog.resolve(terms, at=V2_FROM - timedelta(minutes=1))
    new = catalog.resolve(terms, at=V2_FROM)
    assert (old.policy_version, old.targets("high")[0].amount) == (V1, Decimal(2))
    assert (new.policy_version, new.targets("high")[0].amount) == (V2, Decimal(1))
    assert catalog.resolve(terms, version=V1) == old
    with pytest.raises(KeyError, match="no catalog version '2030.1.1'"):
        catalog.resolve(terms, version="2030.1.1")


def test_the_packaged_catalog_is_one_version_per_policy():
    catalog = load_catalog(CATALOG_DIR)
    for policy in catalog.policies:
        assert len(catalog.versions(policy)) == 1


@pytest.mark.parametrize("changes, problem", [
    ({"effective_from": None}, "needs effective_from"),
    ({"effective_from": "2026-10-21T00:00:00"}, "needs an offset"),
    ({"catalog_version": "2026.11.1"}, "does not match the file name|published twice"),
])
def test_a_version_history_that_is_not_one_is_refused(tmp_path, changes, problem):
    d = _only_v1(tmp_path)
    _write_v2(d, **changes)
    with pytest.raises(CatalogError, match=problem):
        load_catalog(d)


def test_the_first_version_takes_no_effective_from(tmp_path):
    d = tmp_path / "only"
    d.mkdir()
    _write_v2(d)
    with pytest.raises(CatalogError, match="first of neural-magic: it takes no effective_from"):
        load_catalog(d)


def test_a_later_version_must_take_effect_after_the_earlier(tmp_path):
    d = _only_v1(tmp_path)
    _write_v2(d)
    _write_v2(d, catalog_version="2027.1.1", effective_from="2026-10-01T00:00:00Z")
    with pytest.raises(CatalogError, match="2027.1.1 of neural-magic takes effect 2026-10-01T00:00:00\\+00:00, not after"):
        load_catalog(d)


# --- the processor --------------------------------------------------------------------------

def test_a_ticket_opened_before_the_new_version_keeps_the_old_targets_to_the_end():
    catalog = load_catalog(GOLDEN_CATALOG)
    proc = Processor(catalog)
    proc.install(contract_from_terms(_terms(), catalog))
    # opened a minute before v2: its clock runs from Wednesday 08:00 New York, entirely under v2's time
    proc.apply(_opened("T-old", V2_FROM - timedelta(minutes=1)))
    proc.apply(_opened("T-new", V2_FROM))
    out = proc.advance_to(datetime(2026, 10, 22, tzinfo=UTC))
    breaches = {o.key: (o.fields["policy_version"], o.fields["due_at"]) for o in out if o.type == "sla.breached"}
    assert breaches == {"T-old": (V1, datetime(2026, 10, 21, 14, tzinfo=UTC)),   # 08:00 + 2 bh, New York
                        "T-new": (V2, datetime(2026, 10, 21, 13, tzinfo=UTC))}   # 08:00 + 1 bh


def test_a_month_is_measured_under_the_version_in_force_at_its_start(tmp_path):
    """Vectorize Pro (99.5 %): a version raising the commitment to 99.9 % from mid-April leaves
    April under 99.5 % and measures May under 99.9 %."""
    d = tmp_path / "vz"
    d.mkdir()
    shutil.copy(CATALOG_DIR / "vectorize.yaml", d)
    data = yaml.safe_load((CATALOG_DIR / "vectorize.yaml").read_text())
    data.update(catalog_version="2027.4.1", effective_from="2026-04-15T00:00:00Z")
    data["plans"]["pro"]["uptime_commitment_percent"] = 99.9
    (d / "vectorize@2027.4.1.yaml").write_text(yaml.safe_dump(data))
    catalog = load_catalog(d)
    terms = ContractTerms.model_validate({
        "customer_id": "vz", "policy": "vectorize", "plan": "pro", "effective_from": "2026-04-01T00:00:00Z",
        "services": [{"service_id": "vz-api", "monthly_fee": "1000", "currency": "USD"}]})
    proc = Processor(catalog)
    proc.install(contract_from_terms(terms, catalog))
    out = proc.advance_to(datetime(2026, 6, 1, 2, tzinfo=UTC))
    closed = {o.fields["month"]: o.fields["commitment_percent"] for o in out if o.type == "uptime.month_closed"}
    assert {m: str(c) for m, c in closed.items()} == {"2026-04": "99.50", "2026-05": "99.90"}


# --- restart: the stored ticket keeps its version ---------------------------------------------

def _partition(catalog_dir: Path, backend: DictTableBackend):
    core = RealCore(catalog=load_catalog(catalog_dir))
    core.clock = lambda: datetime(2026, 10, 25, tzinfo=UTC)  # pinned: event times are bounded by it
    proc = core.new_processor(PartitionStore(backend, 0), lambda _s: True)
    proc.upsert_contract((contract_from_terms(_terms(), core.catalog), datetime(2026, 10, 1, tzinfo=UTC)))
    return proc


def test_a_worker_restarted_with_a_newer_catalog_keeps_old_tickets_on_their_version(tmp_path):
    backend = DictTableBackend()
    before = _partition(_only_v1(tmp_path), backend)
    # Tuesday 19:30 New York: 30 min of Tuesday, then Wednesday from 08:00
    before.apply(_opened("T-2", datetime(2026, 10, 20, 23, 30, tzinfo=UTC)))
    before.persist()
    after = _partition(GOLDEN_CATALOG, backend)  # the deployment added version 2 (High: 1 business hour)
    out, _ = after.apply(_replied("T-2", datetime(2026, 10, 21, 13, tzinfo=UTC)))  # Wednesday 09:00
    out += after.advance_to(datetime(2026, 10, 22, tzinfo=UTC))
    assert [(o.type, o.fields["policy_version"], o.fields["due_at"], o.fields["elapsed_minutes"])
            for o in out if o.type in ("sla.met", "sla.breached")] == [
        ("sla.met", V1, datetime(2026, 10, 21, 13, 30, tzinfo=UTC), 90)]  # v2 would have breached at 12:30


def test_a_contract_is_checked_against_every_version_it_can_meet(tmp_path):
    """A v2 that renames the plan: a contract on the old name fails on v2 (it would meet v2 on
    every ticket opened from then on); one on the new name is valid from the month after v2's
    start on, and fails on v1 before. The error names the version."""
    d = _only_v1(tmp_path)
    data = yaml.safe_load((GOLDEN_CATALOG / f"neural-magic@{V2}.yaml").read_text())
    data["plans"] = {"enterprise-plus": data["plans"]["enterprise"]}
    (d / f"neural-magic@{V2}.yaml").write_text(yaml.safe_dump(data))
    catalog = load_catalog(d)
    assert catalog.problems(_terms())[0][1].endswith(f"(catalog {V2})")
    # from v2's instant: its first month is measured from 1 October, still under v1
    assert catalog.problems(_terms(plan="enterprise-plus", effective_from="2026-10-21T04:00:00Z"))[0][1].endswith(
        f"(catalog {V1})")
    assert catalog.problems(_terms(plan="enterprise-plus", effective_from="2026-11-01T00:00:00Z")) == []
