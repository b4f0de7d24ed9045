"""Vendor webhook bodies -> native input events (SPEC §13). Pure: no I/O, no clock.

`convert(source, body, mapping)` returns a `Conversion`: the native events (each with the
input topic and key SPEC §1 gives it), what the body held that maps to nothing (and why),
and Alertmanager's `truncatedAlerts`. A body that cannot be mapped raises `Unmappable`
naming what is missing. Every event is checked with the project's codec
(`events.codec.decode`) before it is returned, so the gateway and `slaproc convert` never
emit an event the worker would reject for its shape.

Event ids are deterministic, from the vendor's identity of what happened, so a redelivered
webhook gives the same ids and the worker drops the copy:
- Alertmanager: outage `am-<h>` with h = sha256(fingerprint, startsAt); events
  `am-<h>-started` / `am-<h>-resolved`. A resolved alert also yields its `outage.started`
  (same id as the firing notification's), so a missed or late firing notification loses nothing.
  `outage.started` carries the fingerprint as `alert_key`: Alertmanager keeps one alert per
  fingerprint and sends no `resolved` for an incarnation that resolved and fired again within
  one group_interval, so the core ends an outage where the next one of its key starts.
- Zendesk: `zd-<sha256(envelope id)>-<n>`; Jira: `jira-<sha256(issue id, changelog id | comment id
  | "created")>-<n>`. `n` numbers the events one vendor event yields, in the order they apply.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any

from events.codec import DeadLetterReason, decode
from policies.catalog import ContractError
from policies.contracts import contract_from_event, history_key
from streams.gateway.config import AlertmanagerMapping, JiraMapping, Mapping, ZendeskMapping

__all__ = ["SOURCES", "NativeEvent", "Conversion", "Unmappable", "convert", "convert_native", "parse_body",
           "CONTRACTS", "TICKET_EVENTS", "MONITORING_EVENTS", "RAW_WEBHOOKS"]

# SPEC §1 topic names before the prefix (the same as streams.app's; a unit test holds them equal).
CONTRACTS = "sla.contracts"
TICKET_EVENTS = "sla.ticket-events"
MONITORING_EVENTS = "sla.monitoring-events"
RAW_WEBHOOKS = "sla.raw-webhooks"

SOURCES = ("alertmanager", "zendesk", "jira")
UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Unmappable(ValueError):
    """The body cannot be turned into native events; the message names what is missing or wrong."""


@dataclass(frozen=True)
class NativeEvent:
    """One native input event, with the topic (before the prefix) and key SPEC §1 gives it."""

    topic: str
    key: str
    value: bytes          # the event as a compact JSON object (UTF-8)
    type: str
    event_id: str

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.value)


@dataclass
class Conversion:
    events: list[NativeEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)   # parts of the body that map to no event, and why
    truncated_alerts: int = 0                           # Alertmanager: alerts dropped upstream (max_alerts)
    rejected: list[str] = field(default_factory=list)   # parts that could not be mapped, each with its reason


# --------------------------------------------------------------------------- helpers

_FRACTION = re.compile(r"(\.\d{6})\d+")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def _instant(value: Any, path: str) -> datetime:
    """An aware instant from vendor text: RFC 3339 (`Z`, nanoseconds) or Jira's `+0000` offsets."""
    if not isinstance(value, str) or not value.strip():
        raise Unmappable(f"{path}: missing (expected an RFC 3339 timestamp)")
    text = _FRACTION.sub(r"\1", value.strip().replace("z", "Z")).replace("Z", "+00:00")
    text = _COMPACT_OFFSET.sub(r"\1:\2", text)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Unmappable(f"{path}: {value!r} is not an RFC 3339 timestamp") from None
    if t.tzinfo is None:
        raise Unmappable(f"{path}: {value!r} has no offset")
    try:
        return t.astimezone(UTC)
    except OverflowError:
        raise Unmappable(f"{path}: {value!r} is out of range") from None


def _from_millis(value: Any, path: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Unmappable(f"{path}: missing (expected milliseconds since the epoch)")
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        raise Unmappable(f"{path}: {value} is out of range") from None


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _text(value: Any) -> str | None:
    """A vendor scalar as text (ids come as numbers or strings); None when absent or empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)) and str(value).strip():
        return str(value).strip()
    return None


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unmappable(f"{path}: missing or not an object")
    return value


def _event(topic: str, key_field: str, fields: dict[str, Any]) -> NativeEvent:
    """A native event, checked by the worker's own codec."""
    try:
        value = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800", valid JSON text) in a value
        raise Unmappable(f"the {fields.get('type')} event it maps to has text that is not UTF-8: {exc.reason} "
                         f"at {exc.object[max(exc.start - 20, 0):exc.start]!r}") from None
    checked = decode(value)
    if isinstance(checked, DeadLetterReason):
        raise Unmappable(f"the {fields.get('type')} event it maps to is invalid: {checked}")
    return NativeEvent(topic, str(fields[key_field]), value, checked.type, checked.event_id)


def _ticket(fields: dict[str, Any]) -> NativeEvent:
    return _event(TICKET_EVENTS, "ticket_id", fields)


def _priority(value: Any, m: ZendeskMapping | JiraMapping, customer: str | None, use_default: bool,
              section: str, path: str) -> str:
    """The policy priority of a vendor priority, through the table of the customer's policy
    (review jira.md F5): `customer` is the vendor's customer value (before `customers`)."""
    table, default, where = m.priorities, m.default_priority, f"{section}.priorities"
    if m.per_policy:
        if customer is None:  # not default_policy: a customer listed with another policy would get its table
            raise Unmappable(f"{path}: the body does not hold the customer ({section}.customer_field), and "
                             f"{section}.priorities is per policy: the customer's policy decides the priority")
        policy = m.policy_of(customer)
        if policy is None:
            raise Unmappable(f"{path}: customer {customer!r} has no policy, and {section}.priorities is per "
                             f"policy: name its policy in {section}.customers ({{customer: …, policy: …}}) or "
                             f"set {section}.default_policy")
        table = m.policy_priorities[policy]
        default = m.policy_default_priorities.get(policy, m.default_priority)
        where = f"{section}.priorities.{policy}"
    text = _text(value)
    if text is None:
        if not use_default or default is None:
            raise Unmappable(f"{path}: the ticket has no priority; set {section}.default_priority in the mapping")
        return default
    folded = text.casefold()
    if not table:
        return folded
    if folded not in table:
        raise Unmappable(f"{path}: priority {text!r} is not in {where} (known: {', '.join(sorted(table))})")
    return table[folded]


def parse_body(body: bytes | str) -> Any:
    """JSON from a request body or a file line; Unmappable if it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unmappable(f"not valid JSON: {exc}") from None


def convert(source: str, body: bytes | str | dict[str, Any], mapping: Mapping) -> Conversion:
    """The native events of one webhook body of `source`; raises Unmappable."""
    section = mapping.section(source) if source in SOURCES else None
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    if section is None:
        raise Unmappable(f"the mapping file has no {source} section")
    payload = body if isinstance(body, dict) else parse_body(body)
    if not isinstance(payload, dict):
        raise Unmappable("the body is not a JSON object")
    conversion = {"alertmanager": _alertmanager, "zendesk": _zendesk, "jira": _jira}[source](payload, section)
    # The same event twice in one body (an alert listed twice) is sent once.
    seen: set[bytes] = set()
    conversion.events = [e for e in conversion.events if not (e.value in seen or seen.add(e.value))]
    return conversion


# --------------------------------------------------------------------------- Alertmanager / Grafana


def _alertmanager(payload: dict[str, Any], m: AlertmanagerMapping) -> Conversion:
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise Unmappable("alerts: missing or not a list (is this an Alertmanager webhook v4 body?)")
    out = Conversion()
    truncated = payload.get("truncatedAlerts", 0)
    out.truncated_alerts = truncated if isinstance(truncated, int) and not isinstance(truncated, bool) else 0
    # Each alert on its own (review ingest.md F2): Alertmanager never retries a 4xx and every
    # re-notification of the group carries the bad alert again, so one bad alert must not lose the
    # others. Its reason is in `rejected` (the gateway keeps the body as `partial`); only a body
    # whose every alert is bad is unmappable.
    for i, alert in enumerate(alerts):
        path = f"alerts[{i}]"
        try:
            alert = _object(alert, path)
            labels = alert.get("labels")
            if not isinstance(labels, dict):
                raise Unmappable(f"{path}.labels: missing or not an object")
            if any(labels.get(k) != v for k, v in m.match.items()):
                out.ignored.append(f"{path}: labels do not match alertmanager.match")
                continue
            out.events += _alert_events(alert, labels, m, path)
        except Unmappable as exc:
            out.rejected.append(str(exc))
    if out.rejected and len(out.rejected) == len(alerts) - len(out.ignored):  # every SLA alert of it bad
        raise Unmappable("; ".join(out.rejected[:20]) + (f"; and {len(out.rejected) - 20} more"
                                                          if len(out.rejected) > 20 else ""))
    return out


def _label_list(labels: dict[str, Any], name: str | None) -> list[str] | None:
    if not name or _text(labels.get(name)) is None:
        return None
    return sorted({part.strip() for part in str(labels[name]).split(",") if part.strip()})


def _alert_events(alert: dict[str, Any], labels: dict[str, Any], m: AlertmanagerMapping, path: str) -> list[NativeEvent]:
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        raise Unmappable(f"{path}.status: {status!r} is neither 'firing' nor 'resolved'")
    fingerprint = _text(alert.get("fingerprint"))
    if fingerprint is None:
        raise Unmappable(f"{path}.fingerprint: missing (the outage id is made from fingerprint and startsAt)")
    starts = _instant(alert.get("startsAt"), f"{path}.startsAt")
    service = _text(labels.get(m.service_label))
    if service is None:
        raise Unmappable(f"{path}.labels.{m.service_label}: missing (alertmanager.service_label names the "
                         f"label that holds the service id)")
    scope = "all_users"
    if m.scope_label and _text(labels.get(m.scope_label)) is not None:
        scope = str(labels[m.scope_label]).strip()
        if scope not in ("all_users", "partial"):
            raise Unmappable(f"{path}.labels.{m.scope_label}: {scope!r} is neither 'all_users' nor 'partial'")
    outage = "am-" + _digest("alertmanager", fingerprint, _z(starts))
    started: dict[str, Any] = {"event_id": f"{outage}-started", "type": "outage.started",
                               "occurred_at": _z(starts), "outage_id": outage, "service_id": service,
                               "scope": scope, "alert_key": fingerprint}
    for name, label in (("components", m.components_label), ("regions", m.regions_label)):
        values = _label_list(labels, label)
        if values is not None:
            started[name] = values   # SPEC §11; a worker without §11 ignores the field
    events = [_event(MONITORING_EVENTS, "service_id", started)]
    if status == "resolved":
        ends = _instant(alert.get("endsAt"), f"{path}.endsAt")
        if ends <= starts:
            raise Unmappable(f"{path}.endsAt: {alert.get('endsAt')!r} is not after startsAt "
                             f"{alert.get('startsAt')!r} (a resolved alert needs its end time)")
        events.append(_event(MONITORING_EVENTS, "service_id", {
            "event_id": f"{outage}-resolved", "type": "outage.resolved", "occurred_at": _z(ends),
            "outage_id": outage, "service_id": service}))
    return events


# --------------------------------------------------------------------------- Zendesk

_ZENDESK_TICKET = "zen:event-type:ticket."
Fields = list[dict[str, Any]]   # the events one vendor event yields: type + fields, without the envelope


def _zendesk(payload: dict[str, Any], m: ZendeskMapping) -> Conversion:
    """The envelope: ticket id, time and ids; what happened is the handler's of the event type."""
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise Unmappable("type: missing (is this a Zendesk event webhook body? expected zen:event-type:ticket.*)")
    out = Conversion()
    handler = _ZENDESK_HANDLERS.get(kind.removeprefix(_ZENDESK_TICKET)) if kind.startswith(_ZENDESK_TICKET) else None
    if handler is None:
        out.ignored.append(f"{kind}: {'no SLA meaning' if kind.startswith(_ZENDESK_TICKET) else 'not a ticket event'}")
        return out
    envelope_id = _text(payload.get("id"))
    if envelope_id is None:
        raise Unmappable("id: missing (the envelope id makes the event ids)")
    occurred = _z(_instant(payload.get("time"), "time"))
    detail = _object(payload.get("detail"), "detail")
    ticket = _text(detail.get("id"))
    if ticket is None:
        subject = str(payload.get("subject") or "")
        ticket = subject.removeprefix("zen:ticket:") if subject.startswith("zen:ticket:") else None
    if not ticket:
        raise Unmappable("detail.id: missing (the Zendesk ticket id)")
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    fields = handler(detail, event, m, out)
    digest = _digest("zendesk", envelope_id)
    for n, f in enumerate(fields):
        out.events.append(_ticket({"event_id": f"zd-{digest}-{n}", "type": f.pop("type"), "occurred_at": occurred,
                                   "ticket_id": ticket, **f}))
    return out


def _zendesk_created(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    customer = _text(detail.get(m.customer_field))
    if customer is None:
        raise Unmappable(f"detail.{m.customer_field}: missing (zendesk.customer_field names the ticket "
                         f"field that holds the customer)")
    fields: Fields = [{"type": "ticket.opened", "customer_id": m.customers.get(customer, customer),
                       "priority": _priority(detail.get("priority"), m, customer, True,
                                             "zendesk", "detail.priority")}]
    status = (_text(detail.get("status")) or "").casefold()
    if status in m.pause_statuses:
        fields.append({"type": "ticket.status_changed", "status": m.pause_statuses[status]})
    # Created already solved (a phone call logged as solved) or closed: no status_changed follows
    # for the initial status, so the ticket ends at its opening instant (review ingest.md F4).
    if status in ("solved", "closed"):
        fields.append({"type": "ticket.resolved"})
    if status == "closed":
        fields.append({"type": "ticket.closed"})
    return fields


def _zendesk_comment(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    comment = _object(event.get("comment"), "event.comment")
    author = _object(comment.get("author"), "event.comment.author")
    public = comment.get("is_public")
    if not isinstance(public, bool):
        raise Unmappable("event.comment.is_public: missing (true or false)")
    staff = author.get("is_staff")
    if not isinstance(staff, bool):
        raise Unmappable("event.comment.author.is_staff: missing (true or false)")
    return [{"type": "ticket.replied", "author": "provider" if staff else "customer", "public": public}]


def _zendesk_status(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    current = (_text(event.get("current")) or "").casefold()
    previous = (_text(event.get("previous")) or "").casefold()
    if not current:
        raise Unmappable("event.current: missing (the new status)")
    if current == "solved":
        return [{"type": "ticket.resolved"}]
    if current in ("closed", "deleted"):  # "deleted": the status of a ticket in the trash (see _zendesk_removed)
        return [{"type": "ticket.closed"}]
    fields: Fields = [{"type": "ticket.reopened"}] if previous == "solved" else []
    return fields + [{"type": "ticket.status_changed", "status": m.pause_statuses.get(current, "open")}]


def _zendesk_priority(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    if _text(event.get("current")) is None:
        out.ignored.append("zen:event-type:ticket.priority_changed: the priority was removed; the ticket keeps "
                           "its last priority")
        return []
    return [{"type": "ticket.priority_changed", "requested_by": "provider",
             "priority": _priority(event.get("current"), m, _text(detail.get(m.customer_field)), False,
                                   "zendesk", "event.current")}]


def _zendesk_removed(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    """Deleted (to the trash) or marked as spam: the ticket leaves the help desk, and Zendesk's own
    SLA reporting stops counting it. Its clocks stop for good, with neither a met nor a breach:
    `ticket.closed` (review of 2026-12-06, F3: the clocks of a deleted spam ticket ran on and paged a
    breach). A restore (`undeleted`) does not reopen it (see _zendesk_restored)."""
    return [{"type": "ticket.closed"}]


def _zendesk_restored(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    out.ignored.append("zen:event-type:ticket.undeleted: the ticket was closed when it was deleted and stays "
                       "closed (its later events go to the dead letter as ticket_closed; docs/integrations.md)")
    return []


def _zendesk_purged(detail: dict[str, Any], event: dict[str, Any], m: ZendeskMapping, out: Conversion) -> Fields:
    # Zendesk deletes for good only a ticket already in the trash: its soft_deleted closed it
    out.ignored.append("zen:event-type:ticket.permanently_deleted: the ticket was closed when it was deleted "
                       "(ticket.soft_deleted)")
    return []


_ZENDESK_HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], ZendeskMapping, Conversion], Fields]] = {
    "created": _zendesk_created, "comment_added": _zendesk_comment,
    "status_changed": _zendesk_status, "priority_changed": _zendesk_priority,
    "soft_deleted": _zendesk_removed, "marked_as_spam": _zendesk_removed,
    "undeleted": _zendesk_restored, "permanently_deleted": _zendesk_purged,
}


# --------------------------------------------------------------------------- Jira Service Management


def _jira_value(value: Any) -> str | None:
    """A Jira field value as text: a scalar, an option / user / organization object, or a list's first item."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        for key in ("value", "name", "id", "key", "accountId"):
            if _text(value.get(key)) is not None:
                return _text(value.get(key))
        return None
    return _text(value)


def _jira_user(user: Any) -> str | None:
    if not isinstance(user, dict):
        return None
    for key in ("accountId", "key", "name", "emailAddress"):
        if _text(user.get(key)) is not None:
            return _text(user.get(key))
    return None


def _jira(payload: dict[str, Any], m: JiraMapping) -> Conversion:
    """The envelope: issue key and ids; what happened (and when) is the handler's of the webhook event."""
    kind = payload.get("webhookEvent")
    if not isinstance(kind, str):
        raise Unmappable("webhookEvent: missing (is this a Jira webhook body?)")
    out = Conversion()
    handler = _JIRA_HANDLERS.get(kind)
    if handler is None:
        out.ignored.append(f"{kind}: no SLA meaning")
        return out
    if kind == "comment_created" and "issue" not in payload:
        # Jira Server / Data Center strips the issue from comment_created (review of 2026-12-06, F2:
        # every comment was a 422, no provider reply ever met first response): its complete twin,
        # jira:issue_updated with issue_event_type_name issue_commented, maps the reply
        out.ignored.append("comment_created without its issue (Jira Server / Data Center): the "
                           "jira:issue_updated (issue_commented) webhook of the same comment maps the reply")
        return out
    issue = _object(payload.get("issue"), "issue")
    ticket = _text(issue.get("key"))
    if ticket is None:
        raise Unmappable("issue.key: missing (the ticket id)")
    issue_fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    identity, occurred, fields = handler(payload, issue_fields, m, out)
    digest = _digest("jira", _text(issue.get("id")) or ticket, identity)
    for n, f in enumerate(fields):
        out.events.append(_ticket({"event_id": f"jira-{digest}-{n}", "type": f.pop("type"),
                                   "occurred_at": _z(occurred), "ticket_id": ticket, **f}))
    return out


JiraResult = tuple[str, datetime, Fields]   # (identity for the ids, occurred_at, events)


def _jira_created(payload: dict[str, Any], issue: dict[str, Any], m: JiraMapping, out: Conversion) -> JiraResult:
    occurred = _instant(issue.get("created"), "issue.fields.created") if issue.get("created") \
        else _from_millis(payload.get("timestamp"), "timestamp")
    customer = _jira_value(issue.get(m.customer_field))
    if customer is None:
        raise Unmappable(f"issue.fields.{m.customer_field}: missing (jira.customer_field names the issue "
                         f"field that holds the customer)")
    fields: Fields = [{"type": "ticket.opened", "customer_id": m.customers.get(customer, customer),
                       "priority": _priority(_jira_value(issue.get("priority")), m, customer, True,
                                             "jira", "issue.fields.priority")}]
    status = (_jira_value(issue.get("status")) or "").casefold()
    if m.statuses.get(status, "open") != "open":
        fields.append({"type": "ticket.status_changed", "status": m.statuses[status]})
    if status in m.resolved_statuses or status in m.closed_statuses:   # created resolved / closed (F4)
        fields.append({"type": "ticket.resolved"})
    if status in m.closed_statuses:
        fields.append({"type": "ticket.closed"})
    return "created", occurred, fields


def _jira_updated(payload: dict[str, Any], issue: dict[str, Any], m: JiraMapping, out: Conversion) -> JiraResult:
    occurred = _from_millis(payload.get("timestamp"), "timestamp")
    changelog = payload.get("changelog")
    event_type = payload.get("issue_event_type_name")
    if changelog is None and isinstance(event_type, str) and event_type.startswith("issue_comment"):
        # "Issue updated" fires for every comment too (issue_commented, ..._edited, ..._deleted), with
        # the comment, the whole issue (its reporter: who the customer is) and no changelog. A new
        # comment is the reply, with the identity `comment_created` gives it (the same event id, the
        # same content where both can decide: a redelivery). Review of 2026-12-06, F1 / F2.
        if event_type == "issue_commented" and isinstance(payload.get("comment"), dict):
            return _jira_comment(payload, issue, m, out)
        out.ignored.append(f"jira:issue_updated ({event_type}): a comment edited or removed; the reply stands")
        return "comment-update", occurred, []
    if not isinstance(changelog, dict) or not isinstance(changelog.get("items"), list):
        raise Unmappable("changelog.items: missing; without the changelog the change (and the previous "
                         "value) is unknown: use a Jira webhook, not an automation rule's issue payload")
    fields: Fields = []
    for i, item in enumerate(changelog["items"]):
        item = _object(item, f"changelog.items[{i}]")
        what = str(item.get("fieldId") or item.get("field") or "").casefold()
        if what == "priority":
            fields.append({"type": "ticket.priority_changed", "requested_by": "provider",
                           "priority": _priority(item.get("toString"), m, _jira_value(issue.get(m.customer_field)),
                                                 False, "jira", f"changelog.items[{i}].toString")})
        elif what == "status":
            fields += _jira_status_change(item, m, f"changelog.items[{i}]")
        else:
            out.ignored.append(f"changelog.items[{i}] ({what or '?'}): no SLA meaning")
    return "changelog-" + (_text(changelog.get("id")) or str(payload.get("timestamp"))), occurred, fields


def _jira_status_change(item: dict[str, Any], m: JiraMapping, path: str) -> Fields:
    to = (_text(item.get("toString")) or "").casefold()
    if not to:
        raise Unmappable(f"{path}.toString: missing (the new status)")
    if to in m.resolved_statuses:
        return [{"type": "ticket.resolved"}]
    if to in m.closed_statuses:
        return [{"type": "ticket.closed"}]
    was = (_text(item.get("fromString")) or "").casefold()
    fields: Fields = [{"type": "ticket.reopened"}] if was in m.resolved_statuses else []
    return fields + [{"type": "ticket.status_changed", "status": m.statuses.get(to, "open")}]


def _jira_comment(payload: dict[str, Any], issue: dict[str, Any], m: JiraMapping, out: Conversion) -> JiraResult:
    comment = _object(payload.get("comment"), "comment")
    comment_id = _text(comment.get("id"))
    if comment_id is None:
        raise Unmappable("comment.id: missing")
    occurred = _instant(comment.get("created"), "comment.created")
    public = comment.get("jsdPublic", True)
    if not isinstance(public, bool):
        raise Unmappable(f"comment.jsdPublic: {public!r} is not true or false")
    if public and _jira_hidden_from_customer(comment):
        public = False
    author = comment.get("author")
    if _jira_user(author) is None:
        raise Unmappable("comment.author: missing (the reply's author decides provider or customer)")
    if "reporter" not in issue and payload.get("webhookEvent") == "comment_created":
        # Jira Cloud's comment_created carries only some issue fields, never the reporter (review of
        # 2026-12-06, F1: the reporter rule could not fire, and a customer with an Atlassian account
        # was taken for the provider: a missed first-response breach); the issue_updated
        # (issue_commented) twin of the same comment carries it and maps the reply
        out.ignored.append(f"comment_created: comment {comment_id} without the issue's reporter (Jira Cloud): the "
                           f"jira:issue_updated (issue_commented) webhook of the same comment maps the reply")
        return "comment-" + comment_id, occurred, []
    side = _jira_author(author, issue.get("reporter"), m, "reporter" in issue)
    if side is None:
        out.ignored.append(f"comment_created: comment {comment_id} is by an app (accountType 'app'), not a person: "
                           f"no reply (list its accountId in jira.provider_accounts to count it)")
        return "comment-" + comment_id, occurred, []
    return "comment-" + comment_id, occurred, [{"type": "ticket.replied", "author": side, "public": public}]


def _jira_hidden_from_customer(comment: dict[str, Any]) -> bool:
    """A comment the customer cannot see, where `jsdPublic` is absent (Jira Server / Data Center):
    marked internal by Service Management's `sd.public.comment` property, or restricted to a role or
    group (`visibility`). Such a note is no reply to the customer; taken as public it would meet first
    response (a missed breach)."""
    if isinstance(comment.get("visibility"), dict) and comment["visibility"]:
        return True
    properties = comment.get("properties")
    for prop in properties if isinstance(properties, list) else []:
        if isinstance(prop, dict) and prop.get("key") == "sd.public.comment":
            value = prop.get("value")
            if isinstance(value, str):   # the property as Jira stores it: JSON text
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            if isinstance(value, dict) and value.get("internal") is True:
                return True
    return False


def _jira_ids(user: Any) -> set[str]:
    """Every name a Jira user goes by: Cloud's accountId, Server/Data Center's key and name."""
    if not isinstance(user, dict):
        return set()
    return {t for t in (_text(user.get(k)) for k in ("accountId", "key", "name")) if t is not None}


def _jira_author(author: dict[str, Any], reporter: Any, m: JiraMapping, reporter_known: bool = True) -> str | None:
    """"customer" or "provider" for a comment's author, None for an app; Unmappable when nothing decides.

    The order (review jira.md F1; docs/integrations.md "Jira comment authors"); a customer taken for
    the provider stops the first-response clock (a missed breach), so nothing is guessed:
    1. the mapping's lists: `customer_accounts`, `provider_accounts`, then `provider_email_domains`;
    2. accountType "customer" (a JSM portal customer) -> customer;
    3. the issue's reporter -> customer;
    4. accountType "atlassian" -> provider, only when the mapping lists no provider (a portal
       customer who has an Atlassian account elsewhere is "atlassian" too: with provider lists the
       lists are the provider); accountType "app" (automation, Connect apps) -> no reply;
    5. anything else (Jira Server/Data Center sends no accountType) -> Unmappable."""
    ids = _jira_ids(author)
    if ids & m.customer_accounts:
        return "customer"
    if ids & m.provider_accounts:
        return "provider"
    email = _text(author.get("emailAddress"))
    if email and "@" in email and email.rsplit("@", 1)[1].casefold() in m.provider_email_domains:
        return "provider"
    kind = _text(author.get("accountType"))
    if kind == "customer":
        return "customer"
    reporter_ids = _jira_ids(reporter)
    # The reporter by the same kind of id (a Cloud accountId is never a Server key or name).
    for key in ("accountId", "key", "name"):
        a, r = _text(author.get(key)), _text(reporter.get(key)) if isinstance(reporter, dict) else None
        if a is not None and r is not None:
            if a == r:
                return "customer"
            break
    lists = m.provider_accounts or m.provider_email_domains
    if kind == "atlassian" and not lists and reporter_known:  # not the reporter, who is known
        return "provider"
    if kind == "app":
        return None
    who = " / ".join(sorted(ids)) or "?"
    if kind == "atlassian":
        why = ("accountType 'atlassian' (a licensed user, or a customer with an Atlassian account) matches neither "
               "jira.provider_accounts nor jira.provider_email_domains")
    elif kind is None:
        why = ("no accountType (Jira Server / Data Center) and not the issue's reporter" if reporter_ids else
               "no accountType (Jira Server / Data Center) and the issue has no reporter")
    else:
        why = f"accountType {kind!r} is not known"
    raise Unmappable(f"comment.author: {who}: {why}; list the account in jira.provider_accounts or "
                     f"jira.customer_accounts (or its e-mail domain in jira.provider_email_domains)")


def _jira_deleted(payload: dict[str, Any], issue: dict[str, Any], m: JiraMapping, out: Conversion) -> JiraResult:
    """An issue deleted (for good in Jira): its clocks stop with neither a met nor a breach, as for a
    deleted Zendesk ticket (review of 2026-12-06, F3: they ran on and paged)."""
    return "deleted", _from_millis(payload.get("timestamp"), "timestamp"), [{"type": "ticket.closed"}]


_JIRA_HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], JiraMapping, Conversion], JiraResult]] = {
    "jira:issue_created": _jira_created, "jira:issue_updated": _jira_updated, "comment_created": _jira_comment,
    "jira:issue_deleted": _jira_deleted,
}


# --------------------------------------------------------------------------- native events (/v1/events)

_ROUTES = {"contract.upserted": (CONTRACTS, "customer_id")}


@functools.lru_cache(maxsize=1)
def _catalog() -> Any:
    from policies.catalog import default_catalog

    return default_catalog()


def convert_native(body: bytes) -> Conversion:
    """One JSON object or JSON lines of native events, each checked by the codec; Unmappable names
    every rejected line (nothing of the body is sent then)."""
    text = body.strip()
    try:
        whole = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        whole = None
    lines = [text] if isinstance(whole, dict) else text.splitlines()
    out = Conversion()
    problems = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        checked = decode(line)
        if isinstance(checked, DeadLetterReason):
            problems.append(f"line {number}: {checked}")
            continue
        kind = checked.type
        if kind == "contract.upserted":  # as `slaproc publish` checks it: the worker would dead-letter it
            try:
                key = history_key(contract_from_event(checked, _catalog()))
            except ContractError as err:
                problems.append(f"line {number}: invalid_contract: {err}")
                continue
            out.events.append(NativeEvent(CONTRACTS, key, bytes(line), kind, checked.event_id))
            continue
        topic, key_field = _ROUTES.get(kind) or (
            (MONITORING_EVENTS, "service_id") if kind.startswith(("outage.", "maintenance."))
            else (TICKET_EVENTS, "ticket_id"))
        out.events.append(NativeEvent(topic, str(getattr(checked, key_field)), bytes(line), kind, checked.event_id))
    if problems:
        raise Unmappable("; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""))
    if not out.events:
        raise Unmappable("no event in the body")
    return out
