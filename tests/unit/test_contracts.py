"""Contracts: the sample file loads, and every rejection names the file (or the
event), the entry, the field and the problem."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from textwrap import dedent

import pytest

from events.contract import ContractTerms
from policies.catalog import Catalog, load_catalog
from policies.contracts import (
    Contract,
    ContractError,
    contract_from_event,
    contract_from_terms,
    load_contracts_yaml,
    validate_terms,
)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "contracts.yaml"
RESCALE_TARGETS = (
    "{targets: {urgent: {first_response: {amount: 1, unit: hours}},"
    " high: {first_response: {amount: 2, unit: hours}},"
    " normal: {first_response: {amount: 1, unit: days}},"
    " low: {first_response: {amount: 2, unit: days}}}}"
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def write(tmp_path: Path, body: str, name: str = "contracts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(body), encoding="utf-8")
    return path


def rejection(tmp_path: Path, catalog: Catalog, body: str) -> str:
    path = write(tmp_path, body)
    with pytest.raises(ContractError) as info:
        load_contracts_yaml(path, catalog)
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


# --- the sample ---------------------------------------------------------------------------


def test_sample_contracts_load(catalog):
    contracts = load_contracts_yaml(SAMPLE, catalog)
    assert len(contracts) >= 6
    by_id = {c.customer_id: c for c in contracts}
    assert {(c.plan.policy, c.plan.plan) for c in contracts} >= {
        ("neural-magic", "enterprise"), ("neptune", "basic"), ("neptune", "extended"),
        ("rescale", "mission-critical"), ("vectorize", "pro"), ("vectorize", "enterprise"),
    }
    assert all(c.services for c in contracts)
    assert all(c.effective_from == datetime(2026, 1, 1, tzinfo=timezone.utc) for c in contracts)

    pro = next(c for c in contracts if c.plan.plan == "pro")
    (service,) = pro.services
    assert (service.monthly_fee, service.currency, service.fee_per_month) == (Decimal("1000.00"), "USD", Decimal(1000))
    assert pro.plan.uptime_commitment_percent == Decimal("99.5")

    ent = next(c for c in contracts if (c.policy, c.plan.plan) == ("vectorize", "enterprise"))
    assert ent.plan.uptime_commitment_percent is not None
    assert ent.services[0].annual_fee is not None
    assert ent.services[0].fee_per_month == ent.services[0].annual_fee / 12

    mc = next(c for c in contracts if c.plan.plan == "mission-critical")
    assert all(any(t.metric == "first_response" for t in mc.plan.targets(p)) for p in mc.plan.priorities)

    berlin = next(c for c in contracts if c.plan.plan == "extended")
    assert (berlin.terms.timezone, berlin.terms.holiday_country) == ("Europe/Berlin", "DE")
    assert by_id[berlin.customer_id] is berlin
    assert berlin.policy_version == catalog.version("neptune")


def test_contract_keeps_terms_and_plan(catalog):
    c = contract_from_terms(ContractTerms(customer_id="x", policy="vectorize", plan="pro"), catalog)
    assert isinstance(c, Contract)
    assert (c.customer_id, c.policy, c.plan.plan) == ("x", "vectorize", "pro")


# --- rejections ---------------------------------------------------------------------------


def test_unknown_policy(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: acme, policy: zendesk, plan: pro}
    """)
    assert "contracts[0] (customer_id='acme'): policy: unknown policy 'zendesk'" in message


def test_unknown_plan(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: acme, policy: vectorize, plan: pro}
          - {customer_id: beta, policy: neptune, plan: premium, timezone: UTC}
    """)
    assert "contracts[1] (customer_id='beta'): plan: unknown plan 'premium' for policy neptune" in message


def test_vectorize_enterprise_without_uptime_commitment(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: globex
            policy: vectorize
            plan: enterprise
            services: [{service_id: g1, annual_fee: "12000", currency: USD}]
    """)
    assert "contracts[0] (customer_id='globex'): overrides.uptime_commitment_percent: missing" in message
    assert "order form" in message


def test_rescale_without_order_form_targets(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: aero, policy: rescale, plan: premium, holiday_country: US}
    """)
    for p in ("urgent", "high", "normal", "low"):
        assert f"(customer_id='aero'): overrides.targets.{p}.first_response: missing" in message


def test_rescale_with_a_priority_missing_from_the_order_form(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: aero
            policy: rescale
            plan: mission-critical
            overrides:
              targets:
                urgent: {first_response: {amount: 1, unit: hours}}
                high: {first_response: {amount: 2, unit: hours}}
                normal: {resolution: {amount: 5, unit: days}}
    """)
    assert "overrides.targets.normal.first_response: missing" in message
    assert "overrides.targets.low.first_response: missing" in message
    assert "overrides.targets.high" not in message


def test_rescale_basic_without_region(tmp_path, catalog):
    message = rejection(tmp_path, catalog, f"""
        contracts:
          - customer_id: aero
            policy: rescale
            plan: basic
            overrides: {RESCALE_TARGETS}
    """)
    assert "(customer_id='aero'): region: required by rescale/basic" in message


def test_neptune_without_timezone(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: kranich, policy: neptune, plan: extended, holiday_country: DE}
    """)
    assert "contracts[0] (customer_id='kranich'): timezone: required by neptune/extended" in message


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ("timezone: Mars/Olympus_Mons", "timezone", "unknown IANA timezone 'Mars/Olympus_Mons'"),
    ("timezone: ../../etc/passwd", "timezone", "unknown IANA timezone"),
    ("timezone: UTC, holiday_country: XX", "holiday_country", "unknown holiday country 'XX'"),
    ("timezone: Europe/Oslo, holiday_country: NO", "holiday_country", "quote the code"),
    ("timezone: UTC, holiday_country: DE, holiday_subdivision: ZZ", "holiday_subdivision",
     "unknown holiday subdivision 'ZZ' of DE"),
    ("timezone: UTC, holiday_subdivision: BY", "holiday_subdivision", "given without holiday_country"),
])
def test_unknown_timezone_or_holiday_region(tmp_path, catalog, fields, field, problem):
    message = rejection(tmp_path, catalog, f"""
        contracts:
          - {{customer_id: kranich, policy: neptune, plan: basic, {fields}}}
    """)
    assert f"contracts[0] (customer_id='kranich'): {field}: " in message
    assert problem in message


def test_unknown_timezone_in_order_form_business_hours(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: acme
            policy: vectorize
            plan: pro
            overrides:
              business_hours: {timezone: Europe/Atlantis, weekly: [[0, 540, 1020]], day_length_hours: 8}
    """)
    assert "overrides.business_hours.timezone: unknown IANA timezone 'Europe/Atlantis'" in message


def test_override_priority_not_in_the_policy(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: acme
            policy: vectorize
            plan: pro
            overrides:
              targets:
                critical: {first_response: {amount: 1, unit: hours}}
    """)
    assert "(customer_id='acme'): overrides.targets.critical: unknown priority 'critical' for vectorize" in message


def test_override_targets_on_a_plan_without_ticket_clocks(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: tiny
            policy: vectorize
            plan: starter
            overrides:
              targets:
                urgent: {first_response: {amount: 1, unit: hours}}
    """)
    assert "overrides.targets: vectorize/starter has no ticket clocks" in message


def test_duplicate_customer_id(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: acme, policy: vectorize, plan: pro}
          - {customer_id: beta, policy: vectorize, plan: pro}
          - {customer_id: acme, policy: vectorize, plan: starter}
    """)
    assert "contracts[2] (customer_id='acme'): customer_id: duplicate customer_id 'acme' (also contracts[0])" in message


def test_customers_share_a_service_each_with_its_own_terms_and_scope(tmp_path, catalog):
    """SPEC §11: a service_id in several contracts is a shared service, not a duplicate."""
    contracts = load_contracts_yaml(write(tmp_path, """
        contracts:
          - {customer_id: acme, policy: vectorize, plan: pro, services: [{service_id: api, monthly_fee: "100", currency: USD}]}
          - customer_id: beta
            policy: vectorize
            plan: enterprise
            overrides: {uptime_commitment_percent: "99.9"}
            services:
              - {service_id: api, annual_fee: "12000", currency: EUR, components: [search, ingest], region: eu-west}
    """), catalog)
    assert [c.customer_id for c in contracts] == ["acme", "beta"]
    acme, beta = (c.services[0] for c in contracts)
    assert acme.service_id == beta.service_id == "api"
    assert (acme.components, acme.region) == (None, None)
    assert (beta.components, beta.region, beta.currency) == (("search", "ingest"), "eu-west", "EUR")


def test_an_empty_component_list_is_refused(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - {customer_id: acme, policy: vectorize, plan: pro,
             services: [{service_id: api, monthly_fee: "1", currency: USD, components: []}]}
    """)
    assert "services[0].components" in message


def test_duplicate_service_id_within_a_contract(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: acme
            policy: vectorize
            plan: pro
            services:
              - {service_id: api, monthly_fee: "1", currency: USD}
              - {service_id: api, annual_fee: "12", currency: USD}
    """)
    assert "(customer_id='acme'): services[1].service_id: duplicate service_id 'api' (also services[0])" in message


def test_shape_errors_name_the_field(tmp_path, catalog):
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: acme
            policy: vectorize
            plan: pro
            services:
              - {service_id: api, monthly_fee: "1", annual_fee: "12", currency: USD}
    """)
    assert "contracts[0] (customer_id='acme'): services[0]: give exactly one of monthly_fee or annual_fee" in message
    message = rejection(tmp_path, catalog, """
        contracts:
          - customer_id: acme
            policy: vectorize
            plan: pro
            overrides:
              targets:
                urgent: {first_response: {amount: 0, unit: hours}}
    """)
    assert "overrides.targets.urgent.first_response.amount: Input should be greater than 0" in message


def test_file_shape_and_syntax_errors(tmp_path, catalog):
    assert "contracts: the file must be a mapping" in rejection(tmp_path, catalog, "- {customer_id: a}\n")
    assert "not valid YAML" in rejection(tmp_path, catalog, "contracts: [\n")
    assert "contracts[0]: (entry): must be a mapping" in rejection(tmp_path, catalog, "contracts: [acme]\n")
    with pytest.raises(ContractError, match="nowhere.yaml: cannot read"):
        load_contracts_yaml(tmp_path / "nowhere.yaml", catalog)


# --- the same validation for a contract.upserted event ---------------------------------------


def test_validate_terms_names_the_source(catalog):
    terms = ContractTerms(customer_id="globex", policy="vectorize", plan="enterprise")
    with pytest.raises(ContractError) as info:
        validate_terms(terms, catalog, where="contract.upserted event_id='e1'")
    assert str(info.value).startswith("contract.upserted event_id='e1' (customer_id='globex'): "
                                      "overrides.uptime_commitment_percent: missing")


def test_contract_upserted_event(catalog):
    from events.models import ContractUpserted

    ok = ContractUpserted.model_validate({
        "event_id": "e1", "type": "contract.upserted", "occurred_at": "2026-01-01T00:00:00Z",
        "customer_id": "kranich", "policy": "neptune", "plan": "extended", "timezone": "Europe/Berlin",
        "holiday_country": "DE", "services": [{"service_id": "k1", "monthly_fee": "10", "currency": "EUR"}]})
    contract = contract_from_event(ok, catalog)
    assert type(contract.terms) is ContractTerms
    assert contract.plan.targets("critical")[0].duration.total_seconds() == 7200
    same = contract_from_terms(ok.terms(), catalog)
    assert same == contract

    bad = ContractUpserted.model_validate({
        "event_id": "e2", "type": "contract.upserted", "occurred_at": "2026-01-01T00:00:00Z",
        "customer_id": "aero", "policy": "rescale", "plan": "basic", "region": "emea"})
    with pytest.raises(ContractError) as info:
        contract_from_event(bad, catalog)
    assert str(info.value).startswith("contract.upserted event_id='e2' (customer_id='aero'): overrides.targets.urgent")
