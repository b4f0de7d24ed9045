"""SPEC §14 for months: a month is measured under the catalog version in force at its start, in the
month close (`uptime.month_closed`), in `explain-month` and in the month report alike. A version 2
of the Vectorize catalog raises Pro's uptime commitment from 99.5 % to 99.9 %; golden
report_vz_pro_april's April (uptime 99.31 %) is then judged against 99.5 % when version 2 takes
effect after April 1st, against 99.9 % when it takes effect on April 1st 00:00 UTC or before."""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import policies
from policies.catalog import load_catalog
from streams.explain import explain_month_from_files
from streams.replay import replay_file
from streams.report.build import report_from_files

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_vz_pro_april"
UNTIL = datetime(2026, 5, 1, 2, tzinfo=timezone.utc)


def catalog_with_version_2(tmp_path: Path, effective_from: str) -> Path:
    """The packaged catalog plus `vectorize@2027.1.1.yaml`: Pro's commitment 99.5 -> 99.9."""
    packaged = Path(policies.__file__).resolve().parent / "catalog"
    directory = tmp_path / "catalog"
    shutil.copytree(packaged, directory)
    text = (packaged / "vectorize.yaml").read_text()
    text, n = re.subn(r'(?m)^catalog_version: .*$', f'catalog_version: "2027.1.1"\neffective_from: "{effective_from}"', text)
    assert n == 1
    text, n = re.subn(r'uptime_commitment_percent: "99.5"', 'uptime_commitment_percent: "99.9"', text)
    assert n == 1
    (directory / "vectorize@2027.1.1.yaml").write_text(text)
    return directory


@pytest.mark.parametrize(("effective_from", "commitment"), [
    ("2026-04-01T00:00:00Z", "99.9"),   # in force at April's start
    ("2026-03-15T00:00:00Z", "99.9"),
    ("2026-04-01T00:01:00Z", "99.5"),   # a minute later: April stays on version 1
    ("2026-04-20T00:00:00Z", "99.5"),
])
def test_a_month_is_measured_under_the_version_in_force_at_its_start(tmp_path, effective_from, commitment):
    catalog = load_catalog(catalog_with_version_2(tmp_path, effective_from))
    out = tmp_path / "out.jsonl"
    with out.open("wb") as fh:
        replay_file(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", UNTIL, fh, catalog=catalog)
    closes = [e for e in map(json.loads, out.read_text().splitlines())
              if e["type"] == "uptime.month_closed" and e["month"] == "2026-04"]
    assert closes and {Decimal(str(c["commitment_percent"])) for c in closes} == {Decimal(commitment)}
    text = explain_month_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "rep-api",
                                    "2026-04", catalog)
    assert re.search(rf"uptime commitment {re.escape(commitment)}0? %", text), text
    report = report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-04", UNTIL,
                               catalog)
    assert {Decimal(str(s.closed["commitment_percent"])) for s in report.services} == {Decimal(commitment)}
