"""Who wrote a Jira comment: provider or customer (review jira.md F1; docs/integrations.md
"Jira comment authors"). Was: anyone but the reporter was the provider, so a customer's colleague
commenting stopped the first-response clock (a missed breach). One test per rule of the order."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from streams.gateway.config import MappingConfigError, parse_mapping
from streams.gateway.mapping import Unmappable, convert

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
REPORTER = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"   # Riley Customer, accountType "atlassian"
AGENT = "5b10ac8d82e05b22cc7d4ef5"                          # Dana Agent, accountType "atlassian"


def mapping(**jira: Any):
    return parse_mapping({"jira": {"customer_field": "customfield_10002", **jira}})


def comment(author: dict[str, Any] | None = None, reporter: dict[str, Any] | None | str = "keep") -> str:
    payload = json.loads((FIXTURES / "jira_comment_agent.json").read_text())
    if author is not None:
        payload["comment"]["author"] = author
    if reporter != "keep":
        if reporter is None:
            payload["issue"]["fields"]["reporter"] = None  # an issue without a reporter
        else:
            payload["issue"]["fields"]["reporter"] = reporter
    return json.dumps(payload)


def side(body: str, m) -> list[str]:
    return [e.event["author"] for e in convert("jira", body, m).events]


COLLEAGUE = {"accountId": "qm:colleague", "displayName": "Customer's colleague", "accountType": "atlassian"}


# 1. the mapping's lists decide first

def test_customer_accounts_make_a_colleague_with_an_atlassian_account_a_customer():
    assert side(comment(COLLEAGUE), mapping(customer_accounts=["qm:colleague"])) == ["customer"]


def test_provider_accounts_make_even_the_reporter_a_provider():
    # an agent who raised the issue themselves
    m = mapping(provider_accounts=[REPORTER])
    assert side(comment({"accountId": REPORTER, "accountType": "atlassian"}), m) == ["provider"]


def test_provider_email_domains_decide_by_the_authors_e_mail_domain():
    m = mapping(provider_email_domains=["Support.Example.com"])
    agent = {"accountId": REPORTER, "accountType": "atlassian", "emailAddress": "riley@support.example.COM"}
    assert side(comment(agent), m) == ["provider"]
    elsewhere = {**COLLEAGUE, "emailAddress": "sam@customer.example.com"}
    with pytest.raises(Unmappable, match="matches neither jira.provider_accounts nor jira.provider_email_domains"):
        convert("jira", comment(elsewhere), m)


def test_a_server_user_key_or_name_in_a_list_decides():
    m = mapping(provider_accounts=["jagent"])
    assert side(comment({"key": "JIRAUSER10100", "name": "jagent"}, {"key": "JIRAUSER1", "name": "riley"}), m) \
        == ["provider"]


# 2. accountType "customer": a JSM portal customer

def test_a_portal_customer_who_is_not_the_reporter_is_a_customer():
    portal = {"accountId": "qm:portal-colleague", "accountType": "customer"}
    assert side(comment(portal), mapping()) == ["customer"]


# 3. the issue's reporter

def test_the_reporter_is_a_customer_even_with_provider_lists():
    m = mapping(provider_accounts=[AGENT])
    assert side(comment({"accountId": REPORTER, "accountType": "atlassian"}), m) == ["customer"]


def test_the_reporter_on_jira_server_is_a_customer():
    server = {"key": "JIRAUSER1", "name": "riley"}
    assert side(comment(server, dict(server)), mapping()) == ["customer"]


# 4. accountType "atlassian" and "app"

def test_atlassian_is_the_provider_while_no_provider_list_is_set():
    assert side(comment(), mapping()) == ["provider"]


def test_with_provider_lists_an_unlisted_atlassian_account_is_unmappable_not_a_provider():
    with pytest.raises(Unmappable, match=re.escape("comment.author: qm:colleague: accountType 'atlassian'")):
        convert("jira", comment(COLLEAGUE), mapping(provider_accounts=[AGENT]))


def test_an_apps_comment_is_no_reply():
    app = {"accountId": "557058:automation", "displayName": "Automation for Jira", "accountType": "app"}
    conv = convert("jira", comment(app), mapping())
    assert conv.events == [] and conv.ignored and "accountType 'app'" in conv.ignored[0]
    assert side(comment(app), mapping(provider_accounts=["557058:automation"])) == ["provider"]


# 5. nothing decides: unmappable, naming what to configure

def test_jira_server_without_account_type_and_not_the_reporter_is_unmappable():
    server = {"key": "JIRAUSER10100", "name": "jagent"}
    with pytest.raises(Unmappable, match=re.escape(
            "comment.author: JIRAUSER10100 / jagent: no accountType (Jira Server / Data Center) and not the "
            "issue's reporter; list the account in jira.provider_accounts or jira.customer_accounts")):
        convert("jira", comment(server, {"key": "JIRAUSER1", "name": "riley"}), mapping())


def test_no_account_type_and_no_reporter_is_unmappable():
    with pytest.raises(Unmappable, match="the issue has no reporter"):
        convert("jira", comment({"key": "JIRAUSER10100"}, None), mapping())


def test_an_unknown_account_type_is_unmappable():
    with pytest.raises(Unmappable, match="accountType 'robot' is not known"):
        convert("jira", comment({"accountId": "x", "accountType": "robot"}), mapping())


# load-time refusals

def test_an_account_in_both_lists_is_refused():
    with pytest.raises(MappingConfigError) as info:
        mapping(customer_accounts=["a1"], provider_accounts=["a1"])
    assert info.value.problems == ["jira.provider_accounts: 'a1' is also in customer_accounts"]


def test_an_e_mail_address_is_no_domain():
    with pytest.raises(MappingConfigError) as info:
        mapping(provider_email_domains=["dana@example.com"])
    assert info.value.problems == ["jira.provider_email_domains: 'dana@example.com' is not a domain (write example.com)"]


# the shapes Jira really sends for a comment (review of 2026-12-06, F1 and F2)

def twin(body: str) -> str:
    """The `jira:issue_updated` (issue_commented) webhook of the comment of `body`: the whole issue."""
    payload = json.loads(body)
    payload.update(webhookEvent="jira:issue_updated", issue_event_type_name="issue_commented")
    return json.dumps(payload)


def cloud_comment_created(body: str) -> str:
    """Jira Cloud's comment_created: under issue.fields only summary, issuetype, project, assignee,
    priority and status (no reporter, no custom field)."""
    payload = json.loads(body)
    fields = payload["issue"]["fields"]
    payload["issue"]["fields"] = {k: fields[k] for k in ("summary", "issuetype", "project", "assignee",
                                                          "priority", "status") if k in fields}
    return json.dumps(payload)


def test_a_comment_is_the_reply_of_its_issue_updated_twin_with_comment_createds_id():
    riley = {"accountId": REPORTER, "accountType": "atlassian"}
    for who, expected in ((riley, "customer"), ({"accountId": AGENT, "accountType": "atlassian"}, "provider")):
        body = comment(who)
        (created,) = convert("jira", body, mapping()).events
        (updated,) = convert("jira", twin(body), mapping()).events
        assert updated.event["author"] == expected and updated.event == created.event  # one event id: a redelivery


def test_jira_clouds_comment_created_without_the_reporter_maps_nothing():
    """Before: the reporter rule could not fire and the reporter's own comment, accountType
    'atlassian', was a provider public reply (first response met: a missed breach)."""
    body = cloud_comment_created(comment({"accountId": REPORTER, "accountType": "atlassian"}))
    conv = convert("jira", body, mapping())
    assert conv.events == [] and "issue_commented" in conv.ignored[0]
    assert side(twin(comment({"accountId": REPORTER, "accountType": "atlassian"})), mapping()) == ["customer"]


def test_jira_servers_comment_created_without_the_issue_maps_nothing_and_its_twin_the_reply():
    """Jira Server / Data Center strips the issue from comment_created: before, every comment was a 422
    and its issue_updated twin was ignored, so no provider reply ever met first response."""
    agent = {"key": "JIRAUSER10100", "name": "dana"}
    payload = json.loads(comment(agent))
    stripped = {k: v for k, v in payload.items() if k != "issue"}
    conv = convert("jira", json.dumps(stripped), mapping(provider_accounts=["JIRAUSER10100"]))
    assert conv.events == [] and "Server" in conv.ignored[0]
    assert side(twin(json.dumps(payload)), mapping(provider_accounts=["JIRAUSER10100"])) == ["provider"]
