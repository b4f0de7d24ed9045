"""Contract terms: the body of `contract.upserted` and of an entry in a contracts YAML file.

Only the shape is checked here; whether a plan's required order-form values are
present is decided against the policy catalog in `policies/contracts.py`.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator,
                      model_validator)

Clock = Literal["business", "calendar"]
Unit = Literal["minutes", "hours", "days"]
Metric = Literal["first_response", "update", "resolution"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TargetSpec(_Frozen):
    """One target from an order form: `amount` of `unit`, on the business or calendar clock."""

    amount: Decimal = Field(gt=0)
    unit: Unit
    clock: Clock = "business"
    binding: bool = True


class BusinessHoursSpec(_Frozen):
    """Weekly open intervals in local wall time: (weekday 0=Mon, start minute, end minute)."""

    timezone: str
    weekly: tuple[tuple[int, int, int], ...]
    day_length_hours: Decimal = Field(gt=0)

    @field_validator("weekly")
    @classmethod
    def _intervals_in_range(cls, v: tuple[tuple[int, int, int], ...]) -> tuple[tuple[int, int, int], ...]:
        for day, start, end in v:
            if not (0 <= day <= 6 and 0 <= start < end <= 1440):
                raise ValueError(f"weekly interval {(day, start, end)} must be (0..6, start, end) with 0 <= start < end <= 1440")
        return v


class PauseSpec(_Frozen):
    """Ticket statuses that stop the named metrics' clocks."""

    statuses: tuple[Literal["waiting_on_customer", "on_hold"], ...]
    metrics: tuple[Metric, ...] = ("first_response", "update", "resolution")


class Overrides(_Frozen):
    """Order-form values that complete or override the catalog plan."""

    uptime_commitment_percent: Decimal | None = Field(default=None, gt=0, le=100)
    targets: dict[str, dict[Metric, TargetSpec | tuple[TargetSpec, ...]]] | None = None
    business_hours: BusinessHoursSpec | None = None
    pause: PauseSpec | None = None


class ContractService(_Frozen):
    """A contracted service and its fee (monthly, or annual billed ÷ 12)."""

    service_id: str = Field(min_length=1, max_length=256)
    monthly_fee: Decimal | None = Field(default=None, ge=0)
    annual_fee: Decimal | None = Field(default=None, ge=0)
    currency: str = Field(min_length=3, max_length=3)
    # SPEC §11 scope: the components this customer uses (absent: every component) and the region it
    # is served from (absent: every region). An outage or window outside them does not count for it.
    components: tuple[Annotated[str, StringConstraints(min_length=1, max_length=256)], ...] | None = Field(
        default=None, min_length=1)
    region: str | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _exactly_one_fee(self) -> "ContractService":
        if (self.monthly_fee is None) == (self.annual_fee is None):
            raise ValueError("give exactly one of monthly_fee or annual_fee")
        return self

    @property
    def fee_per_month(self) -> Decimal | Fraction:
        """The monthly fee, or exactly a twelfth of the annual one (a Fraction: `annual_fee / 12` in
        Decimal is rounded to 28 digits, and a refund that is exactly half a cent then rounded down)."""
        if self.monthly_fee is not None:
            return self.monthly_fee
        assert self.annual_fee is not None  # exactly one of the two (_exactly_one_fee)
        return Fraction(self.annual_fee) / 12


class ContractTerms(_Frozen):
    """What a customer bought: the policy, the plan and the order-form values."""

    customer_id: str = Field(min_length=1, max_length=256)
    policy: Literal["neural-magic", "neptune", "rescale", "vectorize"]
    plan: str
    edition: Literal["enterprise", "government"] | None = None
    timezone: str | None = None
    region: Literal["americas", "emea", "apac"] | None = None
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    services: tuple[ContractService, ...] = ()
    overrides: Overrides = Overrides()
    effective_from: AwareDatetime | None = None
