"""SPEC §14, contract history: a customer's terms by effective_from. A later contract adds the
next terms from its instant, the earlier ones stay for what happened before it; tickets use the
terms in force at their opening, months those at their start (golden
vectorize_pro_to_enterprise_midquarter has the hand arithmetic)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from policies.catalog import ContractError
from policies.contracts import history_key, parse_contracts
from policies.processor import Processor, Settings
from policies.tickets import TicketState
from streams.core_adapter import RealCore
from tests.support import CATALOG, as_wire, at, decoded, wire

GOLDEN = Path(__file__).parents[1] / "golden" / "vectorize_pro_to_enterprise_midquarter"
UPGRADE = at("2026-05-15T00:00:00Z")


def terms(plan: str, since: str | None, **extra) -> dict:
    entry = {"customer_id": "vz-up", "policy": "vectorize", "plan": plan, "timezone": "America/New_York",
             "services": [{"service_id": "up-api", "monthly_fee": "1000.00", "currency": "USD"}], **extra}
    if plan == "enterprise":
        entry.setdefault("overrides", {"uptime_commitment_percent": "99.9"})
    if since is not None:
        entry["effective_from"] = since
    return entry


def history(proc: Processor) -> list[tuple[str, str | None, str | None]]:
    return [(c.plan.plan, c.effective_from.isoformat() if c.effective_from else None,
             c.plan.uptime_commitment_percent and str(c.plan.uptime_commitment_percent))
            for c in proc.histories["vz-up"]]


def installed(*entries: dict) -> Processor:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for entry in entries:
        proc.install(parse_contracts({"contracts": [entry]}, CATALOG)[0])
    return proc


def test_a_later_effective_from_appends_an_earlier_inserts_the_same_replaces():
    proc = installed(terms("pro", "2026-04-01T00:00:00Z"), terms("enterprise", "2026-05-15T00:00:00Z"))
    assert [h[:2] for h in history(proc)] == [("pro", "2026-04-01T00:00:00+00:00"),
                                              ("enterprise", "2026-05-15T00:00:00+00:00")]
    proc.install(parse_contracts({"contracts": [terms("starter", "2026-01-01T00:00:00Z")]}, CATALOG)[0])
    proc.install(parse_contracts({"contracts": [terms("enterprise", "2026-05-15T00:00:00Z",
                                                      overrides={"uptime_commitment_percent": "99.95"})]},
                                 CATALOG)[0])
    assert history(proc) == [("starter", "2026-01-01T00:00:00+00:00", "99"),
                             ("pro", "2026-04-01T00:00:00+00:00", "99.5"),
                             ("enterprise", "2026-05-15T00:00:00+00:00", "99.95")]
    # the latest terms are the customer's entry; the first month is the history's first
    assert proc.contracts["vz-up"].plan.plan == "enterprise"
    assert proc.contracts["vz-up"].start_month == "2026-01"


def test_the_terms_in_force_at_an_instant():
    proc = installed(terms("enterprise", "2026-05-15T00:00:00Z"), terms("pro", "2026-04-01T00:00:00Z"))
    plan_at = lambda t: proc.contract_at("vz-up", at(t)).plan.plan  # noqa: E731
    assert plan_at("2026-03-01T00:00:00Z") == "pro"   # before the first terms: the first (as with one contract)
    assert plan_at("2026-05-14T23:59:59Z") == "pro"
    assert plan_at("2026-05-15T00:00:00Z") == "enterprise"  # from the instant itself
    assert proc.plan_at("vz-up", UPGRADE).uptime_commitment_percent == proc.contracts["vz-up"].plan.uptime_commitment_percent


def test_undated_terms_come_first_and_a_second_undated_one_replaces_them():
    proc = installed(terms("enterprise", "2026-05-15T00:00:00Z"), terms("pro", None), terms("starter", None))
    assert [h[:2] for h in history(proc)] == [("starter", None), ("enterprise", "2026-05-15T00:00:00+00:00")]


def golden_events() -> list[dict]:
    return [json.loads(line) for line in (GOLDEN / "events.jsonl").read_text().splitlines() if line.strip()]


def upserts(order: list[str]) -> list[dict]:
    """The golden's two terms as contract.upserted events, both dated 2026-03-20, in `order`."""
    contracts = {c["plan"]: c for c in yaml.safe_load((GOLDEN / "contracts.yaml").read_text())["contracts"]}
    return [wire("contract.upserted", "2026-03-20T00:00:00Z", event_id=f"c-{plan}", **contracts[plan])
            for plan in order]


def stream_outputs(first: list[dict]) -> list[dict]:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    out = []
    for obj in first + golden_events():
        emitted, rejected = proc.apply(decoded(obj))
        assert rejected is None, rejected
        out += emitted
    out += proc.advance_to(at("2026-07-01T02:00:00Z"))
    return [as_wire(o) for o in out if o.type != "sla.at_risk"]


def test_the_later_terms_arriving_first_change_nothing():
    pro_first = stream_outputs(upserts(["pro", "enterprise"]))
    enterprise_first = stream_outputs(upserts(["enterprise", "pro"]))
    assert pro_first == enterprise_first
    by_ticket = {(o["ticket_id"], o["binding"]): (o["type"], o["plan"]) for o in pro_first if "ticket_id" in o}
    assert by_ticket == {("UP-1", False): ("sla.breached", "pro"), ("UP-1", True): ("sla.met", "pro"),
                         ("UP-2", False): ("sla.breached", "enterprise"),
                         ("UP-2", True): ("sla.breached", "enterprise")}
    months = {o["month"]: o["commitment_percent"] for o in pro_first if o["type"] == "uptime.month_closed"}
    assert months == {"2026-04": "99.50", "2026-05": "99.50", "2026-06": "99.90"}


def test_a_ticket_reloaded_from_its_state_keeps_the_terms_of_its_opening():
    proc = installed(terms("pro", "2026-04-01T00:00:00Z"), terms("enterprise", "2026-05-15T00:00:00Z"))
    proc.apply(decoded(wire("ticket.opened", "2026-05-14T14:00:00Z", ticket_id="UP-1", customer_id="vz-up",
                            priority="urgent", environment="production")))
    state = proc.store.ticket("UP-1")
    reloaded = TicketState.from_json(state.to_json())
    assert proc.ticket_plan(reloaded).plan == "pro"


def test_a_file_lists_a_customer_once_per_effective_from():
    both = parse_contracts({"contracts": [terms("pro", "2026-04-01T00:00:00Z"),
                                          terms("enterprise", "2026-05-15T00:00:00Z")]}, CATALOG)
    assert [c.plan.plan for c in both] == ["pro", "enterprise"]
    with pytest.raises(ContractError) as err:
        parse_contracts({"contracts": [terms("pro", "2026-04-01T00:00:00Z"),
                                       terms("enterprise", "2026-04-01T00:00:00Z")]}, CATALOG, source="c.yaml")
    assert "c.yaml: contracts[1] (customer_id='vz-up'): customer_id: duplicate customer_id 'vz-up' " \
           "(also contracts[0]) with the same effective_from (2026-04-01T00:00:00+00:00)" in str(err.value)


def test_the_contracts_table_keeps_every_terms_and_rebuilds_the_same_history():
    """The stream's contracts table (streams/app.py): one record per customer and effective_from,
    written in arrival order; a restarted worker (or a new partition's processor) installs every
    record and gets the same history, whatever the order."""
    core = RealCore()
    table: dict[str, bytes] = {}
    for obj in upserts(["enterprise", "pro"]):
        raw = json.dumps(obj).encode()
        _customer, value = core.contract_of(core.decode(raw))
        table[core.contract_key(value)] = raw
    assert sorted(table) == ["vz-up@2026-04-01T00:00:00+00:00", "vz-up@2026-05-15T00:00:00+00:00"]
    rebuilt = []
    for records in (list(table.values()), list(reversed(table.values()))):
        proc = Processor(CATALOG)
        values = [core.contract_of(core.decode(raw))[1] for raw in records]
        for value in values:
            proc.upsert_contract(value)
        rebuilt.append(history(proc))
    assert rebuilt[0] == rebuilt[1] == [("pro", "2026-04-01T00:00:00+00:00", "99.5"),
                                        ("enterprise", "2026-05-15T00:00:00+00:00", "99.9")]
    undated = parse_contracts({"contracts": [terms("pro", None)]}, CATALOG)[0]
    assert history_key(undated) == "vz-up"  # the key every contract had before histories
    paris = parse_contracts({"contracts": [terms("pro", "2026-04-01T02:00:00+02:00")]}, CATALOG)[0]
    assert history_key(paris) == "vz-up@2026-04-01T00:00:00+00:00"  # one key per instant
