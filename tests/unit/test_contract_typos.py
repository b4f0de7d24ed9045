"""Contracts files are written by people: an unknown key is an error naming it and the
closest known key, at any depth; a holiday country whose holidays differ by subdivision,
given without one, gets a warning naming the subdivisions. Events stay tolerant."""
from __future__ import annotations

import pytest
import yaml

from events.contract import ContractTerms
from events.models import ContractUpserted
from policies.contracts import ContractError, contract_warnings, parse_contracts

NEPTUNE = {"customer_id": "acme", "policy": "neptune", "plan": "basic", "timezone": "Europe/London",
           "holiday_country": "GB", "holiday_subdivision": "ENG",
           "services": [{"service_id": "acme-api", "monthly_fee": "10.00", "currency": "EUR"}]}


def _parse(entry: dict) -> None:
    parse_contracts({"contracts": [entry]}, source="contracts.yaml")


@pytest.mark.parametrize("path, typo, suggestion, loc", [
    ((), "overides", "overrides", "overides"),
    ((), "holiday_subdivsion", "holiday_subdivision", "holiday_subdivsion"),
    (("overrides",), "business_hourz", "business_hours", "overrides.business_hourz"),
    (("overrides",), "uptime_commitment_percnt", "uptime_commitment_percent", "overrides.uptime_commitment_percnt"),
    (("services", 0), "curency", "currency", "services[0].curency"),
    (("overrides", "targets", "critical", "first_response"), "clok", "clock",
     "overrides.targets.critical.first_response.clok"),
])
def test_an_unknown_key_is_an_error_naming_it_and_the_closest_known_key(path, typo, suggestion, loc) -> None:
    entry = yaml.safe_load(yaml.safe_dump(NEPTUNE))
    entry.setdefault("overrides", {"targets": {"critical": {"first_response": {"amount": 2, "unit": "hours"}}}})
    where = entry
    for step in path:
        where = where[step]
    where[typo] = "x"
    with pytest.raises(ContractError) as raised:
        _parse(entry)
    assert str(raised.value) == (f"contracts.yaml: contracts[0] (customer_id='acme'): {loc}: "
                                 f"unknown key {typo!r}; did you mean {suggestion!r}?")


def test_every_typo_of_an_entry_is_reported_at_once() -> None:
    entry = dict(NEPTUNE, overides={}, holiday_subdivsion="ENG")
    with pytest.raises(ContractError) as raised:
        _parse(entry)
    assert "'overides'" in str(raised.value) and "'holiday_subdivsion'" in str(raised.value)


def test_a_key_nothing_resembles_lists_the_known_keys() -> None:
    with pytest.raises(ContractError, match=r"unknown key 'zzz'; known keys: .*customer_id.*services"):
        _parse(dict(NEPTUNE, zzz=1))


def test_an_unknown_top_level_key_of_the_file_is_an_error() -> None:
    with pytest.raises(ContractError, match=r"contracts.yaml: contract: unknown key 'contract'"):
        parse_contracts({"contracts": [NEPTUNE], "contract": []}, source="contracts.yaml")


def test_a_valid_file_still_loads() -> None:
    [contract] = parse_contracts({"contracts": [NEPTUNE]}, source="contracts.yaml")
    assert contract.customer_id == "acme"


def test_a_contract_event_stays_tolerant_of_extra_fields() -> None:
    event = ContractUpserted.model_validate(dict(NEPTUNE, event_id="c1", type="contract.upserted",
                                                 occurred_at="2026-01-01T00:00:00Z", crm_owner="jane"))
    assert event.customer_id == "acme"


def test_a_country_with_regional_holidays_and_no_subdivision_gets_a_warning_naming_them() -> None:
    [warning] = contract_warnings([ContractTerms(**dict(NEPTUNE, holiday_subdivision=None))])
    assert warning.startswith("holiday_country 'GB' has holidays that differ by subdivision (ENG, NIR, SCT, WLS)")
    assert warning.endswith("(customer_id 'acme')")


def test_warnings_are_one_line_per_country_however_many_contracts() -> None:
    many = [ContractTerms(**dict(NEPTUNE, customer_id=f"c{i}", holiday_subdivision=None)) for i in range(500)]
    [warning] = contract_warnings(many)
    assert warning.endswith("(customer_id 'c0', 'c1', 'c2' and 497 more)")


@pytest.mark.parametrize("terms", [dict(NEPTUNE), dict(NEPTUNE, holiday_country="JP", holiday_subdivision=None),
                                   dict(NEPTUNE, holiday_country=None, holiday_subdivision=None)],
                         ids=["subdivision-given", "no-regional-holidays", "no-country"])
def test_no_warning_where_nothing_is_ambiguous(terms) -> None:
    assert contract_warnings([ContractTerms(**terms)]) == []


def test_replay_prints_the_warnings_on_stderr(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    contracts = tmp_path / "contracts.yaml"
    contracts.write_text(yaml.safe_dump({"contracts": [dict(NEPTUNE, holiday_subdivision=None)]}))
    events = tmp_path / "events.jsonl"
    events.write_text("")
    slaproc = Path(sys.executable).parent / "slaproc"
    done = subprocess.run([str(slaproc), "replay", str(events), "--contracts", str(contracts),
                           "--until", "2026-02-01T00:00:00Z", "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "slaproc replay: warning: holiday_country 'GB' has holidays that differ" in done.stderr
