"""Event models: every input and output event of SPEC §2-4, as frozen pydantic v2 models.

Wire conventions (docs/design.md, "Time values"):
- instants are timezone-aware and normalised to UTC at validation; serialised as
  `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; a timestamp without an offset is rejected;
- minutes are JSON numbers rounded half-up to 4 decimal places, no trailing zeros;
- percentages and money are JSON strings with exactly 2 decimal places (half-up);
- target amounts and at-risk thresholds are JSON numbers.

Unknown fields are ignored (tolerant reader). Decoding, upcasting and dead-lettering
live in `events/codec.py`; this module only describes shapes.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from events import ids
from events.contract import Clock, ContractTerms, Metric, Unit

# --------------------------------------------------------------------------- wire types


def _require_timestamp(value: Any) -> Any:
    """Let only datetimes and RFC 3339-looking strings reach pydantic's parser.

    pydantic would otherwise read numbers (and numeric strings) as Unix times, which the
    envelope does not allow: a timestamp on the wire is RFC 3339 text with an offset.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if len(value) >= 10 and value[4] == "-" and value[7] == "-":
            return value
        raise PydanticCustomError(
            "datetime_format",
            "Input should be an RFC 3339 timestamp with offset, e.g. 2026-04-01T10:00:00Z",
        )
    raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 timestamp string with offset")


def _utc_iso(value: datetime) -> str:
    """An instant as its UTC ISO string (`+00:00`), as the core hashes it into clock outcome ids."""
    return value.astimezone(timezone.utc).isoformat()


def _to_utc(value: datetime) -> datetime:
    # AwareDatetime has already rejected naive values; one tzinfo object for every
    # instant makes equal events serialise to identical bytes.
    if value.tzinfo is timezone.utc:
        return value
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 has no UTC equivalent
        raise PydanticCustomError("datetime_range", "Input should be an instant between years 1 and 9999 in UTC") from None


UtcInstant = Annotated[
    AwareDatetime,
    BeforeValidator(_require_timestamp),
    AfterValidator(_to_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An instant: RFC 3339 text with an offset (or an aware datetime), held in UTC."""

_MINUTE_QUANTUM = Decimal("0.0001")
_CENT = Decimal("0.01")
_MICROSECONDS_PER_MINUTE = Decimal(60_000_000)


def _as_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", f"Input should be {what}, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))  # the shortest decimal text, not the binary expansion
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise PydanticCustomError("decimal_parsing", f"Input should be {what}") from None
    else:
        raise PydanticCustomError("decimal_type", f"Input should be {what}")
    if not result.is_finite():
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return result


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 0")
    return value.copy_abs()  # turns -0 into 0 so it never prints as "-0.00"


def _to_minutes(value: Any) -> Decimal:
    """Minutes from a number of minutes or from a timedelta (exact), rounded half-up to 4 places."""
    if isinstance(value, timedelta):
        exact = Decimal(value // timedelta(microseconds=1)) / _MICROSECONDS_PER_MINUTE
    else:
        exact = _as_decimal(value, "a number of minutes")
    return _non_negative(exact.quantize(_MINUTE_QUANTUM, rounding=ROUND_HALF_UP))


def _to_two_places(value: Any) -> Decimal:
    exact = _as_decimal(value, "a decimal number (string)")
    return _non_negative(exact.quantize(_CENT, rounding=ROUND_HALF_UP))


def _json_number(value: Decimal | float) -> int | float:
    """An exact-enough JSON number: integral values as integers (`150`, not `150.0`)."""
    if value == int(value):
        return int(value)
    return float(value)


def _two_places_text(value: Decimal) -> str:
    return format(value, "f")


Minutes = Annotated[
    Decimal,
    BeforeValidator(_to_minutes),
    PlainSerializer(_json_number, return_type=Any, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "description": "minutes, up to 4 decimal places"}),
]
"""Minutes: accepts minutes (number) or a timedelta; JSON number rounded half-up to 4 places."""

TwoPlaces = Annotated[
    Decimal,
    BeforeValidator(_to_two_places),
    PlainSerializer(_two_places_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$"}),
]
"""A percentage or an amount of money: Decimal rounded half-up to 2 places; JSON string `"99.65"`."""

Percent = TwoPlaces
Money = TwoPlaces


def _positive_amount(value: Any) -> Decimal:
    amount = _as_decimal(value, "a positive number")
    if amount <= 0:
        raise PydanticCustomError("greater_than", "Input should be greater than 0")
    return amount


TargetAmount = Annotated[
    Decimal,
    BeforeValidator(_positive_amount),
    PlainSerializer(_json_number, return_type=Any, when_used="json"),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0}),
]

Threshold = Annotated[
    float,
    Field(gt=0, le=1),
    PlainSerializer(_json_number, return_type=Any, when_used="json"),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
]
"""Fraction of a target elapsed (0.5, 0.75, 0.9); a JSON number."""

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Priority = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)]
"""A priority in the policy's own vocabulary, lower-cased (`High` -> `high`)."""
PolicyId = Literal["neural-magic", "neptune", "rescale", "vectorize"]
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Quarter = Annotated[str, StringConstraints(pattern=r"^\d{4}-Q[1-4]$")]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3)]
ScopeNames = Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=256)]
"""Component or region names of a SPEC §11 scope (a non-empty list; absent means all)."""
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]

# --------------------------------------------------------------------------- envelope


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        # Outputs always carry every field, so their schemas list every field as required.
        json_schema_serialization_defaults_required=True,
    )


class Envelope(_Model):
    """Fields of every event, in and out (SPEC §2). `occurred_at` is an instant in UTC."""

    event_id: EventId
    type: str
    occurred_at: UtcInstant
    schema_version: int = Field(default=1, ge=1)


# --------------------------------------------------------------------------- inputs: contracts


class ContractUpserted(ContractTerms, Envelope):
    """The contract terms of one customer, at the top level of the event (topic `sla.contracts`)."""

    type: Literal["contract.upserted"] = "contract.upserted"
    effective_from: UtcInstant | None = None

    def terms(self) -> ContractTerms:
        """The contract terms without the envelope (what a contracts YAML entry holds)."""
        return ContractTerms.model_validate(self.model_dump(include=set(ContractTerms.model_fields)))


# --------------------------------------------------------------------------- inputs: tickets


class TicketEvent(Envelope):
    """Any event of the `sla.ticket-events` topic (key `ticket_id`)."""

    ticket_id: Identifier


class TicketOpened(TicketEvent):
    """A ticket was opened: its clocks start at `occurred_at`."""

    type: Literal["ticket.opened"] = "ticket.opened"
    customer_id: Identifier
    priority: Priority
    environment: Literal["production", "non_production"] = "production"


class TicketPriorityChanged(TicketEvent):
    """A request to change the ticket's priority, by the customer or the provider."""

    type: Literal["ticket.priority_changed"] = "ticket.priority_changed"
    priority: Priority
    requested_by: Literal["customer", "provider"]


class TicketReplied(TicketEvent):
    """A reply on the ticket; a provider's public reply is a response / update."""

    type: Literal["ticket.replied"] = "ticket.replied"
    author: Literal["provider", "customer"]
    public: bool = True


class TicketStatusChanged(TicketEvent):
    """The ticket's status changed; a contract may pause clocks in some statuses."""

    type: Literal["ticket.status_changed"] = "ticket.status_changed"
    status: Literal["open", "waiting_on_customer", "on_hold"]


class TicketEscalated(TicketEvent):
    """The ticket was escalated (informational; no clock effect)."""

    type: Literal["ticket.escalated"] = "ticket.escalated"
    reason: str


class TicketResolved(TicketEvent):
    """The ticket was resolved: all clocks stop; resolution targets are met."""

    type: Literal["ticket.resolved"] = "ticket.resolved"


class TicketReopened(TicketEvent):
    """A resolved ticket was reopened: resolution resumes and a new update cycle starts."""

    type: Literal["ticket.reopened"] = "ticket.reopened"


class TicketClosed(TicketEvent):
    """The ticket was closed; later events for it are dead-lettered."""

    type: Literal["ticket.closed"] = "ticket.closed"


# --------------------------------------------------------------------------- inputs: monitoring


class MonitoringEvent(Envelope):
    """Any event of the `sla.monitoring-events` topic (key `service_id`)."""

    service_id: Identifier


class OutageEvent(MonitoringEvent):
    outage_id: Identifier


class OutageStarted(OutageEvent):
    """The provider's internal alert; `occurred_at` is the alert instant."""

    type: Literal["outage.started"] = "outage.started"
    scope: Literal["all_users", "partial"] = "all_users"
    components: ScopeNames | None = None
    """SPEC §11: the components that are down (absent: the whole service)."""
    regions: ScopeNames | None = None
    """SPEC §11: the regions that are down (absent: every region)."""
    alert_key: Identifier | None = None
    """The alerting source's identity of the alert (e.g. an Alertmanager fingerprint), optional. The
    source keeps one incarnation of a keyed alert at a time, so this outage ends, at the latest,
    when the next outage of the same key on the service starts (decisions.md "Uptime")."""


class OutageReported(OutageEvent):
    """A customer ticket reporting the outage; `occurred_at` is when it was reported."""

    type: Literal["outage.reported"] = "outage.reported"
    ticket_id: Identifier


class OutageResolved(OutageEvent):
    """Service was restored at `occurred_at`."""

    type: Literal["outage.resolved"] = "outage.resolved"


class OutageClassified(OutageEvent):
    """The outage's cause: `excluded` removes it from downtime (`category` says why)."""

    type: Literal["outage.classified"] = "outage.classified"
    cause: Literal["provider", "excluded"]
    category: str | None = None


class MaintenanceEvent(MonitoringEvent):
    maintenance_id: Identifier


class MaintenanceScheduled(MaintenanceEvent):
    """A maintenance window `[starts_at, ends_at)`; `occurred_at` is when the customer was notified."""

    type: Literal["maintenance.scheduled"] = "maintenance.scheduled"
    starts_at: UtcInstant
    ends_at: UtcInstant
    components: ScopeNames | None = None
    """SPEC §11: the components under maintenance (absent: the whole service)."""
    regions: ScopeNames | None = None
    """SPEC §11: the regions under maintenance (absent: every region)."""

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            raise PydanticCustomError(
                "window_order", "Input should be later than starts_at ({starts_at})", {"starts_at": starts_at.isoformat().replace("+00:00", "Z")}
            )
        return ends_at


class MaintenanceCancelled(MaintenanceEvent):
    """A scheduled maintenance window was cancelled."""

    type: Literal["maintenance.cancelled"] = "maintenance.cancelled"


InputEvent = Annotated[
    Union[
        ContractUpserted,
        TicketOpened,
        TicketPriorityChanged,
        TicketReplied,
        TicketStatusChanged,
        TicketEscalated,
        TicketResolved,
        TicketReopened,
        TicketClosed,
        OutageStarted,
        OutageReported,
        OutageResolved,
        OutageClassified,
        MaintenanceScheduled,
        MaintenanceCancelled,
    ],
    Field(discriminator="type"),
]

# --------------------------------------------------------------------------- outputs


class Target(_Model):
    """A target as emitted: `amount` of `unit` on the `clock`."""

    amount: TargetAmount
    unit: Unit
    clock: Clock


class _Output(Envelope):
    """An output event; `create(...)` fills in the deterministic `event_id`."""

    def expected_event_id(self) -> str:
        """The deterministic id of this event, from its own fields (docs/design.md)."""
        raise NotImplementedError(f"{type(self).__name__} ids derive from data outside the event")

    @classmethod
    def create(cls, **fields: Any) -> Self:
        """Build the event with its deterministic `event_id` (any `event_id` given is replaced)."""
        draft = cls.model_validate({**fields, "event_id": "pending"})
        return draft.model_copy(update={"event_id": draft.expected_event_id()})


class TicketClockIdentity(_Model):
    """Which clock of which ticket an output is about (mixed into breached / met / at-risk)."""

    ticket_id: Identifier
    customer_id: Identifier
    policy: PolicyId
    plan: Identifier
    policy_version: Identifier
    priority: Priority
    metric: Metric
    binding: bool
    target: Target
    started_at: UtcInstant
    due_at: UtcInstant
    cycle: int = Field(default=1, ge=1)


class SlaBreached(TicketClockIdentity, _Output):
    """A target was missed; `occurred_at` is the breach instant (= `due_at`, or the priority change)."""

    type: Literal["sla.breached"] = "sla.breached"

    def expected_event_id(self) -> str:
        return ids.clock_outcome_event_id(self.type, self.ticket_id, self.metric, self.binding, self.cycle,
                                          _utc_iso(self.occurred_at), _utc_iso(self.due_at), self.priority,
                                          _utc_iso(self.started_at))


class SlaMet(TicketClockIdentity, _Output):
    """A target was met at `met_at`, after `elapsed_minutes` on the target's clock."""

    type: Literal["sla.met"] = "sla.met"
    met_at: UtcInstant
    elapsed_minutes: Minutes

    def expected_event_id(self) -> str:
        return ids.clock_outcome_event_id(self.type, self.ticket_id, self.metric, self.binding, self.cycle,
                                          _utc_iso(self.occurred_at), _utc_iso(self.due_at), self.priority,
                                          _utc_iso(self.started_at), ids.minutes_text(self.elapsed_minutes))


class SlaAtRisk(TicketClockIdentity, _Output):
    """`threshold` of the target has elapsed without the target being met."""

    type: Literal["sla.at_risk"] = "sla.at_risk"
    threshold: Threshold

    def expected_event_id(self) -> str:
        return ids.at_risk_event_id(self.ticket_id, self.metric, self.binding, self.cycle, self.threshold)


class SlaBreachRetracted(_Output):
    """A breach emitted earlier did not happen after all (a late event showed it)."""

    type: Literal["sla.breach_retracted"] = "sla.breach_retracted"
    breach_event_id: EventId
    ticket_id: Identifier
    reason: str

    def expected_event_id(self) -> str:
        return ids.retraction_event_id(self.breach_event_id)


class SlaMetRetracted(_Output):
    """A `sla.met` emitted earlier no longer holds (a late event showed the target was missed,
    SPEC §10); the breach follows. `met_event_id` is the id of the met it cancels."""

    type: Literal["sla.met_retracted"] = "sla.met_retracted"
    met_event_id: EventId
    ticket_id: Identifier
    reason: str

    def expected_event_id(self) -> str:
        return ids.met_retraction_event_id(self.met_event_id)


class PriorityNoticeRetracted(_Output):
    """A priority notice emitted earlier no longer holds (SPEC §10): a late event changed what the
    ticket's history derives at that instant (e.g. the provider had already set the requested
    priority). `notice_event_id` is the id of the notice it cancels."""

    type: Literal["ticket.priority_notice_retracted"] = "ticket.priority_notice_retracted"
    notice_event_id: EventId
    ticket_id: Identifier
    reason: str

    def expected_event_id(self) -> str:
        return ids.notice_retraction_event_id(self.ticket_id, self.notice_event_id)


class _PriorityNotice(_Output):
    ticket_id: Identifier

    @classmethod
    def create(cls, *, source_event_id: str, **fields: Any) -> Self:  # type: ignore[override]
        """Build the notice; its id derives from the input event (`source_event_id`) that caused it."""
        draft = cls.model_validate({**fields, "event_id": "pending"})
        return draft.model_copy(update={"event_id": ids.priority_notice_event_id(draft.type, draft.ticket_id, source_event_id)})


class PriorityChangeRejected(_PriorityNotice):
    """The requested priority change was not applied; the ticket keeps `kept`."""

    type: Literal["ticket.priority_change_rejected"] = "ticket.priority_change_rejected"
    requested: Priority
    kept: Priority
    reason: str


class PriorityAdjusted(_PriorityNotice):
    """The requested priority is not available; `effective` applies instead."""

    type: Literal["ticket.priority_adjusted"] = "ticket.priority_adjusted"
    requested: Priority
    effective: Priority
    reason: str


class AttainmentReported(_Output):
    """Quarterly attainment: `met` of `measured` tickets; percent is null when nothing was measured."""

    type: Literal["sla.attainment_reported"] = "sla.attainment_reported"
    customer_id: Identifier
    quarter: Quarter
    metric: Metric
    measured: int = Field(ge=0)
    met: int = Field(ge=0)
    attainment_percent: Percent | None

    def expected_event_id(self) -> str:
        return ids.attainment_event_id(self.customer_id, self.quarter)


class _MonthFigures(_Output):
    customer_id: Identifier
    service_id: Identifier
    month: Month


class UptimeMonthClosed(_MonthFigures):
    """A closed calendar month (UTC) of one service; `revision` grows when late events change it."""

    type: Literal["uptime.month_closed"] = "uptime.month_closed"
    total_minutes: Minutes
    downtime_minutes: Minutes
    excluded_minutes: Minutes
    maintenance_minutes: Minutes
    uptime_percent: Percent
    commitment_percent: Percent
    met: bool
    revision: int = Field(default=1, ge=0)

    def expected_event_id(self) -> str:
        return ids.month_event_id(self.type, self.customer_id, self.service_id, self.month, self.revision)


class RefundEligible(_MonthFigures):
    """The month missed its commitment: refund of `excess_minutes` ÷ total × fee, capped at the fee."""

    type: Literal["refund.eligible"] = "refund.eligible"
    downtime_minutes: Minutes
    threshold_minutes: Minutes
    excess_minutes: Minutes
    monthly_fee: Money
    refund_amount: Money
    currency: Currency
    claim_deadline: UtcInstant
    revision: int = Field(default=1, ge=0)

    def expected_event_id(self) -> str:
        return ids.month_event_id(self.type, self.customer_id, self.service_id, self.month, self.revision)


class RefundWithdrawn(_MonthFigures):
    """A month revision is met after all (SPEC §10): the refund of `refund_event_id` (an earlier
    `refund.eligible` revision) no longer stands. `revision` is the month revision that withdrew it."""

    type: Literal["refund.withdrawn"] = "refund.withdrawn"
    revision: int = Field(ge=1)
    refund_event_id: EventId
    reason: str

    def expected_event_id(self) -> str:
        return ids.refund_withdrawn_event_id(self.customer_id, self.service_id, self.month, self.revision)


RAW_TEXT_LIMIT = 65536
"""Characters of the rejected input kept in a dead letter's `raw`."""


class DeadLetter(Envelope):
    """An input that could not be processed (topic `sla.dead-letter`).

    `raw` is the input decoded as UTF-8 (invalid bytes as `\\xNN`), cut to 65536 characters;
    `raw_bytes` is the original size. `reason` is a machine code, `error` a message naming
    the field and the problem. Built by `events.codec.dead_letter_event`.
    """

    type: Literal["dead_letter"] = "dead_letter"
    source: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    raw: Annotated[str, StringConstraints(max_length=RAW_TEXT_LIMIT)]
    raw_bytes: int = Field(ge=0)
    reason: ReasonCode
    error: str


OutputEvent = Annotated[
    Union[
        SlaBreached,
        SlaMet,
        SlaBreachRetracted,
        SlaMetRetracted,
        SlaAtRisk,
        PriorityChangeRejected,
        PriorityAdjusted,
        PriorityNoticeRetracted,
        AttainmentReported,
        UptimeMonthClosed,
        RefundEligible,
        RefundWithdrawn,
        DeadLetter,
    ],
    Field(discriminator="type"),
]


def _by_type(union: Any) -> dict[str, type[Envelope]]:
    members = union.__origin__.__args__  # Annotated[Union[...], ...] -> the Union's members
    return {member.model_fields["type"].default: member for member in members}


INPUT_MODELS: dict[str, type[Envelope]] = _by_type(InputEvent)
"""Input event type -> model class."""
OUTPUT_MODELS: dict[str, type[Envelope]] = _by_type(OutputEvent)
"""Output event type -> model class."""

INPUT_ADAPTER: TypeAdapter[Any] = TypeAdapter(InputEvent)
OUTPUT_ADAPTER: TypeAdapter[Any] = TypeAdapter(OutputEvent)

__all__ = [
    "AttainmentReported",
    "ContractUpserted",
    "DeadLetter",
    "Envelope",
    "INPUT_ADAPTER",
    "INPUT_MODELS",
    "InputEvent",
    "MaintenanceCancelled",
    "MaintenanceEvent",
    "MaintenanceScheduled",
    "Minutes",
    "Money",
    "MonitoringEvent",
    "OUTPUT_ADAPTER",
    "OUTPUT_MODELS",
    "OutageClassified",
    "OutageEvent",
    "OutageReported",
    "OutageResolved",
    "OutageStarted",
    "OutputEvent",
    "Percent",
    "PriorityAdjusted",
    "PriorityChangeRejected",
    "PriorityNoticeRetracted",
    "RAW_TEXT_LIMIT",
    "RefundEligible",
    "RefundWithdrawn",
    "SlaAtRisk",
    "SlaBreachRetracted",
    "SlaMetRetracted",
    "SlaBreached",
    "SlaMet",
    "Target",
    "TicketClockIdentity",
    "TicketClosed",
    "TicketEscalated",
    "TicketEvent",
    "TicketOpened",
    "TicketPriorityChanged",
    "TicketReopened",
    "TicketReplied",
    "TicketResolved",
    "TicketStatusChanged",
    "UptimeMonthClosed",
    "UtcInstant",
]
