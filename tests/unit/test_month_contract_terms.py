"""SPEC §14 for a month's contract terms: explain-month and the report read the customer's terms in
force at the month's start (fee, services), not its latest terms. Golden
vectorize_pro_to_enterprise_midquarter (Pro from April, Enterprise from 15 May) with the Enterprise
fee raised to 2000.00 USD: May (started under Pro) shows Pro's 1000.00, June Enterprise's 2000.00."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.explain import explain_month_from_files
from streams.report.build import report_from_files

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "vectorize_pro_to_enterprise_midquarter"
UNTIL = datetime(2026, 7, 1, 2, tzinfo=timezone.utc)


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    text = (GOLDEN / "contracts.yaml").read_text()
    first_fee = 'monthly_fee: "1000.00"'
    assert text.count(first_fee) == 2
    path = tmp_path / "contracts.yaml"
    path.write_text(text.replace(first_fee, 'monthly_fee: "2000.00"', 1))  # the Enterprise terms come first
    return path


@pytest.mark.parametrize(("month", "plan", "fee"), [("2026-05", "pro", "1000.00"), ("2026-06", "enterprise", "2000.00")])
def test_a_month_reads_the_terms_in_force_at_its_start(contracts, month, plan, fee):
    text = explain_month_from_files(GOLDEN / "events.jsonl", contracts, "vz-up", "up-api", month)
    assert f"vectorize {plan} " in text and f"fee {fee} USD/month" in text, text
    report = report_from_files(GOLDEN / "events.jsonl", contracts, "vz-up", month, UNTIL)
    assert f"vectorize {plan} " in report.contract and f"up-api {fee} USD/month" in report.contract, report.contract
