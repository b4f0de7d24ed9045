"""A service that a customer's later terms add in the middle of a month (SPEC §11, §14; review11 F1).

SPEC §11: "A month in which a contract starts or ends counts only the minutes it is in force
(`total_minutes`), and the fee is prorated by the same fraction." SPEC §14: a month is measured
under the terms in force at its start. When the terms at the month's start do not list the
service at all, the service's contract *starts* in that month, with the first terms that list it:
the month is measured under those terms from their `effective_from`, as the first month of a new
customer is (`Processor.contract_at`: before the first terms, the first).

Before the fix, such a month closed nothing for the service: customer `x` (terms A from 2026-06-01
with `vz-a` only, terms B from 2026-06-16 adding `vz-new`) got no `uptime.month_closed` and no
refund for June on `vz-new`, while customer `y`, whose only terms are B's from the same instant,
got its refund for the same outage. `explain-month` said "service 'vz-new' is not contracted by
'x' in 2026-06", and the report did not list the service.

Hand figures, Vectorize Pro (99.5 %), `vz-new` 600.00 USD a month, June 2026 (30 days, 43,200 min):
- in force from 2026-06-16T00:00Z: 15 days = 21,600 min (fraction 1/2); fee 600 x 1/2 = 300.00 USD
- outage N1 2026-06-20 00:00 - 10:00 = 600 min
- uptime 100 - 600 / 21,600 x 100 = 100 - 2.7777... = 97.2222... -> 97.22 < 99.50: not met
- threshold 21,600 x 0.5 / 100 = 108 min; excess 600 - 108 = 492 min
- refund 492 / 21,600 x 300 = 6.8333... -> 6.83 USD (claim deadline 2026-07-31T00:00:00Z)
July: B is in force at its start: the whole month (44,640 min), no outage: 100.00, met.
`vz-a` (listed by A from the 1st): June whole, 43,200 min, nothing down: 100.00, met (unchanged).
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from policies import uptime
from policies.explain import service_month
from streams.explain import explain_month_from_files
from streams.replay import Replayer, replay_file
from streams.report.build import report_from_files
from policies.contracts import load_contracts_yaml
from policies.processor import Settings
from tests.support import CATALOG

UTC = timezone.utc
UNTIL = datetime(2026, 8, 1, 2, tzinfo=UTC)

CONTRACTS = """\
contracts:
  - customer_id: x
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-a, monthly_fee: "500.00", currency: USD}
    effective_from: "2026-06-01T00:00:00Z"
  - customer_id: x
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-a, monthly_fee: "500.00", currency: USD}
      - {service_id: vz-new, monthly_fee: "600.00", currency: USD}
    effective_from: "2026-06-16T00:00:00Z"
  - customer_id: y
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-new, monthly_fee: "600.00", currency: USD}
    effective_from: "2026-06-16T00:00:00Z"
"""
EVENTS = [
    {"event_id": "n1", "type": "outage.started", "occurred_at": "2026-06-20T00:00:00Z", "service_id": "vz-new",
     "outage_id": "N1"},
    {"event_id": "n2", "type": "outage.resolved", "occurred_at": "2026-06-20T10:00:00Z", "service_id": "vz-new",
     "outage_id": "N1"},
]

JUNE_CLOSE = {"total_minutes": 21600, "downtime_minutes": 600, "uptime_percent": "97.22", "met": False}
JUNE_REFUND = {"threshold_minutes": 108, "excess_minutes": 492, "monthly_fee": "300.00", "refund_amount": "6.83",
               "currency": "USD", "claim_deadline": "2026-07-31T00:00:00Z"}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    contracts = tmp_path / "contracts.yaml"
    contracts.write_text(CONTRACTS)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return events, contracts


def replayed(files: tuple[Path, Path]) -> list[dict]:
    buf = io.BytesIO()
    replay_file(files[0], files[1], UNTIL, buf, progress=None)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def closes(out: list[dict], kind: str, customer: str, service: str) -> dict[str, dict]:
    return {o["month"]: o for o in out if o["type"] == kind and o["customer_id"] == customer
            and o["service_id"] == service}


@pytest.mark.parametrize("customer", ["x", "y"])
def test_the_month_a_service_is_added_counts_from_its_terms(files, customer):
    """Before the fix `x` had no June close and no refund on vz-new (y: 6.83 USD)."""
    out = replayed(files)
    months = closes(out, "uptime.month_closed", customer, "vz-new")
    assert {k: months["2026-06"][k] for k in JUNE_CLOSE} == JUNE_CLOSE
    assert months["2026-07"]["total_minutes"] == 44640 and months["2026-07"]["met"] is True
    refund = closes(out, "refund.eligible", customer, "vz-new")
    assert set(refund) == {"2026-06"}
    assert {k: refund["2026-06"][k] for k in JUNE_REFUND} == JUNE_REFUND


def test_the_service_listed_from_the_month_start_is_unchanged(files):
    june = closes(replayed(files), "uptime.month_closed", "x", "vz-a")["2026-06"]
    assert (june["total_minutes"], june["downtime_minutes"], june["uptime_percent"]) == (43200, 0, "100.00")


def test_explain_month_report_and_the_query_api_agree(files):
    events, contracts = files
    text = explain_month_from_files(events, contracts, "x", "vz-new", "2026-06", until=UNTIL)
    assert "total minutes in force    = 21600 min" in text, text
    assert "-> rounded half-up 97.22 %" in text and "-> 6.83 USD" in text, text
    report = report_from_files(events, contracts, "x", "2026-06", UNTIL)
    by_service = {s.service_id: s for s in report.services}
    assert set(by_service) == {"vz-a", "vz-new"}
    new = by_service["vz-new"]
    assert str(new.closed["uptime_percent"]) == "97.22" and str(new.refund["refund_amount"]) == "6.83"
    assert str(new.refund["monthly_fee"]) == "300.00"
    assert str(by_service["vz-a"].closed["uptime_percent"]) == "100.00"
    # the query API's per-subscriber rows (GET /services/vz-new/months/2026-06)
    rep = Replayer(load_contracts_yaml(contracts, CATALOG), CATALOG, Settings(prune=False))
    rep.feed_file(events)
    rep.finish(UNTIL, UNTIL)
    proc = rep.processor
    answer = service_month(proc.store.service("vz-new"), "2026-06", uptime.month_bounds("2026-06")[1],
                           proc.subscriber_terms("vz-new", "2026-06"))
    rows = {r["customer_id"]: r for r in answer["customers"]}
    assert set(rows) == {"x", "y"}
    for row in rows.values():
        assert (row["total_minutes"], row["uptime_percent"], row["refund_amount"], row["closed"]) == \
            (21600.0, "97.22", "6.83", True)


# ---- F1b: the uptime commitment starts mid-month ------------------------------------------------
# Customer z lists vz-new from 2026-06-01 under Neptune Basic (no uptime commitment), then from
# 2026-06-16 under Vectorize Pro (99.5 %, 600.00 USD). The contract with an uptime commitment (SPEC
# §8: the rules apply to every contract with one) starts on the 16th: June counts from then, as
# for x and y above (the same outage N1): 21,600 min, 97.22 %, refund 6.83 USD. Before the fix June
# closed nothing for z (the terms at its start commit to no uptime), so no refund.

COMMITMENT_LATER = """\
contracts:
  - customer_id: z
    policy: neptune
    plan: basic
    timezone: Europe/Berlin
    holiday_country: DE
    holiday_subdivision: BE
    services:
      - {service_id: vz-new, monthly_fee: "600.00", currency: USD}
    effective_from: "2026-06-01T00:00:00Z"
  - customer_id: z
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-new, monthly_fee: "600.00", currency: USD}
    effective_from: "2026-06-16T00:00:00Z"
"""


def test_the_month_an_uptime_commitment_starts_counts_from_it(files, tmp_path):
    events, _ = files
    contracts = tmp_path / "commitment_later.yaml"
    contracts.write_text(COMMITMENT_LATER)
    out = replayed((events, contracts))
    months = closes(out, "uptime.month_closed", "z", "vz-new")
    assert {k: months["2026-06"][k] for k in JUNE_CLOSE} == JUNE_CLOSE
    assert months["2026-07"]["total_minutes"] == 44640 and months["2026-07"]["met"] is True
    refund = closes(out, "refund.eligible", "z", "vz-new")
    assert {k: refund["2026-06"][k] for k in JUNE_REFUND} == JUNE_REFUND
    text = explain_month_from_files(events, contracts, "z", "vz-new", "2026-06", until=UNTIL)
    assert "vectorize pro" in text and "-> 6.83 USD" in text, text
    report = report_from_files(events, contracts, "z", "2026-06", UNTIL)
    assert [(s.service_id, str(s.refund["refund_amount"])) for s in report.services] == [("vz-new", "6.83")]
