"""Customer contracts: loading a contracts YAML file (replay ``--contracts``) or a
``contract.upserted`` event, validating the terms against the policy catalog and
resolving them to a ``Contract`` (the terms plus their ``ResolvedPlan``).

Every rejection is a ``ContractError`` whose message names where the contract
came from (file and index, or the event), the customer, the field and the
problem, e.g.::

    contracts.yaml: contracts[2] (customer_id='acme'): overrides.uptime_commitment_percent: missing: ...

The processor turns a ``ContractError`` from an event into a dead letter.
"""
from __future__ import annotations

import difflib
import gc
import types
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Union, get_args, get_origin

import holidays
import yaml
from pydantic import BaseModel, ValidationError

from events.contract import ContractService, ContractTerms
from policies.catalog import Catalog, ContractError, ResolvedPlan, default_catalog, format_loc

__all__ = [
    "Contract",
    "ContractError",
    "ResolvedContract",
    "contract_from_event",
    "contract_from_terms",
    "contract_warnings",
    "history_key",
    "recorded_order",
    "unknown_keys",
    "load_contracts_yaml",
    "parse_contracts",
    "validate_terms",
]


@dataclass(frozen=True, slots=True, eq=False)
class Contract:
    """A customer's accepted contract: the terms as given and the plan they resolve to."""

    terms: ContractTerms
    plan: ResolvedPlan

    @property
    def customer_id(self) -> str:
        return self.terms.customer_id

    @property
    def policy(self) -> str:
        return self.plan.policy

    @property
    def policy_version(self) -> str:
        return self.plan.policy_version

    @property
    def services(self) -> tuple[ContractService, ...]:
        return self.plan.services

    @property
    def effective_from(self) -> datetime | None:
        """UTC-aware instant from which the terms apply (None: from the beginning)."""
        return self.terms.effective_from

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Contract):
            return NotImplemented
        return self.terms == other.terms and self.plan == other.plan

    def __hash__(self) -> int:
        return hash((self.terms.customer_id, self.plan))


ResolvedContract = Contract

# where terms without an effective_from sort in a customer's history: before every dated one
BEGINNING = datetime.min.replace(tzinfo=timezone.utc)


def recorded_order(contract: Contract, at: datetime | None) -> tuple[datetime, str]:
    """Where one of a customer's terms stands among the upserts of the same effective_from (SPEC §10:
    an entity's events fold in occurred_at order, whatever their arrival order): its record time
    (`occurred_at`; a contracts-file entry has none and sorts first), then its terms' canonical JSON,
    so two upserts recorded at one instant also give one answer in every order."""
    return (at if at is not None else BEGINNING), contract.terms.model_dump_json()


def history_key(contract: Contract) -> str:
    """The key of one of a customer's terms in the stream's contracts table: the customer_id, then
    ``@`` and the effective_from when there is one (SPEC §14: a customer has one terms per
    effective_from; terms without one keep the plain customer_id, the key every contract had
    before histories, so a table written then reads the same)."""
    since = contract.effective_from
    if since is None:
        return contract.customer_id
    # in UTC: one key per instant, and one customer's keys sort as their instants do
    return f"{contract.customer_id}@{since.astimezone(timezone.utc).isoformat()}"


def _describe(terms: ContractTerms | None, customer_id: Any = None) -> str:
    cid = terms.customer_id if terms is not None else customer_id
    return f" (customer_id={cid!r})" if cid is not None else ""


def validate_terms(terms: ContractTerms, catalog: Catalog, *, where: str = "contract") -> None:
    """Raise ContractError listing every problem that keeps `terms` from resolving
    (unknown policy or plan, missing order-form values, unknown timezone or holiday
    country, priorities the policy does not have, duplicate service ids)."""
    problems = catalog.problems(terms)
    seen: dict[str, int] = {}
    for i, service in enumerate(terms.services):
        if service.service_id in seen:
            problems.append((f"services[{i}].service_id",
                             f"duplicate service_id {service.service_id!r} (also services[{seen[service.service_id]}])"))
        seen.setdefault(service.service_id, i)
    if problems:
        raise ContractError("; ".join(f"{where}{_describe(terms)}: {field}: {problem}" for field, problem in problems))


def contract_from_terms(terms: ContractTerms, catalog: Catalog | None = None, *, where: str = "contract") -> Contract:
    """Validate and resolve one contract's terms."""
    catalog = catalog if catalog is not None else default_catalog()
    validate_terms(terms, catalog, where=where)
    return Contract(_plain_terms(terms), catalog.resolve(terms))


def contract_from_event(event: ContractTerms, catalog: Catalog | None = None) -> Contract:
    """A ``contract.upserted`` event (a ContractTerms with an envelope) as a Contract.
    The same validation as a contracts file; the error names the event."""
    event_id = getattr(event, "event_id", None)
    where = "contract.upserted" + (f" event_id={event_id!r}" if event_id is not None else "")
    return contract_from_terms(event, catalog, where=where)


def _plain_terms(terms: ContractTerms) -> ContractTerms:
    """The terms without an event envelope (a ContractUpserted is a ContractTerms subclass)."""
    if type(terms) is ContractTerms:
        return terms
    return ContractTerms.model_validate(terms.model_dump(include=set(ContractTerms.model_fields)))


def _pydantic_problems(exc: ValidationError, raw: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        # Union members show up in the location (e.g. `TargetSpec`, `tuple[...]`); drop them.
        loc = tuple(p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error" and loc == ("policy",):
            msg = f"unknown policy {err.get('input')!r}; {msg[0].lower()}{msg[1:]}"
        if isinstance(err.get("input"), bool) and loc and loc[-1] in ("holiday_country", "holiday_subdivision"):
            msg += " (YAML reads NO, ON, YES... as booleans: quote the code)"
        problems.append((format_loc(loc, "(entry)"), msg))
    return problems


@lru_cache(maxsize=None)  # a handful of annotations, walked once per key of every contract in a file
def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, Any, Any]:
    """What a field's annotation can hold that has keys of its own: (a model for a mapping
    value, the element annotation for a list value, the value annotation for a free-keyed
    mapping). Unions are searched member by member."""
    model, element, values = None, None, None
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, None, None
    if origin in (Union, types.UnionType):
        for member in get_args(annotation):
            m, e, v = _models_in(member)
            model, element, values = model or m, element or e, values or v
        return model, element, values
    if origin in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return None, args[0] if args else None, None
    if origin is dict:
        return None, None, get_args(annotation)[1]
    return None, None, None


def unknown_keys(raw: Any, model: type[BaseModel], loc: tuple[str | int, ...] = ()) -> list[tuple[str, str]]:
    """Keys of `raw` (as written by a person) that `model` does not know, at any depth, each
    with the closest known key. Events stay tolerant (their models ignore extra fields); a
    contracts file is written by hand, where `overides:` silently meaning "no overrides"
    would judge every ticket against the wrong targets."""
    return _unknown(raw, model, loc)


def _unknown(raw: Any, annotation: Any, loc: tuple[str | int, ...]) -> list[tuple[str, str]]:
    model, element, values = _models_in(annotation)
    problems: list[tuple[str, str]] = []
    if isinstance(raw, dict) and model is not None:
        known = _known_keys(model)
        for key, value in raw.items():
            if key in known:
                problems += _unknown(value, known[key].annotation, (*loc, key))
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
            problems.append((format_loc((*loc, str(key)), "(entry)"), f"unknown key {key!r}; {hint}"))
    elif isinstance(raw, dict) and values is not None:
        for key, value in raw.items():
            problems += _unknown(value, values, (*loc, key))
    elif isinstance(raw, list) and element is not None:
        for i, item in enumerate(raw):
            problems += _unknown(item, element, (*loc, i))
    return problems


@lru_cache(maxsize=None)
def _known_keys(model: type[BaseModel]) -> dict[str, Any]:
    """A model's field names and aliases -> their fields."""
    known = {name: field for name, field in model.model_fields.items()}
    known.update({f.alias: f for f in model.model_fields.values() if f.alias})
    return known


@lru_cache(maxsize=None)
def _regional_subdivisions(country: str) -> tuple[str, ...]:
    """The subdivisions of `country` whose public holidays differ from the country's own
    (two sample years), per the pinned holidays package."""
    try:
        national = holidays.country_holidays(country, years=(2025, 2026))
    except (NotImplementedError, KeyError):
        return ()
    base = set(national)
    regional = []
    for subdivision in getattr(national, "subdivisions", ()):
        if set(holidays.country_holidays(country, subdiv=subdivision, years=(2025, 2026))) != base:
            regional.append(subdivision)
    return tuple(regional)


def contract_warnings(contracts: Iterable[ContractTerms]) -> list[str]:
    """Terms that are valid but probably not what was meant, one line per problem (not per
    contract: a provider may have thousands): a holiday country without a subdivision where the
    public holidays differ by subdivision (GB without ENG/SCT/WLS/NIR misses Easter Monday or
    the August bank holiday, depending on the region)."""
    without: dict[str, list[str]] = {}
    for terms in contracts:
        if terms.holiday_country and not terms.holiday_subdivision:
            without.setdefault(terms.holiday_country, []).append(terms.customer_id)
    warnings = []
    for country, customers in sorted(without.items()):
        regional = _regional_subdivisions(country)
        if not regional:
            continue
        shown = ", ".join(regional[:8]) + (f", ... ({len(regional)} in all)" if len(regional) > 8 else "")
        who = ", ".join(repr(c) for c in customers[:3]) + (f" and {len(customers) - 3} more" if len(customers) > 3 else "")
        warnings.append(f"holiday_country {country!r} has holidays that differ by subdivision ({shown}); "
                        f"without holiday_subdivision only the country-wide ones count (customer_id {who})")
    return warnings


def parse_contracts(data: Any, catalog: Catalog | None = None, *, source: str = "<contracts>") -> list[Contract]:
    """Contracts from the parsed YAML document ``{"contracts": [...]}``; `source`
    names the file in error messages. Rejects the whole file on the first bad
    entry (a replay with half its contracts would judge tickets wrongly)."""
    catalog = catalog if catalog is not None else default_catalog()
    if not isinstance(data, dict) or not isinstance(data.get("contracts"), list):
        raise ContractError(f"{source}: contracts: the file must be a mapping with a list under 'contracts'")
    extra = sorted(str(k) for k in data if k != "contracts")
    if extra:
        raise ContractError(f"{source}: {extra[0]}: unknown key {extra[0]!r}; the file has one key, 'contracts'")
    contracts: list[Contract] = []
    # (customer_id, effective_from) -> index: a customer appears once per effective_from (SPEC §14:
    # its later terms, each from its own instant)
    customers: dict[tuple[str, datetime | None], int] = {}
    for index, raw in enumerate(data["contracts"]):
        where = f"{source}: contracts[{index}]"
        if not isinstance(raw, dict):
            raise ContractError(f"{where}: (entry): must be a mapping, got {type(raw).__name__}")
        typos = unknown_keys(raw, ContractTerms)
        if typos:
            raise ContractError("; ".join(f"{where}{_describe(None, raw.get('customer_id'))}: {field}: {problem}"
                                          for field, problem in typos))
        try:
            terms = ContractTerms.model_validate(raw)
        except ValidationError as exc:
            raise ContractError("; ".join(
                f"{where}{_describe(None, raw.get('customer_id'))}: {field}: {problem}"
                for field, problem in _pydantic_problems(exc, raw))) from None
        key = (terms.customer_id, terms.effective_from)
        if key in customers:
            since = terms.effective_from.isoformat() if terms.effective_from else "none"
            raise ContractError(f"{where}{_describe(terms)}: customer_id: duplicate customer_id "
                                f"{terms.customer_id!r} (also contracts[{customers[key]}]) with the same "
                                f"effective_from ({since}); a customer's next terms need their own effective_from")
        customers[key] = index
        # Different customers listing one service_id is normal (SPEC §11: shared services); one
        # customer listing it twice is refused by `validate_terms`.
        contracts.append(contract_from_terms(terms, catalog, where=where))
    return contracts


# libyaml's safe loader when PyYAML was built with it (~6 x faster on a provider's thousands of
# contracts), else the pure-Python one; both build the same plain data (safe tags only).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> Any:
    """The YAML document, with the cyclic collector paused: a provider's file is hundreds of
    thousands of new dicts and lists, and a collection pass over them every few thousand
    allocations doubled the parse. (Cycles, from YAML aliases, are collected after.)"""
    paused = gc.isenabled()
    gc.disable()
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    finally:
        if paused:
            gc.enable()


def load_contracts_yaml(path: str | Path, catalog: Catalog | None = None) -> list[Contract]:
    """Read a contracts YAML file (see docs/design.md "Contracts YAML"); each entry
    is validated as a ``contract.upserted`` would be. Raises ContractError naming
    the file, the entry index and customer_id, the field and the problem."""
    path = Path(path)
    try:
        data = _parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    return parse_contracts(data, catalog, source=str(path))
