"""The mapping file (SPEC §13): validated like contracts, every problem named with its path."""
from __future__ import annotations

from pathlib import Path

import pytest

from streams.gateway.config import MappingConfigError, load_mapping, parse_mapping

REPO = Path(__file__).resolve().parents[2]


def problems(data) -> list[str]:
    with pytest.raises(MappingConfigError) as info:
        parse_mapping(data, "m.yaml")
    assert str(info.value).startswith("m.yaml: invalid mapping")
    return info.value.problems


def test_the_sample_mapping_loads_and_folds_vendor_names_to_lower_case():
    m = load_mapping(REPO / "samples" / "mapping.yaml")
    assert m.alertmanager.service_label == "service"
    assert m.alertmanager.match == {"sla": "true"}
    assert m.zendesk.policy_priorities["neptune"] == {"urgent": "critical", "high": "high", "normal": "medium",
                                                      "low": "low"}
    assert set(m.zendesk.policy_priorities) == set(m.jira.policy_priorities) == {
        "neptune", "neural-magic", "rescale", "vectorize"}   # review jira.md F5: a table for every policy
    assert m.zendesk.customers == {"901": "nx", "902": "vp"}
    assert m.zendesk.customer_policies == {"901": "neptune", "902": "vectorize"}
    assert m.jira.policy_priorities["neptune"]["highest"] == "critical"
    assert m.jira.policy_priorities["vectorize"]["highest"] == "urgent"
    assert m.jira.statuses == {"waiting for customer": "waiting_on_customer"}
    assert m.jira.resolved_statuses == {"resolved", "done"}


def test_a_section_may_be_left_out():
    m = parse_mapping({"alertmanager": {"service_label": "service"}})
    assert m.zendesk is None and m.jira is None and m.alertmanager.scope_label is None


def test_an_unknown_key_is_named_with_the_closest_known_one():
    assert problems({"alertmanager": {"service_label": "s", "scope_lable": "x"}}) == [
        "alertmanager.scope_lable: unknown key; did you mean 'scope_label'?"]
    assert problems({"zendesk": {"customer_field": "o", "pause_status": {}}}) == [
        "zendesk.pause_status: unknown key; did you mean 'pause_statuses'?"]
    assert problems({"jria": {}}) == ["jria: unknown key; did you mean 'jira'?"]
    assert problems({"pagerduty": {}}) == ["pagerduty: unknown key; known keys: alertmanager, zendesk, jira"]


def test_required_keys_are_named():
    assert problems({"alertmanager": {}, "zendesk": {"priorities": {}}, "jira": {"statuses": {}}}) == [
        "alertmanager.service_label: required", "zendesk.customer_field: required", "jira.customer_field: required"]


def test_values_are_checked_and_every_problem_is_reported_at_once():
    found = problems({
        "alertmanager": {"service_label": "", "match": ["sla"]},
        "zendesk": {"customer_field": "organization_id", "pause_statuses": {"pending": "waiting", "solved": "on_hold"},
                    "priorities": {"Urgent": "critical", "urgent": "high"}},
        "jira": {"customer_field": "cf", "statuses": {"Resolved": "open"}, "resolved_statuses": ["Resolved"]},
    })
    assert "alertmanager.service_label: must be a non-empty string, got ''" in found
    assert "alertmanager.match: must be a mapping of vendor value -> slaproc value, got ['sla']" in found
    # value problems surface once the structure is right
    found = problems({
        "zendesk": {"customer_field": "organization_id", "pause_statuses": {"pending": "waiting", "solved": "on_hold"},
                    "priorities": {"Urgent": "critical", "urgent": "high"}},
        "jira": {"customer_field": "cf", "statuses": {"Resolved": "open"}, "resolved_statuses": ["Resolved"]},
    })
    assert found == [
        "zendesk.priorities.urgent: listed twice (keys are compared case-insensitively)",
        "zendesk.pause_statuses.pending: 'waiting' is not one of waiting_on_customer, on_hold",
        "zendesk.pause_statuses.solved: solved always maps to ticket.resolved",
        "jira.statuses.resolved: also listed in resolved_statuses / closed_statuses",
    ]


def test_an_empty_or_non_mapping_file_is_rejected(tmp_path):
    assert problems({}) == ["no section: write at least one of alertmanager, zendesk, jira"]
    assert problems(["alertmanager"]) == [
        "the file must be a mapping with alertmanager, zendesk and/or jira sections"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("alertmanager: {service_label: [\n")
    with pytest.raises(MappingConfigError, match="not valid YAML"):
        load_mapping(bad)


def test_yaml_numbers_in_tables_are_read_as_text():
    m = parse_mapping({"zendesk": {"customer_field": "organization_id", "customers": {901: "acme"}}})
    assert m.zendesk.customers == {"901": "acme"}
