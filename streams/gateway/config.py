"""The mapping file of SPEC §13: how vendor fields become slaproc's native fields.

Validated like contracts: every problem is reported at once, each naming its path in the
file; an unknown key is an error that suggests the closest known key; a required key that
is missing is named. Vendor values (priorities, statuses) are compared case-insensitively,
so the loader folds the keys of those tables to lower case.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
class ZendeskMapping:
    customer_field: str
    customers: dict[str, str] = field(default_factory=dict)
    priorities: dict[str, str] = field(default_factory=dict)          # lower-cased vendor name -> policy name
    pause_statuses: dict[str, str] = field(default_factory=dict)      # lower-cased vendor status -> native status
    default_priority: str | None = None                              # for tickets without a priority


@dataclass(frozen=True)
class JiraMapping:
    customer_field: str
    customers: dict[str, str] = field(default_factory=dict)
    priorities: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)            # lower-cased status name -> native status
    resolved_statuses: frozenset[str] = frozenset()                   # lower-cased
    closed_statuses: frozenset[str] = frozenset()                     # lower-cased
    default_priority: str | None = None


@dataclass(frozen=True)
class Mapping:
    alertmanager: AlertmanagerMapping | None = None
    zendesk: ZendeskMapping | None = None
    jira: JiraMapping | None = None

    def section(self, source: str) -> Any:
        """The section for `source` ("alertmanager" | "zendesk" | "jira"), or None if the file has none."""
        return getattr(self, source)


# key -> (required, kind); kinds: "str", "table" (str -> str), "list" (of str)
_SECTIONS: dict[str, dict[str, tuple[bool, str]]] = {
    "alertmanager": {"service_label": (True, "str"), "scope_label": (False, "str"),
                     "components_label": (False, "str"), "regions_label": (False, "str"),
                     "match": (False, "table")},
    "zendesk": {"customer_field": (True, "str"), "customers": (False, "table"), "priorities": (False, "table"),
                "pause_statuses": (False, "table"), "default_priority": (False, "str")},
    "jira": {"customer_field": (True, "str"), "customers": (False, "table"), "priorities": (False, "table"),
             "statuses": (False, "table"), "resolved_statuses": (False, "list"),
             "closed_statuses": (False, "list"), "default_priority": (False, "str")},
}


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


def parse_mapping(data: Any, source: str = "mapping") -> Mapping:
    """A validated Mapping from the parsed YAML document; raises MappingConfigError listing every problem."""
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
                if not isinstance(value, dict):
                    problems.append(f"{path}: must be a mapping of vendor value -> slaproc value, got {value!r}")
                    continue
                table = {}
                for k, v in value.items():
                    kt, vt = _scalar_text(k), _scalar_text(v)
                    if kt is None or vt is None:
                        problems.append(f"{path}.{k}: keys and values must be non-empty strings, got {v!r}")
                    else:
                        table[kt] = vt
                values[key] = table
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
    built = {name: _build(name, values, problems) for name, values in sections.items()}
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


def _build(name: str, v: dict[str, Any], problems: list[str]) -> Any:
    if name == "alertmanager":
        return AlertmanagerMapping(service_label=v["service_label"], scope_label=v.get("scope_label"),
                                   components_label=v.get("components_label"),
                                   regions_label=v.get("regions_label"), match=dict(v.get("match", {})))
    priorities = _fold(v.get("priorities", {}), f"{name}.priorities", problems, lower_values=True)
    default = v.get("default_priority")
    common = dict(customer_field=v["customer_field"], customers=dict(v.get("customers", {})),
                  priorities=priorities, default_priority=default.lower() if default else None)
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
    return JiraMapping(statuses=statuses, resolved_statuses=resolved, closed_statuses=closed, **common)


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file; raises MappingConfigError (or OSError)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_mapping(data, str(path))
