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

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from events.contract import ContractService, ContractTerms
from policies.catalog import Catalog, ContractError, ResolvedPlan, default_catalog, format_loc

__all__ = [
    "Contract",
    "ContractError",
    "ResolvedContract",
    "contract_from_event",
    "contract_from_terms",
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


def parse_contracts(data: Any, catalog: Catalog | None = None, *, source: str = "<contracts>") -> list[Contract]:
    """Contracts from the parsed YAML document ``{"contracts": [...]}``; `source`
    names the file in error messages. Rejects the whole file on the first bad
    entry (a replay with half its contracts would judge tickets wrongly)."""
    catalog = catalog if catalog is not None else default_catalog()
    if not isinstance(data, dict) or not isinstance(data.get("contracts"), list):
        raise ContractError(f"{source}: contracts: the file must be a mapping with a list under 'contracts'")
    contracts: list[Contract] = []
    customers: dict[str, int] = {}
    services: dict[str, int] = {}
    for index, raw in enumerate(data["contracts"]):
        where = f"{source}: contracts[{index}]"
        if not isinstance(raw, dict):
            raise ContractError(f"{where}: (entry): must be a mapping, got {type(raw).__name__}")
        try:
            terms = ContractTerms.model_validate(raw)
        except ValidationError as exc:
            raise ContractError("; ".join(
                f"{where}{_describe(None, raw.get('customer_id'))}: {field}: {problem}"
                for field, problem in _pydantic_problems(exc, raw))) from None
        if terms.customer_id in customers:
            raise ContractError(f"{where}{_describe(terms)}: customer_id: duplicate customer_id "
                                f"{terms.customer_id!r} (also contracts[{customers[terms.customer_id]}])")
        customers[terms.customer_id] = index
        for i, service in enumerate(terms.services):
            if service.service_id in services and services[service.service_id] != index:
                raise ContractError(f"{where}{_describe(terms)}: services[{i}].service_id: duplicate service_id "
                                    f"{service.service_id!r} (also in contracts[{services[service.service_id]}])")
            services.setdefault(service.service_id, index)
        contracts.append(contract_from_terms(terms, catalog, where=where))
    return contracts


def load_contracts_yaml(path: str | Path, catalog: Catalog | None = None) -> list[Contract]:
    """Read a contracts YAML file (see docs/design.md "Contracts YAML"); each entry
    is validated as a ``contract.upserted`` would be. Raises ContractError naming
    the file, the entry index and customer_id, the field and the problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    return parse_contracts(data, catalog, source=str(path))
