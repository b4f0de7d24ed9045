"""Priorities per policy (review jira.md F5): one flat table mapped a Jira "Highest" to one name for
every customer, but the policies name priorities differently (neptune `critical`, vectorize
`urgent`). Tables per policy id, customers naming their policy, and load-time checks against the
catalog; the flat form is still accepted."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.cli import main
from streams.gateway.config import MappingConfigError, load_mapping, parse_mapping
from policies.catalog import default_catalog
from streams.gateway.mapping import Unmappable, convert

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
JIRA_TABLES = {"neptune": {"Highest": "critical", "High": "high", "Medium": "medium", "Low": "low"},
               "vectorize": {"Highest": "urgent", "High": "high", "Medium": "normal", "Low": "low"}}
V = default_catalog().version("vectorize")   # the latest, named in the refusals
CUSTOMERS = {"Northwind": {"customer": "nx", "policy": "neptune"}, "Vecto": {"customer": "vp", "policy": "vectorize"}}


def jira(**section: Any):
    return parse_mapping({"jira": {"customer_field": "customfield_10002", **section}})


def problems(**section: Any) -> list[str]:
    with pytest.raises(MappingConfigError) as info:
        jira(**section)
    return info.value.problems


def fixture(name: str, org: str | None = "Northwind", priority: str | None = "keep") -> str:
    payload = json.loads((FIXTURES / name).read_text())
    fields = payload["issue"]["fields"]
    if org is None:
        fields.pop("customfield_10002")
    else:
        fields["customfield_10002"] = [{"id": "9", "name": org}]
    if priority != "keep":
        fields["priority"] = None if priority is None else {"name": priority}
    return json.dumps(payload)


def priorities(body: str, m) -> list[str]:
    return [e.event["priority"] for e in convert("jira", body, m).events if "priority" in e.event]


# --------------------------------------------------------------------------- conversion


def test_highest_maps_to_each_customers_own_policy_priority():
    m = jira(customers=CUSTOMERS, priorities=JIRA_TABLES)
    assert priorities(fixture("jira_issue_created.json", "Northwind"), m) == ["critical"]
    assert priorities(fixture("jira_issue_created.json", "Vecto"), m) == ["urgent"]


def test_a_priority_change_uses_the_tickets_customers_table():
    m = jira(customers=CUSTOMERS, priorities=JIRA_TABLES)
    body = json.loads(fixture("jira_issue_updated_waiting.json", "Vecto"))
    body["changelog"]["items"][0]["toString"] = "Medium"
    assert priorities(json.dumps(body), m) == ["normal"]


def test_a_zendesk_priority_change_uses_the_tickets_customers_table():
    m = parse_mapping({"zendesk": {"customer_field": "organization_id",
                                   "customers": {"901": {"customer": "vp", "policy": "vectorize"}},
                                   "priorities": {"vectorize": {"urgent": "urgent", "normal": "normal"}}}})
    body = json.loads((FIXTURES / "zendesk_priority_changed.json").read_text())
    body["event"]["current"] = "NORMAL"
    assert [e.event["priority"] for e in convert("zendesk", json.dumps(body), m).events] == ["normal"]


def test_default_policy_covers_customers_listed_without_one_or_not_listed():
    m = jira(customers={"Northwind": "nx"}, default_policy="vectorize", priorities=JIRA_TABLES)
    assert priorities(fixture("jira_issue_created.json", "Northwind"), m) == ["urgent"]
    assert priorities(fixture("jira_issue_created.json", "Elsewhere"), m) == ["urgent"]


def test_without_a_policy_for_the_customer_the_ticket_is_unmappable_naming_what_to_set():
    m = jira(customers=CUSTOMERS, priorities=JIRA_TABLES)
    with pytest.raises(Unmappable, match=r"customer 'Elsewhere' has no policy.*jira\.customers.*jira\.default_policy"):
        convert("jira", fixture("jira_issue_created.json", "Elsewhere"), m)


def test_a_priority_change_without_the_customer_is_unmappable_not_given_the_default_policy():
    m = jira(customers=CUSTOMERS, default_policy="neptune", priorities=JIRA_TABLES)
    with pytest.raises(Unmappable, match="does not hold the customer"):
        convert("jira", fixture("jira_issue_updated_waiting.json", None), m)


def test_default_priority_per_policy():
    m = jira(customers=CUSTOMERS, priorities=JIRA_TABLES, default_priority={"neptune": "medium", "vectorize": "normal"})
    assert priorities(fixture("jira_issue_created.json", "Northwind", None), m) == ["medium"]
    assert priorities(fixture("jira_issue_created.json", "Vecto", None), m) == ["normal"]


def test_the_flat_form_still_maps_every_customer_alike():
    m = jira(customers={"Northwind": "nx"}, priorities={"Highest": "critical"}, default_priority="medium")
    assert m.jira.priorities == {"highest": "critical"} and not m.jira.per_policy
    assert priorities(fixture("jira_issue_created.json", "Northwind"), m) == ["critical"]
    assert priorities(fixture("jira_issue_created.json", "Elsewhere", None), m) == ["medium"]


# --------------------------------------------------------------------------- load-time refusals


def test_an_unknown_policy_of_a_customer_is_refused():
    assert problems(customers={"Vecto": {"customer": "vp", "policy": "vectorise"}}) == [
        "jira.customers.Vecto.policy: unknown policy 'vectorise'; one of neptune, neural-magic, rescale, vectorize"]


def test_an_unknown_default_policy_is_refused():
    assert problems(default_policy="acme") == [
        "jira.default_policy: unknown policy 'acme'; one of neptune, neural-magic, rescale, vectorize"]


def test_an_unknown_policy_table_is_refused():
    assert problems(priorities={"nepture": {"Highest": "critical"}}) == [
        "jira.priorities.nepture: unknown policy; one of neptune, neural-magic, rescale, vectorize"]


def test_a_target_priority_the_policy_lacks_is_refused():
    assert problems(priorities={"vectorize": {"Highest": "critical"}}) == [
        "jira.priorities.vectorize.Highest: 'critical' is not a priority of policy vectorize "
        f"(catalog version {V}: urgent, high, normal, low)"]


def test_a_flat_table_a_named_policy_cannot_take_is_refused():
    found = problems(customers=CUSTOMERS, priorities={"Highest": "critical"})
    assert found == ["jira.priorities.Highest: 'critical' is not a priority of policy vectorize "
                     f"(catalog version {V}: urgent, high, normal, low); the flat form applies to every "
                     "customer: write priorities per policy"]


def test_a_flat_target_of_no_policy_is_refused():
    assert problems(priorities={"Highest": "critcal"}) == [
        "jira.priorities.Highest: 'critcal' is not a priority of any policy of the catalog"]


def test_a_policy_named_without_its_table_is_refused():
    found = problems(customers=CUSTOMERS, priorities={"neptune": JIRA_TABLES["neptune"]})
    assert found == ["jira.priorities: no table for policy vectorize (named by jira.customers or "
                     "jira.default_policy); its customers' priorities could not be mapped"]


def test_one_default_priority_that_a_policy_lacks_is_refused():
    found = problems(priorities=JIRA_TABLES, default_priority="medium")
    assert len(found) == 1 and found[0].startswith(
        "jira.default_priority: 'medium' is not a priority of policy vectorize")


def test_a_default_priority_per_policy_is_checked():
    assert problems(priorities=JIRA_TABLES, default_priority={"vectorize": "medium"}) == [
        "jira.default_priority.vectorize: 'medium' is not a priority of policy vectorize "
        f"(catalog version {V}: urgent, high, normal, low)"]


def test_mixing_the_flat_and_the_per_policy_form_is_refused():
    assert problems(priorities={"Highest": "critical", "vectorize": {"Highest": "urgent"}}) == [
        "jira.priorities: mixes the flat form (vendor priority: priority) with tables per policy (vectorize); "
        "use one form"]


def test_the_zendesk_section_is_checked_alike():
    with pytest.raises(MappingConfigError) as info:
        parse_mapping({"zendesk": {"customer_field": "organization_id",
                                   "priorities": {"rescale": {"urgent": "critical"}}}})
    assert info.value.problems == ["zendesk.priorities.rescale.urgent: 'critical' is not a priority of policy "
                                   f"rescale (catalog version {default_catalog().version('rescale')}: urgent, high, normal, low)"]


BAD = "jira:\n  customer_field: cf\n  customers: {Vecto: {customer: vp, policy: vectorize}}\n" \
      "  priorities: {Highest: critical}\n"


def test_slaproc_convert_refuses_the_mapping_with_exit_2(tmp_path, capfd):
    (tmp_path / "m.yaml").write_text(BAD)
    assert main(["convert", "--from", "jira", "--mapping", str(tmp_path / "m.yaml"), str(tmp_path / "none")]) == 2
    assert "jira.priorities.Highest: 'critical' is not a priority of policy vectorize" in capfd.readouterr().err


def test_the_gateway_refuses_the_mapping_at_start_with_exit_2(tmp_path, capfd, monkeypatch):
    (tmp_path / "m.yaml").write_text(BAD)
    for var in [v for v in __import__("os").environ if v.startswith("SLAPROC_")]:
        monkeypatch.delenv(var)
    # the mapping is loaded before any broker connection: no broker is needed to see the refusal
    assert main(["gateway", "--mapping", str(tmp_path / "m.yaml")]) == 2
    assert "jira.priorities.Highest: 'critical' is not a priority of policy vectorize" in capfd.readouterr().err


def test_the_sample_mapping_loads():
    m = load_mapping(REPO / "samples" / "mapping.yaml")
    assert m.jira.policy_default_priorities == m.zendesk.policy_default_priorities == {
        "neptune": "medium", "neural-magic": "medium", "rescale": "normal", "vectorize": "normal"}
