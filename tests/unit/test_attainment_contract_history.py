"""Quarterly attainment follows the customer's terms in force over time, not its latest terms
(SPEC §14: terms replaced by a later effective_from still hold for what happened before it;
docs/decisions.md, "Attainment"; review versions.md F8).

Hand figures, Rescale Basic Americas (06:00-18:00 America/Los_Angeles, Mon-Fri; US holidays), order
form urgent first response 1 business hour:
- R1 opened Tue 2026-04-14 16:00Z = 09:00 PDT: due 10:00 PDT = 17:00Z; the reply at 18:00Z is
  late: breached.
- R2 opened Wed 2026-04-15 16:00Z = 09:00 PDT, due 17:00Z; reply 16:30Z: met.
- So 2026-Q2 holds 2 measured, 1 met: 50.00 %, reported at the quarter's end + 1 h,
  2026-07-01T01:00Z.
- R3 opened Tue 2026-08-11 16:00Z = 09:00 PDT, reply 16:30Z: met; 2026-Q3: 1 of 1, 100.00 %, at
  2026-10-01T01:00Z.
"""
from __future__ import annotations

import itertools

import pytest

from policies.contracts import parse_contracts
from policies.processor import Processor, Settings
from tests.support import CATALOG, as_wire, at, opened, reply

RESCALE = {
    "policy": "rescale", "plan": "basic", "region": "americas", "holiday_country": "US",
    "services": [{"service_id": "rs-hpc", "monthly_fee": "2000.00", "currency": "USD"}],
    "overrides": {"targets": {
        "urgent": {"first_response": {"amount": 1, "unit": "hours", "clock": "business"}},
        "high": {"first_response": {"amount": 2, "unit": "hours", "clock": "business"}},
        "normal": {"first_response": {"amount": 8, "unit": "hours", "clock": "business"}},
        "low": {"first_response": {"amount": 1, "unit": "days", "clock": "business"}}}},
}
VECTORIZE = {"policy": "vectorize", "plan": "pro",
             "services": [{"service_id": "rs-hpc", "monthly_fee": "2000.00", "currency": "USD"}]}


def terms(*entries: tuple[dict, str | None]) -> list:
    return parse_contracts({"contracts": [
        {"customer_id": "rs", **body, **({"effective_from": start} if start else {})} for body, start in entries]},
        CATALOG)


APRIL_TICKETS = [opened("R1", "rs", "urgent", "2026-04-14T16:00:00Z"), reply("R1", "2026-04-14T18:00:00Z"),
                 opened("R2", "rs", "urgent", "2026-04-15T16:00:00Z"), reply("R2", "2026-04-15T16:30:00Z")]
AUGUST_TICKET = [opened("R3", "rs", "urgent", "2026-08-11T16:00:00Z"), reply("R3", "2026-08-11T16:30:00Z")]


def reports(contracts: list, events: list, until: str, install_order: list[int] | None = None) -> list[tuple]:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for i in install_order or range(len(contracts)):
        proc.install(contracts[i])
    out = []
    for ev in events:
        emitted, rejected = proc.apply(ev)
        assert rejected is None, rejected
        out.extend(emitted)
    out.extend(proc.advance_to(at(until)))
    return [(o["quarter"], o["occurred_at"], o["measured"], o["met"], o["attainment_percent"])
            for o in map(as_wire, out) if o["type"] == "sla.attainment_reported"]


def test_a_rescale_quarter_is_reported_after_the_customer_moved_to_another_policy() -> None:
    # Rescale from 2026-04-01, Vectorize from 2026-05-15: Q2 held Rescale terms for six weeks and its
    # two tickets were measured under them. Before the fix: no Q2 report at all (the latest terms
    # have no quarterly attainment).
    history = terms((RESCALE, "2026-04-01T00:00:00Z"), (VECTORIZE, "2026-05-15T00:00:00Z"))
    assert reports(history, APRIL_TICKETS, "2027-01-02T00:00:00Z") == [
        ("2026-Q2", "2026-07-01T01:00:00Z", 2, 1, "50.00")]  # and nothing after Q2


def test_quarters_before_a_move_to_rescale_are_not_reported() -> None:
    # Vectorize from 2026-01-01, Rescale from 2026-08-01: Q1 and Q2 had no Rescale terms. Before the
    # fix: reports for 2026-Q1 and Q2 (measured 0, null), from the first month of the whole history.
    history = terms((VECTORIZE, "2026-01-01T00:00:00Z"), (RESCALE, "2026-08-01T00:00:00Z"))
    assert reports(history, AUGUST_TICKET, "2026-10-02T00:00:00Z") == [
        ("2026-Q3", "2026-10-01T01:00:00Z", 1, 1, "100.00")]


def test_quarters_between_two_spells_of_rescale_terms_are_not_reported() -> None:
    # Rescale from 2026-04-01, Vectorize from 2026-05-15, Rescale again from 2026-08-01: Q2 and Q3.
    history = terms((RESCALE, "2026-04-01T00:00:00Z"), (VECTORIZE, "2026-05-15T00:00:00Z"),
                    (RESCALE, "2026-08-01T00:00:00Z"))
    expected = [("2026-Q2", "2026-07-01T01:00:00Z", 2, 1, "50.00"), ("2026-Q3", "2026-10-01T01:00:00Z", 1, 1, "100.00")]
    assert reports(history, APRIL_TICKETS + AUGUST_TICKET, "2026-10-02T00:00:00Z") == expected
    # Gap: Rescale until 2026-06-30, Vectorize for Q3, Rescale from 2026-10-01: Q3 is not reported.
    history = terms((RESCALE, "2026-04-01T00:00:00Z"), (VECTORIZE, "2026-07-01T00:00:00Z"),
                    (RESCALE, "2026-10-01T00:00:00Z"))
    assert reports(history, APRIL_TICKETS, "2027-01-02T00:00:00Z") == [
        ("2026-Q2", "2026-07-01T01:00:00Z", 2, 1, "50.00"), ("2026-Q4", "2027-01-01T01:00:00Z", 0, 0, None)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_reports_do_not_depend_on_the_order_the_terms_arrive_in(order: list[int]) -> None:
    history = terms((RESCALE, "2026-04-01T00:00:00Z"), (VECTORIZE, "2026-05-15T00:00:00Z"),
                    (RESCALE, "2026-08-01T00:00:00Z"))
    events = APRIL_TICKETS + AUGUST_TICKET
    assert reports(history, events, "2026-10-02T00:00:00Z", list(order)) == reports(
        history, events, "2026-10-02T00:00:00Z")


def test_undated_rescale_terms_start_at_the_first_instant_as_before() -> None:
    # Undated terms apply from the first instant the processor sees (April): Q2 is the first quarter.
    assert reports(terms((RESCALE, None)), APRIL_TICKETS, "2026-07-02T00:00:00Z") == [
        ("2026-Q2", "2026-07-01T01:00:00Z", 2, 1, "50.00")]


def test_a_move_at_a_quarter_start_ends_the_reports_with_the_quarter_before() -> None:
    history = terms((RESCALE, "2026-04-01T00:00:00Z"), (VECTORIZE, "2026-07-01T00:00:00Z"))
    assert reports(history, APRIL_TICKETS, "2027-01-02T00:00:00Z") == [
        ("2026-Q2", "2026-07-01T01:00:00Z", 2, 1, "50.00")]
