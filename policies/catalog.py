"""The provider policy catalog: what each provider's plan promises, and its
resolution against one customer's contract terms.

The data lives in ``policies/catalog/<policy>.yaml`` (one file per provider, each
value commented with the seed sentence it encodes). A later published version of a
policy is a whole file of its own, ``<policy>@<catalog_version>.yaml``, with the
instant it takes effect (``effective_from``); the first version has none (it is in
force since the beginning). Versions are never edited or removed once published:
a ticket is measured under the version in force when it was opened, a month under
the one in force at its start (SPEC §14). ``load_catalog()`` validates the files;
``Catalog.resolve(terms, at=..)`` turns a contract into a frozen ``ResolvedPlan``
under one version: the ticket clocks per priority (with their business calendars),
the seed rules, the uptime commitment and the contracted services.

Pure: no clock, no environment; the calendars are built once per distinct set of
parameters and shared by every plan and ticket that uses them.
"""
from __future__ import annotations

import functools
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as _holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from events.contract import Clock, ContractService, ContractTerms, Metric, TargetSpec, Unit
from policies.calendar import BusinessCalendar

CATALOG_DIR = Path(__file__).with_name("catalog")

METRICS: tuple[str, ...] = ("first_response", "update", "resolution")
REGIONS: tuple[str, ...] = ("americas", "emea", "apac")
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class CatalogError(ValueError):
    """A catalog data file is invalid; the message names the file, the field and the problem."""


class ContractError(ValueError):
    """A contract cannot be accepted; the message names where it came from, the field and the problem."""


# --- catalog file schema ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HoursDef(_Strict):
    """Open hours on the listed weekdays, local wall time ``HH:MM`` (``24:00`` = midnight at the end)."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(min_length=1)
    open: str
    close: str

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        m = _HHMM.match(v)
        if not m or (m.group(1) == "24" and m.group(2) != "00"):
            raise ValueError(f"{v!r} is not a time HH:MM between 00:00 and 24:00")
        return v

    @model_validator(mode="after")
    def _open_before_close(self) -> "HoursDef":
        if _minute(self.open) >= _minute(self.close):
            raise ValueError(f"open {self.open} must be before close {self.close}")
        return self


class HolidayRegionDef(_Strict):
    country: str
    subdivision: str | None = None


class CalendarDef(_Strict):
    """A named calendar of a policy.

    ``timezone``: an IANA name, ``contract`` (the contract's timezone) or ``region``
    (the zone of the contract's region, see ``PolicyFile.regions``).
    ``holidays``: fixed regions, or ``contract`` (the contract's holiday country).
    ``holiday_timezone``: whose local days a holiday closes: an IANA name, or
    ``customer`` (the contract's timezone, else its region's zone, else ``timezone``);
    default ``timezone``.
    """

    always_open: bool = False
    timezone: str | None = None
    hours: tuple[HoursDef, ...] = ()
    day_length_hours: Decimal | None = Field(default=None, gt=0, le=24)
    holidays: tuple[HolidayRegionDef, ...] | Literal["contract"] = ()
    holiday_timezone: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> "CalendarDef":
        if self.always_open:
            if self.timezone or self.hours or self.day_length_hours or self.holidays or self.holiday_timezone:
                raise ValueError("an always_open calendar takes no timezone, hours, day_length_hours or holidays")
            return self
        missing = [n for n in ("timezone", "hours", "day_length_hours") if not getattr(self, n)]
        if missing:
            raise ValueError(f"a business-hours calendar needs {', '.join(missing)}")
        for name in (self.timezone, self.holiday_timezone):
            if name not in (None, "contract", "region", "customer") and not _is_timezone(name):
                raise ValueError(f"unknown IANA timezone {name!r}")
        if self.timezone == "customer" or self.holiday_timezone in ("contract", "region"):
            raise ValueError("timezone may be an IANA name, 'contract' or 'region'; holiday_timezone an IANA name or 'customer'")
        if isinstance(self.holidays, tuple):
            for region in self.holidays:
                problem = _holiday_region_problem(region.country, region.subdivision)
                if problem:
                    raise ValueError(problem)
        return self


class RegionDef(_Strict):
    timezone: str
    timezone_by_holiday_country: dict[str, str] = {}

    @model_validator(mode="after")
    def _zones(self) -> "RegionDef":
        for name in (self.timezone, *self.timezone_by_holiday_country.values()):
            if not _is_timezone(name):
                raise ValueError(f"unknown IANA timezone {name!r}")
        return self


class TargetDef(_Strict):
    """A catalog target; ``calendar`` defaults to the plan's coverage for the priority."""

    amount: Decimal = Field(gt=0)
    unit: Unit
    clock: Clock
    binding: bool
    calendar: str | None = None


class CoverageRule(_Strict):
    """Which calendar a ticket's business clock runs on; the first matching rule wins."""

    calendar: str
    priorities: tuple[str, ...] | None = None
    edition: Literal["enterprise", "government"] | None = None
    region: Literal["americas", "emea", "apac"] | None = None


class PlanDef(_Strict):
    coverage: tuple[CoverageRule, ...] = Field(min_length=1)
    requires: tuple[Literal["timezone", "region"], ...] = ()
    ticket_clocks: bool = True
    uptime_commitment_percent: Decimal | Literal["order_form"] | None = None
    order_form_targets: tuple[Metric, ...] = ()
    targets: dict[str, dict[Metric, tuple[TargetDef, ...]]] = {}

    @field_validator("uptime_commitment_percent")
    @classmethod
    def _percent(cls, v: Decimal | str | None) -> Decimal | str | None:
        if isinstance(v, Decimal) and not (0 < v <= 100):
            raise ValueError("must be a percentage in (0, 100]")
        return v


class RulesDef(_Strict):
    customer_cannot_raise_to: tuple[str, ...] = ()
    non_production_unavailable: tuple[str, ...] = ()
    non_production_fallback: str | None = None


class PolicyFile(_Strict):
    """One provider's catalog file."""

    policy: Literal["neural-magic", "neptune", "rescale", "vectorize"]
    catalog_version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    # SPEC §14: when this version takes effect (RFC 3339 with an offset); absent on the first
    # version of a policy, which is in force since the beginning.
    effective_from: datetime | None = None
    source: str = Field(min_length=1)
    priorities: tuple[str, ...] = Field(min_length=1)
    regions: dict[Literal["americas", "emea", "apac"], RegionDef] = {}
    calendars: dict[str, CalendarDef] = Field(min_length=1)
    rules: RulesDef = RulesDef()
    pause: dict[Metric, tuple[Literal["waiting_on_customer", "on_hold"], ...]] = {}
    attainment: Literal["quarterly"] | None = None
    plans: dict[str, PlanDef] = Field(min_length=1)

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.utcoffset() is None:
            raise ValueError("needs an offset (RFC 3339), e.g. 2026-10-15T00:00:00-04:00")
        return v

    @property
    def version_key(self) -> tuple[int, ...]:
        """`catalog_version` as numbers, for ordering (2026.10.1 < 2026.9.2 as text, not as a version)."""
        return tuple(int(part) for part in self.catalog_version.split("."))

    def reference_problems(self) -> Iterable[tuple[str, str]]:
        """Cross-references the schema cannot check: ``(field path, problem)`` pairs."""
        known = set(self.priorities)
        if len(known) != len(self.priorities):
            yield "priorities", "duplicate priority"
        for name in self.priorities:
            if name != name.lower():
                yield "priorities", f"{name!r} must be lower-case"
        for key in ("customer_cannot_raise_to", "non_production_unavailable"):
            for p in getattr(self.rules, key):
                if p not in known:
                    yield f"rules.{key}", f"unknown priority {p!r}"
        fallback = self.rules.non_production_fallback
        if fallback is not None and (fallback not in known or fallback in self.rules.non_production_unavailable):
            yield "rules.non_production_fallback", f"{fallback!r} must be a priority available for non-production"
        if self.rules.non_production_unavailable and fallback is None:
            yield "rules.non_production_fallback", "needed when non_production_unavailable is set"
        for name, cal in self.calendars.items():
            if cal.timezone == "region":
                if not self.regions:
                    yield f"calendars.{name}.timezone", "'region' needs a top-level regions table"
        for plan_name, plan in self.plans.items():
            where = f"plans.{plan_name}"
            for i, rule in enumerate(plan.coverage):
                if rule.calendar not in self.calendars:
                    yield f"{where}.coverage[{i}].calendar", f"unknown calendar {rule.calendar!r}"
                for p in rule.priorities or ():
                    if p not in known:
                        yield f"{where}.coverage[{i}].priorities", f"unknown priority {p!r}"
                if rule.region and "region" not in plan.requires:
                    yield f"{where}.coverage[{i}].region", "a plan matching on region must list 'region' in requires"
                if self.calendars.get(rule.calendar) and self.calendars[rule.calendar].timezone == "contract" \
                        and "timezone" not in plan.requires:
                    yield f"{where}.requires", f"calendar {rule.calendar!r} uses the contract's timezone; add 'timezone'"
            if not _coverage_is_total(plan, self.priorities):
                yield f"{where}.coverage", "some priority/edition/region has no calendar (add a rule without conditions)"
            for priority, metrics in plan.targets.items():
                if priority not in known:
                    yield f"{where}.targets.{priority}", "unknown priority"
                    continue
                for metric, targets in metrics.items():
                    for i, t in enumerate(targets):
                        path = f"{where}.targets.{priority}.{metric}[{i}]"
                        if t.calendar is not None and t.calendar not in self.calendars:
                            yield f"{path}.calendar", f"unknown calendar {t.calendar!r}"
                        elif t.clock == "calendar" and t.calendar and not self.calendars[t.calendar].always_open:
                            # Plain elapsed time: the clock runs on 24x7 whatever the coverage.
                            yield f"{path}.calendar", "a calendar-clock target runs 24x7: name an always_open calendar or none"
                        elif t.clock == "business" and t.calendar and self.calendars[t.calendar].always_open:
                            yield f"{path}.clock", "a target on an always_open calendar is plain elapsed time: use clock calendar"
                    bindings = [t.binding for t in targets]
                    if len(set(bindings)) != len(bindings):
                        yield f"{where}.targets.{priority}.{metric}", "at most one binding and one non-binding target"
            if plan.ticket_clocks and not plan.targets and not plan.order_form_targets:
                yield f"{where}.targets", "a plan with ticket clocks needs catalog targets or order_form_targets"
            if not plan.ticket_clocks and (plan.targets or plan.order_form_targets):
                yield f"{where}.ticket_clocks", "a plan without ticket clocks takes no targets"


def _coverage_is_total(plan: PlanDef, priorities: tuple[str, ...]) -> bool:
    regions = REGIONS if "region" in plan.requires else (None,)
    for priority in priorities:
        for edition in ("enterprise", "government", None):
            for region in regions:
                if _match_coverage(plan.coverage, priority, edition, region) is None:
                    return False
    return True


def _match_coverage(rules: tuple[CoverageRule, ...], priority: str, edition: str | None,
                    region: str | None) -> CoverageRule | None:
    for rule in rules:
        if rule.priorities is not None and priority not in rule.priorities:
            continue
        if rule.edition is not None and rule.edition != edition:
            continue
        if rule.region is not None and rule.region != region:
            continue
        return rule
    return None


# --- helpers ----------------------------------------------------------------------------


def _minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@functools.lru_cache(maxsize=1024)
def _is_timezone(name: str) -> bool:
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        return False
    return True


@functools.lru_cache(maxsize=1)
def _supported_countries() -> Mapping[str, frozenset[str]]:
    return {c: frozenset(subs) for c, subs in _holidays.list_supported_countries().items()}


def _holiday_region_problem(country: str, subdivision: str | None) -> str | None:
    """None if the `holidays` package knows the country (and subdivision), else the problem."""
    supported = _supported_countries()
    if country not in supported or len(country) not in (2, 3) or not country.isupper():
        return f"unknown holiday country {country!r} (an ISO 3166 code the holidays package supports)"
    if subdivision is not None and subdivision not in supported[country]:
        return f"unknown holiday subdivision {subdivision!r} of {country}"
    return None


def _hours_to_weekly(hours: Iterable[HoursDef]) -> tuple[tuple[int, int, int], ...]:
    return tuple(sorted((_WEEKDAYS[d], _minute(h.open), _minute(h.close)) for h in hours for d in h.days))


def _decimal_timedelta(amount: Decimal, unit: timedelta) -> timedelta:
    micros = Decimal(unit // timedelta(microseconds=1)) * amount
    return timedelta(microseconds=int(micros.to_integral_value()))


@functools.lru_cache(maxsize=4096)
def _calendar(timezone: str, weekly: tuple[tuple[int, int, int], ...], day_length: timedelta,
              holiday_regions: tuple[tuple[str, str | None], ...], holiday_timezone: str) -> BusinessCalendar:
    """One shared calendar per distinct parameter set (thousands of tickets reference a few)."""
    return BusinessCalendar(timezone=timezone, weekly=weekly, day_length=day_length,
                            holiday_regions=holiday_regions, holiday_timezone=holiday_timezone)


# --- resolved plan ----------------------------------------------------------------------


_UNIT = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class ClockTarget:
    """One SLA clock of a priority: `amount` `unit` on the `clock`.

    ``calendar`` is the calendar the clock runs on: for a business clock, the
    plan's business hours for the priority; for a calendar clock, always-open
    (24x7), so ``calendar.add_business(start, duration)`` is right for both.
    """

    metric: Metric
    binding: bool
    amount: Decimal
    unit: Unit
    clock: Clock
    calendar: BusinessCalendar
    # Computed once: deadlines are computed from it on the hot path.
    duration: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """``duration``: the target as a duration of the clock's time: business days are
        ``amount × calendar.day_length`` of open time; calendar days are 24 h;
        hours and minutes are plain on either clock."""
        if self.unit == "days" and self.clock == "business":
            duration = self.calendar.business_days(self.amount)
        else:
            duration = _decimal_timedelta(self.amount, _UNIT[self.unit])
        object.__setattr__(self, "duration", duration)

    def describe(self) -> str:
        kind = "commitment" if self.binding else "objective"
        amount = format(self.amount.normalize(), "f")
        clock = "business " if self.clock == "business" else ""
        where = "" if self.calendar.is_always_open else f" [{self.calendar.describe()}]"
        return f"{self.metric} {kind} {amount} {clock}{self.unit} ({'24x7' if self.clock == 'calendar' else 'open time'}){where}"


_METRIC_ORDER = {m: i for i, m in enumerate(METRICS)}


@dataclass(frozen=True, slots=True)
class _PlanCore:
    """Everything a plan resolves to that does not depend on the customer's identity."""

    policy: str
    plan: str
    policy_version: str
    priorities: tuple[str, ...]
    targets_by_priority: Mapping[str, tuple[ClockTarget, ...]]
    calendars_by_priority: Mapping[str, BusinessCalendar]
    pause_statuses: Mapping[str, frozenset[str]]
    customer_cannot_raise_to: frozenset[str]
    non_production_unavailable: frozenset[str]
    non_production_fallback: str | None
    ticket_clocks: bool
    uptime_commitment_percent: Decimal | None
    attainment_quarterly: bool


@dataclass(frozen=True, slots=True, eq=False)
class ResolvedPlan:
    """A contract's plan, resolved against the catalog. Immutable; share freely.

    Durations are in the units of each target's clock; calendars carry their
    own timezones. ``policy_version`` is the catalog_version of the provider's
    file this plan was resolved from.
    """

    _core: _PlanCore
    services: tuple[ContractService, ...] = ()
    # Copies of the core's fields as plain attributes: the clocks read them on every event.
    policy: str = field(init=False)
    plan: str = field(init=False)
    policy_version: str = field(init=False)
    priorities: tuple[str, ...] = field(init=False)
    pause_statuses: Mapping[str, frozenset[str]] = field(init=False)
    customer_cannot_raise_to: frozenset[str] = field(init=False)
    non_production_unavailable: frozenset[str] = field(init=False)
    non_production_fallback: str | None = field(init=False)
    ticket_clocks: bool = field(init=False)
    uptime_commitment_percent: Decimal | None = field(init=False)
    attainment_quarterly: bool = field(init=False)

    def __post_init__(self) -> None:
        for name in ("policy", "plan", "policy_version", "priorities", "pause_statuses", "customer_cannot_raise_to",
                     "non_production_unavailable", "non_production_fallback", "ticket_clocks",
                     "uptime_commitment_percent", "attainment_quarterly"):
            object.__setattr__(self, name, getattr(self._core, name))

    def targets(self, priority: str) -> tuple[ClockTarget, ...]:
        """The clocks a ticket of `priority` runs, first_response, update, resolution
        in that order (objective before commitment). Empty when the plan has no
        ticket clocks. Raises KeyError for a priority the policy does not have."""
        try:
            return self._core.targets_by_priority[priority]
        except KeyError:
            raise KeyError(f"{self.policy} has no priority {priority!r}; known: {', '.join(self.priorities)}") from None

    def business_calendar(self, priority: str) -> BusinessCalendar:
        """The calendar of the plan's coverage for `priority` (24x7 where the priority is covered round the clock)."""
        try:
            return self._core.calendars_by_priority[priority]
        except KeyError:
            raise KeyError(f"{self.policy} has no priority {priority!r}; known: {', '.join(self.priorities)}") from None

    def pauses(self, metric: str, status: str) -> bool:
        return status in self._core.pause_statuses.get(metric, frozenset())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResolvedPlan):
            return NotImplemented
        return self._core == other._core and self.services == other.services

    def same_clocks(self, other: "ResolvedPlan") -> bool:
        """Whether a ticket's clocks run the same under `other` (same targets, calendars, pauses and
        rules: the services do not matter)."""
        return self._core is other._core or self._core == other._core

    def __hash__(self) -> int:
        return hash((self.policy, self.plan, self.policy_version, self.services))

    def __repr__(self) -> str:
        return f"ResolvedPlan({self.policy}/{self.plan} @ {self.policy_version}, {len(self.services)} services)"

    def describe(self) -> str:
        """Several lines for humans: the plan, each priority's clocks and calendars, rules, uptime."""
        lines = [f"{self.policy} / {self.plan} (catalog {self.policy_version})"]
        if not self.ticket_clocks:
            lines.append("  no ticket clocks (community support only)")
        else:
            for p in self.priorities:
                lines.append(f"  {p}: coverage {self.business_calendar(p).describe()}")
                for t in self.targets(p):
                    lines.append(f"    {t.describe()}")
        if self.customer_cannot_raise_to:
            lines.append(f"  a customer cannot raise a ticket to: {', '.join(sorted(self.customer_cannot_raise_to))}")
        if self.non_production_unavailable:
            lines.append(f"  not for non-production: {', '.join(sorted(self.non_production_unavailable))}"
                         f" (becomes {self.non_production_fallback})")
        for metric, statuses in sorted(self.pause_statuses.items()):
            lines.append(f"  {metric} pauses while: {', '.join(sorted(statuses))}")
        if self.uptime_commitment_percent is not None:
            lines.append(f"  monthly uptime commitment {self.uptime_commitment_percent} %")
        if self.attainment_quarterly:
            lines.append("  quarterly first-response attainment reported")
        for s in self.services:
            fee = f"{s.monthly_fee} {s.currency}/month" if s.monthly_fee is not None else f"{s.annual_fee} {s.currency}/year"
            lines.append(f"  service {s.service_id}: {fee}")
        return "\n".join(lines)


_PLAN_FIELDS = frozenset(ContractTerms.model_fields) - {"customer_id", "services", "effective_from"}


# --- the catalog ------------------------------------------------------------------------


class Catalog:
    """All providers' policy files, every published version of each, validated.
    ``resolve`` is cached per contract terms and version."""

    def __init__(self, policies: Mapping[str, PolicyFile | Sequence[PolicyFile]], *, cache_size: int = 4096) -> None:
        """`policies`: per policy id, its file, or its versions (any order; `load_catalog` checks them)."""
        self._versions: dict[str, tuple[PolicyFile, ...]] = {
            name: tuple(sorted((files,) if isinstance(files, PolicyFile) else files, key=lambda f: f.version_key))
            for name, files in policies.items()}
        self._by_version = {(name, f.catalog_version): f for name, files in self._versions.items() for f in files}
        self._cache: OrderedDict[str, _PlanCore] = OrderedDict()
        self._cache_size = cache_size

    @property
    def policies(self) -> tuple[str, ...]:
        return tuple(sorted(self._versions))

    def policy(self, name: str, version: str | None = None) -> PolicyFile:
        """The policy's file of `version` (default: the latest published)."""
        if version is None:
            return self._versions[name][-1]
        try:
            return self._by_version[(name, version)]
        except KeyError:
            known = ", ".join(f.catalog_version for f in self._versions.get(name, ()))
            raise KeyError(f"{name} has no catalog version {version!r}; known: {known}") from None

    def plans(self, policy: str) -> tuple[str, ...]:
        return tuple(self.policy(policy).plans)

    def version(self, policy: str) -> str:
        """The latest published catalog version of `policy`."""
        return self.policy(policy).catalog_version

    def versions(self, policy: str) -> tuple[tuple[str, datetime | None], ...]:
        """Every published version of `policy`, oldest first: (catalog_version, effective_from)."""
        return tuple((f.catalog_version, f.effective_from) for f in self._versions[policy])

    def has_version(self, policy: str, version: str) -> bool:
        return (policy, version) in self._by_version

    def version_at(self, policy: str, at: datetime) -> str:
        """The catalog version of `policy` in force at the instant `at` (SPEC §14): the latest whose
        `effective_from` is at or before `at`; the first version is in force since the beginning."""
        files = self._versions[policy]
        current = files[0]
        for f in files[1:]:
            if f.effective_from is not None and f.effective_from <= at:
                current = f
        return current.catalog_version

    # -- validation ------------------------------------------------------------------

    def problems(self, terms: ContractTerms, version: str | None = None) -> list[tuple[str, str]]:
        """What keeps `terms` from resolving: ``(field path, problem)`` pairs, empty when valid.

        `version`: check against that catalog version only; default: every version the terms can
        meet, i.e. those still in force at or after the start of the month of the contract's
        `effective_from` (all of them when it has none), so that a contract accepted today does
        not fail on a ticket or a month later."""
        if terms.policy not in self._versions:
            return [("policy", f"unknown policy {terms.policy!r}; known: {', '.join(self.policies)}")]
        if version is not None:
            return self._problems(terms, self.policy(terms.policy, version))
        files = self._versions[terms.policy]
        start = terms.effective_from
        if start is not None:  # its first month is measured from the month's start (SPEC §14)
            start = start.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for pf, successor in zip(files, files[1:] + (None,)):
            if start is not None and successor is not None and successor.effective_from is not None \
                    and successor.effective_from <= start:
                continue  # superseded before the contract's first month
            found = self._problems(terms, pf)
            if found:
                if len(files) > 1:
                    found = [(where, f"{problem} (catalog {pf.catalog_version})") for where, problem in found]
                return found
        return []

    def _problems(self, terms: ContractTerms, pf: PolicyFile) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        plan = pf.plans.get(terms.plan)
        if plan is None:
            return [("plan", f"unknown plan {terms.plan!r} for policy {terms.policy}; known: {', '.join(pf.plans)}")]
        if terms.timezone is not None and not _is_timezone(terms.timezone):
            out.append(("timezone", f"unknown IANA timezone {terms.timezone!r}"))
        if "timezone" in plan.requires and terms.timezone is None:
            out.append(("timezone", f"required by {terms.policy}/{terms.plan} (targets run in the customer's business hours)"))
        if "region" in plan.requires and terms.region is None:
            out.append(("region", f"required by {terms.policy}/{terms.plan}: one of {', '.join(REGIONS)}"))
        if terms.holiday_subdivision is not None and terms.holiday_country is None:
            out.append(("holiday_subdivision", "given without holiday_country"))
        if terms.holiday_country is not None:
            problem = _holiday_region_problem(terms.holiday_country, terms.holiday_subdivision)
            if problem:
                field_name = "holiday_subdivision" if "subdivision" in problem else "holiday_country"
                out.append((field_name, problem))
        ov = terms.overrides
        if plan.uptime_commitment_percent == "order_form" and ov.uptime_commitment_percent is None:
            out.append(("overrides.uptime_commitment_percent",
                        f"missing: {terms.policy}/{terms.plan} takes its uptime commitment from the order form"))
        known = set(pf.priorities)
        if ov.targets is not None:
            if not plan.ticket_clocks:
                out.append(("overrides.targets", f"{terms.policy}/{terms.plan} has no ticket clocks (community support only)"))
            for priority, metrics in ov.targets.items():
                if priority not in known:
                    out.append((f"overrides.targets.{priority}",
                                f"unknown priority {priority!r} for {terms.policy}; known: {', '.join(pf.priorities)}"))
                    continue
                for metric, spec in metrics.items():
                    specs = spec if isinstance(spec, tuple) else (spec,)
                    if not specs:
                        out.append((f"overrides.targets.{priority}.{metric}", "empty list of targets"))
                    bindings = [s.binding for s in specs]
                    if len(set(bindings)) != len(bindings):
                        out.append((f"overrides.targets.{priority}.{metric}",
                                    "at most one binding and one non-binding target"))
        for metric in plan.order_form_targets:
            for priority in pf.priorities:
                given = (ov.targets or {}).get(priority, {})
                if metric not in given:
                    out.append((f"overrides.targets.{priority}.{metric}",
                                f"missing: {terms.policy}/{terms.plan} takes its {metric} targets from the order form"))
        if ov.business_hours is not None and not _is_timezone(ov.business_hours.timezone):
            out.append(("overrides.business_hours.timezone", f"unknown IANA timezone {ov.business_hours.timezone!r}"))
        return out

    # -- resolution ------------------------------------------------------------------

    def resolve(self, terms: ContractTerms, *, at: datetime | None = None, version: str | None = None) -> ResolvedPlan:
        """Resolve a contract against its policy: under `version`, else the version in force at
        `at`, else the latest. Raises ContractError (naming the customer, the field and the
        problem) for terms the catalog cannot accept, and KeyError for an unknown version."""
        if terms.policy not in self._versions:
            field_path, problem = self.problems(terms)[0]
            raise ContractError(f"contract customer_id={terms.customer_id!r}: {field_path}: {problem}")
        if version is None:
            version = self.version_at(terms.policy, at) if at is not None else self.version(terms.policy)
        pf = self.policy(terms.policy, version)
        # Only the fields that shape the plan: equal plans share one core, and a
        # `contract.upserted` event (a ContractTerms subclass) keys like its terms.
        key = version + terms.model_dump_json(include=set(_PLAN_FIELDS))
        core = self._cache.get(key)
        if core is None:
            problems = self.problems(terms, version)
            if problems:
                field_path, problem = problems[0]
                raise ContractError(f"contract customer_id={terms.customer_id!r}: {field_path}: {problem}")
            core = self._resolve_core(terms, pf)
            self._cache[key] = core
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return ResolvedPlan(core, tuple(terms.services))

    def _resolve_core(self, terms: ContractTerms, pf: PolicyFile) -> _PlanCore:
        plan = pf.plans[terms.plan]
        always = BusinessCalendar.always_open()
        # Rescale's seed speaks of Enterprise and Government Editions; a contract
        # that names none gets the standard (Enterprise) hours.
        edition = terms.edition
        override_targets = terms.overrides.targets or {}

        calendars: dict[str, BusinessCalendar] = {}
        targets: dict[str, tuple[ClockTarget, ...]] = {}
        for priority in pf.priorities:
            rule = _match_coverage(plan.coverage, priority, edition, terms.region)
            assert rule is not None  # coverage totality is checked at load
            coverage = self._build_calendar(pf, rule.calendar, terms)
            calendars[priority] = coverage
            if not plan.ticket_clocks:
                targets[priority] = ()
                continue
            by_metric: dict[str, list[ClockTarget]] = {}
            for metric, defs in plan.targets.get(priority, {}).items():
                by_metric[metric] = [
                    ClockTarget(metric, d.binding, d.amount, d.unit, d.clock,
                                always if d.clock == "calendar"
                                else self._build_calendar(pf, d.calendar, terms) if d.calendar else coverage)
                    for d in defs
                ]
            for metric, spec in override_targets.get(priority, {}).items():
                specs: tuple[TargetSpec, ...] = spec if isinstance(spec, tuple) else (spec,)
                by_metric[metric] = [
                    ClockTarget(metric, s.binding, s.amount, s.unit, s.clock,
                                always if s.clock == "calendar" else coverage)
                    for s in specs
                ]
            targets[priority] = tuple(sorted(
                (t for ts in by_metric.values() for t in ts),
                key=lambda t: (_METRIC_ORDER[t.metric], t.binding)))

        pause: dict[str, set[str]] = {m: set(s) for m, s in pf.pause.items()}
        if terms.overrides.pause is not None:
            for metric in terms.overrides.pause.metrics:
                pause.setdefault(metric, set()).update(terms.overrides.pause.statuses)

        if terms.overrides.uptime_commitment_percent is not None:
            uptime = terms.overrides.uptime_commitment_percent
        elif isinstance(plan.uptime_commitment_percent, Decimal):
            uptime = plan.uptime_commitment_percent
        else:
            uptime = None

        return _PlanCore(
            policy=pf.policy,
            plan=terms.plan,
            policy_version=pf.catalog_version,
            priorities=pf.priorities,
            targets_by_priority=MappingProxyType(targets),
            calendars_by_priority=MappingProxyType(calendars),
            pause_statuses=MappingProxyType({m: frozenset(s) for m, s in pause.items() if s}),
            customer_cannot_raise_to=frozenset(pf.rules.customer_cannot_raise_to),
            non_production_unavailable=frozenset(pf.rules.non_production_unavailable),
            non_production_fallback=pf.rules.non_production_fallback,
            ticket_clocks=plan.ticket_clocks,
            uptime_commitment_percent=uptime,
            attainment_quarterly=pf.attainment == "quarterly",
        )

    def _build_calendar(self, pf: PolicyFile, name: str, terms: ContractTerms) -> BusinessCalendar:
        cal = pf.calendars[name]
        if cal.always_open:
            # Round-the-clock coverage ignores holidays (see rescale.yaml).
            return BusinessCalendar.always_open()
        region_zone = self._region_zone(pf, terms)
        override = terms.overrides.business_hours
        if cal.timezone == "contract":
            timezone = terms.timezone
        elif cal.timezone == "region":
            timezone = region_zone
        else:
            timezone = cal.timezone
        regions: tuple[tuple[str, str | None], ...]
        if cal.holidays == "contract":
            regions = ((terms.holiday_country, terms.holiday_subdivision),) if terms.holiday_country else ()
        else:
            regions = tuple((r.country, r.subdivision) for r in cal.holidays)
        if cal.holiday_timezone == "customer":
            holiday_tz = terms.timezone or region_zone or timezone
        else:
            holiday_tz = cal.holiday_timezone or timezone
        if override is not None:
            # The order form's business hours replace the plan's; the holidays stay,
            # counted on the local days of the new hours' zone.
            return _calendar(override.timezone, tuple(override.weekly),
                             _decimal_timedelta(override.day_length_hours, timedelta(hours=1)),
                             regions, override.timezone)
        assert timezone is not None  # `requires` is checked before resolving
        day_length = _decimal_timedelta(cal.day_length_hours, timedelta(hours=1))  # type: ignore[arg-type]
        return _calendar(timezone, _hours_to_weekly(cal.hours), day_length, regions, holiday_tz)

    @staticmethod
    def _region_zone(pf: PolicyFile, terms: ContractTerms) -> str | None:
        if terms.region is None or terms.region not in pf.regions:
            return None
        region = pf.regions[terms.region]
        return region.timezone_by_holiday_country.get(terms.holiday_country or "", region.timezone)


# --- loading ----------------------------------------------------------------------------


def format_loc(loc: Iterable[Any], empty: str = "(top level)") -> str:
    """A pydantic error location as a field path: `services[0].currency`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or empty


def load_policy_file(path: str | Path) -> PolicyFile:
    """Read and validate one catalog file; CatalogError names the file, field and problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path.name}: (top level): must be a mapping")
    try:
        pf = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            messages.append(f"{path.name}: {format_loc(err['loc'])}: {msg}")
        raise CatalogError("; ".join(messages)) from None
    problems = [f"{path.name}: {where}: {msg}" for where, msg in pf.reference_problems()]
    if problems:
        raise CatalogError("; ".join(problems))
    if path.stem not in (pf.policy, f"{pf.policy}@{pf.catalog_version}"):
        raise CatalogError(f"{path.name}: policy: {pf.policy!r} version {pf.catalog_version} does not match the file "
                           f"name (expected {pf.policy}.yaml or {pf.policy}@{pf.catalog_version}.yaml)")
    return pf


def _version_problem(files: Sequence[PolicyFile]) -> str | None:
    """Why a policy's versions (oldest first) are not a history, or None: the first has no
    `effective_from` (in force since the beginning); each later one has one, after its
    predecessor's; versions and instants are distinct."""
    first = files[0]
    if first.effective_from is not None:
        return (f"version {first.catalog_version} is the first of {first.policy}: it takes no effective_from "
                "(it is in force since the beginning)")
    for before, after in zip(files, files[1:]):
        if before.catalog_version == after.catalog_version:
            return f"catalog_version {after.catalog_version} of {after.policy} is published twice"
        if after.effective_from is None:
            return f"version {after.catalog_version} of {after.policy} needs effective_from (only the first has none)"
        if before.effective_from is not None and after.effective_from <= before.effective_from:
            return (f"version {after.catalog_version} of {after.policy} takes effect "
                    f"{after.effective_from.isoformat()}, not after version {before.catalog_version} "
                    f"({before.effective_from.isoformat()})")
    return None


def load_catalog(directory: str | Path | None = None) -> Catalog:
    """Load every ``*.yaml`` in `directory` (default: the package's catalog)."""
    directory = Path(directory) if directory is not None else CATALOG_DIR
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{directory}: no catalog files (*.yaml)")
    policies: dict[str, list[PolicyFile]] = {}
    for path in files:
        pf = load_policy_file(path)
        policies.setdefault(pf.policy, []).append(pf)
    for name, versions in policies.items():
        versions.sort(key=lambda f: f.version_key)
        problem = _version_problem(versions)
        if problem:
            raise CatalogError(f"{directory}: {name}: effective_from: {problem}")
    return Catalog(policies)


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The packaged catalog, loaded once."""
    return load_catalog()
