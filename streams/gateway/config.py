"""The mapping file of SPEC §13: how vendor fields become slaproc's native fields.

Validated like contracts: every problem is reported at once, each naming its path in the
file; an unknown key is an error that suggests the closest known key; a required key that
is missing is named. Vendor values (priorities, statuses) are compared case-insensitively,
so the loader folds the keys of those tables to lower case.

Priorities are checked against the policy catalog when the file is loaded (review jira.md F5):
the four providers' policies name their priorities differently (neptune `critical`, vectorize
`urgent`), so a target priority a customer's policy lacks would make every ticket of that
customer a dead letter, or, worse, a valid but wrong priority. `priorities` is either one flat
table (the old form, for every customer) or one table per policy id; `customers` entries may
name their customer's policy, `default_policy` the policy of the others.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policies.catalog import Catalog

__all__ = ["MappingConfigError", "AlertmanagerMapping", "ZendeskMapping", "JiraMapping", "Mapping",
           "parse_mapping", "load_mapping"]

PAUSE_STATUSES = ("waiting_on_customer", "on_hold")
JIRA_STATUSES = ("open", "waiting_on_customer", "on_hold")
SCOPES = ("all_users", "partial")


class MappingConfigError(ValueError):
    """The mapping file is invalid; `problems` lists each problem with its path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: invalid mapping:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class AlertmanagerMapping:
    service_label: str
    scope_label: str | None = None
    components_label: str | None = None
    regions_label: str | None = None
    match: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _TicketMapping:
    """What Zendesk and Jira share: the customer and its priorities (review jira.md F5)."""

    customer_field: str
    customers: dict[str, str] = field(default_factory=dict)           # vendor value -> customer_id
    priorities: dict[str, str] = field(default_factory=dict)          # flat form: lower-cased vendor name -> priority
    default_priority: str | None = None                              # for tickets without a priority (flat)
    customer_policies: dict[str, str] = field(default_factory=dict)   # vendor value -> policy id
    default_policy: str | None = None                                # the policy of customers not listed with one
    policy_priorities: dict[str, dict[str, str]] = field(default_factory=dict)  # per-policy form
    policy_default_priorities: dict[str, str] = field(default_factory=dict)     # per-policy default_priority

    @property
    def per_policy(self) -> bool:
        return bool(self.policy_priorities)

    def policy_of(self, vendor_customer: str) -> str | None:
        """The policy of a customer as the vendor names it: its `customers` entry's, else `default_policy`."""
        return self.customer_policies.get(vendor_customer, self.default_policy)


@dataclass(frozen=True)
class ZendeskMapping(_TicketMapping):
    pause_statuses: dict[str, str] = field(default_factory=dict)      # lower-cased vendor status -> native status


@dataclass(frozen=True)
class JiraMapping(_TicketMapping):
    statuses: dict[str, str] = field(default_factory=dict)            # lower-cased status name -> native status
    resolved_statuses: frozenset[str] = frozenset()                   # lower-cased
    closed_statuses: frozenset[str] = frozenset()                     # lower-cased
    # Who wrote a comment (review jira.md F1; docs/integrations.md "Jira comment authors").
    customer_accounts: frozenset[str] = frozenset()                   # accountId (Server/DC: user key or name)
    provider_accounts: frozenset[str] = frozenset()
    provider_email_domains: frozenset[str] = frozenset()              # lower-cased, without "@"


@dataclass(frozen=True)
class Mapping:
    alertmanager: AlertmanagerMapping | None = None
    zendesk: ZendeskMapping | None = None
    jira: JiraMapping | None = None

    def section(self, source: str) -> Any:
        """The section for `source` ("alertmanager" | "zendesk" | "jira"), or None if the file has none."""
        return getattr(self, source)


# key -> (required, kind); kinds: "str", "table" (str -> str), "list" (of str), "customers" (str -> str or
# {customer, policy}), "priorities" (a table, or policy id -> table), "priority" (str, or policy id -> str)
_SECTIONS: dict[str, dict[str, tuple[bool, str]]] = {
    "alertmanager": {"service_label": (True, "str"), "scope_label": (False, "str"),
                     "components_label": (False, "str"), "regions_label": (False, "str"),
                     "match": (False, "table")},
    "zendesk": {"customer_field": (True, "str"), "customers": (False, "customers"),
                "priorities": (False, "priorities"), "pause_statuses": (False, "table"),
                "default_priority": (False, "priority"), "default_policy": (False, "str")},
    "jira": {"customer_field": (True, "str"), "customers": (False, "customers"), "priorities": (False, "priorities"),
             "statuses": (False, "table"), "resolved_statuses": (False, "list"),
             "closed_statuses": (False, "list"), "default_priority": (False, "priority"),
             "default_policy": (False, "str"), "customer_accounts": (False, "list"),
             "provider_accounts": (False, "list"), "provider_email_domains": (False, "list")},
}
_CUSTOMER_ENTRY = ("customer", "policy")


def _unknown(path: str, key: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return f"{path}{key}: unknown key{hint}"


def _scalar_text(value: Any) -> str | None:
    """YAML scalars people write for ids and names (`901`, `true`) as text; None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)) and str(value).strip():
        return str(value).strip()
    return None


def _table(value: Any, path: str, problems: list[str]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        problems.append(f"{path}: must be a mapping of vendor value -> slaproc value, got {value!r}")
        return None
    table = {}
    for k, v in value.items():
        kt, vt = _scalar_text(k), _scalar_text(v)
        if kt is None or vt is None:
            problems.append(f"{path}.{k}: keys and values must be non-empty strings, got {v!r}")
        else:
            table[kt] = vt
    return table


def _customers(value: Any, path: str, problems: list[str]) -> tuple[dict[str, str], dict[str, str]] | None:
    """`{vendor value: customer_id | {customer: customer_id, policy: policy id}}` -> (customers, policies)."""
    if not isinstance(value, dict):
        problems.append(f"{path}: must be a mapping of vendor value -> customer_id or {{customer, policy}}, "
                        f"got {value!r}")
        return None
    customers: dict[str, str] = {}
    policies: dict[str, str] = {}
    for k, v in value.items():
        kt = _scalar_text(k)
        if kt is None:
            problems.append(f"{path}.{k}: keys must be non-empty strings")
            continue
        if isinstance(v, dict):
            for unknown in (x for x in v if x not in _CUSTOMER_ENTRY):
                problems.append(_unknown(f"{path}.{kt}.", unknown, list(_CUSTOMER_ENTRY)))
            for name, into in (("customer", customers), ("policy", policies)):
                if name in v:
                    text = _scalar_text(v[name])
                    if text is None:
                        problems.append(f"{path}.{kt}.{name}: must be a non-empty string, got {v[name]!r}")
                    else:
                        into[kt] = text
            if "customer" not in v and "policy" not in v:
                problems.append(f"{path}.{kt}: name the customer, its policy, or both")
        elif _scalar_text(v) is None:
            problems.append(f"{path}.{kt}: must be a customer_id or {{customer, policy}}, got {v!r}")
        else:
            customers[kt] = str(_scalar_text(v))
    return customers, policies


def _priorities(value: Any, path: str, problems: list[str]) -> dict[str, Any] | None:
    """The flat table (vendor name -> priority), or one table per policy id (review jira.md F5)."""
    if not isinstance(value, dict):
        problems.append(f"{path}: must be a mapping of vendor priority -> priority, or of policy id -> such a "
                        f"mapping, got {value!r}")
        return None
    nested = [k for k, v in value.items() if isinstance(v, dict)]
    if nested and len(nested) != len(value):
        problems.append(f"{path}: mixes the flat form (vendor priority: priority) with tables per policy "
                        f"({', '.join(map(str, nested))}); use one form")
        return None
    if not nested:
        return _table(value, path, problems)
    out: dict[str, Any] = {}
    for k, v in value.items():
        table = _table(v, f"{path}.{k}", problems)
        if table is not None:
            out[str(k)] = table
    return out


def parse_mapping(data: Any, source: str = "mapping", catalog: Catalog | None = None) -> Mapping:
    """A validated Mapping from the parsed YAML document; raises MappingConfigError listing every problem.

    Policy ids and priorities are checked against `catalog` (default: the packaged one, which the
    worker uses)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise MappingConfigError(source, ["the file must be a mapping with alertmanager, zendesk and/or jira sections"])
    if not data:
        raise MappingConfigError(source, ["no section: write at least one of alertmanager, zendesk, jira"])
    sections: dict[str, dict[str, Any]] = {}
    for name, body in data.items():
        if name not in _SECTIONS:
            problems.append(_unknown("", name, list(_SECTIONS)))
            continue
        if not isinstance(body, dict):
            problems.append(f"{name}: must be a mapping of keys ({', '.join(_SECTIONS[name])})")
            continue
        values: dict[str, Any] = {}
        for key, value in body.items():
            spec = _SECTIONS[name].get(str(key))
            if spec is None:
                problems.append(_unknown(f"{name}.", key, list(_SECTIONS[name])))
                continue
            path = f"{name}.{key}"
            kind = spec[1]
            if kind == "str":
                text = _scalar_text(value)
                if text is None:
                    problems.append(f"{path}: must be a non-empty string, got {value!r}")
                else:
                    values[key] = text
            elif kind == "table":
                table = _table(value, path, problems)
                if table is not None:
                    values[key] = table
            elif kind == "customers":
                pair = _customers(value, path, problems)
                if pair is not None:
                    values[key] = pair
            elif kind == "priorities":
                found = _priorities(value, path, problems)
                if found is not None:
                    values[key] = found
            elif kind == "priority":
                text = _scalar_text(value)
                if isinstance(value, dict):
                    found = _table(value, path, problems)
                    if found is not None:
                        values[key] = found
                elif text is None:
                    problems.append(f"{path}: must be a priority, or a mapping of policy id -> priority, "
                                    f"got {value!r}")
                else:
                    values[key] = text
            else:
                if not isinstance(value, list) or any(_scalar_text(x) is None for x in value):
                    problems.append(f"{path}: must be a list of names, got {value!r}")
                else:
                    values[key] = [_scalar_text(x) for x in value]
        for key, (required, _) in _SECTIONS[name].items():
            if required and key not in values and not any(p.startswith(f"{name}.{key}:") for p in problems):
                problems.append(f"{name}.{key}: required")
        sections[name] = values
    if problems:
        raise MappingConfigError(source, problems)
    if catalog is None:
        from policies.catalog import default_catalog

        catalog = default_catalog()
    built = {name: _build(name, values, problems, catalog) for name, values in sections.items()}
    if problems:
        raise MappingConfigError(source, problems)
    return Mapping(**built)


def _fold(table: dict[str, str], path: str, problems: list[str], allowed: tuple[str, ...] | None = None,
          lower_values: bool = False) -> dict[str, str]:
    folded: dict[str, str] = {}
    for k, v in table.items():
        key = k.casefold()
        if key in folded:
            problems.append(f"{path}.{k}: listed twice (keys are compared case-insensitively)")
        if allowed is not None and v not in allowed:
            problems.append(f"{path}.{k}: {v!r} is not one of {', '.join(allowed)}")
        folded[key] = v.lower() if lower_values else v
    return folded


def _policy_problem(catalog: Catalog, policy: str, priority: str) -> str | None:
    """Why `priority` is not a priority of `policy` in every published version of it, or None. Every
    version: the gateway cannot know which version a ticket will fall under (SPEC §14)."""
    for version, _ in catalog.versions(policy):
        known = catalog.policy(policy, version).priorities
        if priority not in known:
            return (f"{priority!r} is not a priority of policy {policy} (catalog version {version}: "
                    f"{', '.join(known)})")
    return None


def _check_priorities(name: str, v: dict[str, Any], problems: list[str], catalog: Catalog) -> dict[str, Any]:
    """The customer, policy and priority fields of a Zendesk / Jira section, checked against the
    catalog (review jira.md F5): an unknown policy id, a policy without its table, or a target
    priority the policy lacks is refused when the file is loaded, not when a ticket arrives."""
    known = catalog.policies
    customers, customer_policies = v.get("customers", ({}, {}))
    for vendor, policy in customer_policies.items():
        if policy not in known:
            problems.append(f"{name}.customers.{vendor}.policy: unknown policy {policy!r}; one of {', '.join(known)}")
    default_policy = v.get("default_policy")
    if default_policy is not None and default_policy not in known:
        problems.append(f"{name}.default_policy: unknown policy {default_policy!r}; one of {', '.join(known)}")
    named = sorted({p for p in (*customer_policies.values(), default_policy) if p in known})
    raw = v.get("priorities", {})
    per_policy = bool(raw) and all(isinstance(t, dict) for t in raw.values())
    flat: dict[str, str] = {}
    tables: dict[str, dict[str, str]] = {}
    if per_policy:
        for policy, table in raw.items():
            if policy not in known:
                problems.append(f"{name}.priorities.{policy}: unknown policy; one of {', '.join(known)}")
                continue
            tables[policy] = _fold(table, f"{name}.priorities.{policy}", problems, lower_values=True)
            for vendor, target in table.items():
                why = _policy_problem(catalog, policy, target.lower())
                if why:
                    problems.append(f"{name}.priorities.{policy}.{vendor}: {why}")
        for policy in named:
            if policy not in tables:
                problems.append(f"{name}.priorities: no table for policy {policy} (named by {name}.customers or "
                                f"{name}.default_policy); its customers' priorities could not be mapped")
    else:
        flat = _fold(raw, f"{name}.priorities", problems, lower_values=True)
        # The flat form maps every customer's priorities alike: each target must exist in every policy
        # the file names; naming none, in at least one policy of the catalog (a typo is no priority).
        for vendor, target in raw.items():
            _check_flat(f"{name}.priorities.{vendor}", target.lower(), named, problems, catalog)
    default = v.get("default_priority")
    defaults: dict[str, str] = {}
    flat_default: str | None = None
    if isinstance(default, dict):
        if not per_policy:
            problems.append(f"{name}.default_priority: one per policy needs priorities per policy too")
        for policy, target in default.items():
            if policy not in tables:
                problems.append(f"{name}.default_priority.{policy}: not a policy of {name}.priorities "
                                f"({', '.join(tables) or 'none'})")
                continue
            why = _policy_problem(catalog, policy, target.lower())
            if why:
                problems.append(f"{name}.default_priority.{policy}: {why}")
            defaults[policy] = target.lower()
    elif default is not None:
        flat_default = default.lower()
        if per_policy:   # one name for every policy: it must be a priority of each
            for policy in tables:
                why = _policy_problem(catalog, policy, flat_default)
                if why:
                    problems.append(f"{name}.default_priority: {why}; give one per policy "
                                    f"({{{', '.join(f'{p}: …' for p in tables)}}})")
        else:
            _check_flat(f"{name}.default_priority", flat_default, named, problems, catalog)
    return dict(customer_field=v["customer_field"], customers=dict(customers), priorities=flat,
                default_priority=flat_default, customer_policies=dict(customer_policies),
                default_policy=default_policy, policy_priorities=tables, policy_default_priorities=defaults)


def _check_flat(path: str, target: str, named: list[str], problems: list[str], catalog: Catalog) -> None:
    if named:
        for policy in named:
            why = _policy_problem(catalog, policy, target)
            if why:
                problems.append(f"{path}: {why}; the flat form applies to every customer: write "
                                f"priorities per policy")
                return
    elif not any(_policy_problem(catalog, policy, target) is None for policy in catalog.policies):
        problems.append(f"{path}: {target!r} is not a priority of any policy of the catalog")


def _build(name: str, v: dict[str, Any], problems: list[str], catalog: Catalog) -> Any:
    if name == "alertmanager":
        return AlertmanagerMapping(service_label=v["service_label"], scope_label=v.get("scope_label"),
                                   components_label=v.get("components_label"),
                                   regions_label=v.get("regions_label"), match=dict(v.get("match", {})))
    common = _check_priorities(name, v, problems, catalog)
    if name == "zendesk":
        pauses = _fold(v.get("pause_statuses", {}), "zendesk.pause_statuses", problems, PAUSE_STATUSES)
        for reserved in ("solved", "closed"):
            if reserved in pauses:
                problems.append(f"zendesk.pause_statuses.{reserved}: {reserved} always maps to "
                                f"ticket.{'resolved' if reserved == 'solved' else 'closed'}")
        return ZendeskMapping(pause_statuses=pauses, **common)
    statuses = _fold(v.get("statuses", {}), "jira.statuses", problems, JIRA_STATUSES)
    resolved = frozenset(s.casefold() for s in v.get("resolved_statuses", []))
    closed = frozenset(s.casefold() for s in v.get("closed_statuses", []))
    for s in sorted((resolved | closed) & set(statuses)):
        problems.append(f"jira.statuses.{s}: also listed in resolved_statuses / closed_statuses")
    for s in sorted(resolved & closed):
        problems.append(f"jira.closed_statuses: {s!r} is also in resolved_statuses")
    customer_accounts = frozenset(v.get("customer_accounts", []))
    provider_accounts = frozenset(v.get("provider_accounts", []))
    for account in sorted(customer_accounts & provider_accounts):
        problems.append(f"jira.provider_accounts: {account!r} is also in customer_accounts")
    domains = frozenset(d.casefold().lstrip("@") for d in v.get("provider_email_domains", []))
    for d in sorted(domains):
        if "@" in d or "." not in d:
            problems.append(f"jira.provider_email_domains: {d!r} is not a domain (write example.com)")
    return JiraMapping(statuses=statuses, resolved_statuses=resolved, closed_statuses=closed,
                       customer_accounts=customer_accounts, provider_accounts=provider_accounts,
                       provider_email_domains=domains, **common)


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file; raises MappingConfigError (or OSError)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_mapping(data, str(path))
