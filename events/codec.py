"""Wire codec: bytes -> input event (or the reason it is a dead letter), event -> canonical bytes.

`decode` never raises: whatever arrives on a topic or a file line either becomes a
validated, upcast, UTC-normalised input event or a `DeadLetterReason` whose `code`
is one of DEAD_LETTER_REASONS and whose `message` names the field and the problem.

`encode` writes canonical compact JSON: keys in model field order, no spaces, UTF-8
(non-ASCII unescaped), instants in UTC with `Z`. Equal events give identical bytes.
"""
from __future__ import annotations

import enum
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import AwareDatetime, BaseModel, ValidationError
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic_core import from_json

from events import ids
from events import models as _models
from events.models import INPUT_MODELS, OUTPUT_ADAPTER, OUTPUT_MODELS, RAW_TEXT_LIMIT, DeadLetter, InputEvent, OutputEvent
from events.upcasters import CURRENT_VERSION, UnsupportedSchemaVersion, upcast

DEFAULT_MAX_BYTES = 1024 * 1024
"""Inputs larger than this (in bytes) are dead-lettered as `too_large` without being parsed."""

class Reason(str, enum.Enum):
    """Every dead-letter reason, in records and in metric labels alike: one closed set.

    `decode` returns the first group; the processor (`policies.outputs.Rejected`) the
    second; the stream shell maps what it cannot otherwise name onto `REJECTED`.
    """

    # decode
    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    TOO_LARGE = "too_large"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"  # also: an instant before 1970 or from 9000 on (SPEC §10)
    NAIVE_TIMESTAMP = "naive_timestamp"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    # processor
    UNKNOWN_CUSTOMER = "unknown_customer"
    UNKNOWN_SERVICE = "unknown_service"
    UNKNOWN_TICKET = "unknown_ticket"
    DUPLICATE_TICKET = "duplicate_ticket"
    TICKET_CLOSED = "ticket_closed"
    INVALID_CONTRACT = "invalid_contract"
    UNKNOWN_OUTAGE = "unknown_outage"
    UNKNOWN_MAINTENANCE = "unknown_maintenance"
    INVALID_WINDOW = "invalid_window"
    # SPEC §10
    ORPHAN = "orphan"  # parked past the parking horizon, its entity never appeared (or dated before it)
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # a seen event_id with different content
    MONTH_FINAL = "month_final"  # would change a month whose claim window is over
    FUTURE_TIMESTAMP = "future_timestamp"  # beyond the bound (wall clock + max_future, or --until)
    # shell
    REJECTED = "rejected"  # anything else (a bug): the record is kept, the run goes on

    def __str__(self) -> str:
        return self.value


INVALID_ENCODING = Reason.INVALID_ENCODING.value
INVALID_JSON = Reason.INVALID_JSON.value
NOT_AN_OBJECT = Reason.NOT_AN_OBJECT.value
TOO_LARGE = Reason.TOO_LARGE.value
UNKNOWN_TYPE = Reason.UNKNOWN_TYPE.value
MISSING_FIELD = Reason.MISSING_FIELD.value
INVALID_FIELD = Reason.INVALID_FIELD.value
NAIVE_TIMESTAMP = Reason.NAIVE_TIMESTAMP.value
UNSUPPORTED_SCHEMA_VERSION = Reason.UNSUPPORTED_SCHEMA_VERSION.value

DEAD_LETTER_REASONS = frozenset(
    {
        INVALID_ENCODING,
        INVALID_JSON,
        NOT_AN_OBJECT,
        TOO_LARGE,
        UNKNOWN_TYPE,
        MISSING_FIELD,
        INVALID_FIELD,
        NAIVE_TIMESTAMP,
        UNSUPPORTED_SCHEMA_VERSION,
    }
)
"""The reason codes `decode` can return (the processor adds its own, e.g. for unknown tickets)."""

ALL_REASONS = frozenset(r.value for r in Reason)
"""Every reason a dead letter can carry (decode, processor and shell)."""

EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=timezone.utc)
"""SPEC §10: an input instant before 1970 or from 9000 on is `invalid_field` (bounded time:
no calendar or month arithmetic can then overflow, whatever is added to it)."""
_INSTANT_FIELDS = ("occurred_at", "starts_at", "ends_at", "effective_from")
_ONLY_OCCURRED_AT = ("occurred_at",)
_MORE_INSTANTS = frozenset({"maintenance.scheduled", "contract.upserted"})


_MAX_ERRORS_IN_MESSAGE = 3
_MAX_VALUE_IN_MESSAGE = 80
_MAX_SOURCE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class DeadLetterReason:
    """Why an input cannot be processed: a machine `code` and a human `message`."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --------------------------------------------------------------------------- decode


def decode(raw: bytes | str, source: str = "", *, max_bytes: int = DEFAULT_MAX_BYTES) -> InputEvent | DeadLetterReason:
    """Decode one input message (a Kafka value or a JSON-lines line, without its newline).

    `source` names where it came from; it is not part of the result (pass it on to
    `dead_letter_event`) and is accepted so every call site reads the same. Never raises.
    """
    try:
        return _bounded(_decode(raw, max_bytes, True))
    except Exception as exc:  # the last line of defence: a bad message must not stop a partition
        return DeadLetterReason(INVALID_FIELD, f"could not decode the event: {type(exc).__name__}: {exc}")


def _bounded(event: InputEvent | DeadLetterReason) -> InputEvent | DeadLetterReason:
    """SPEC §10: every instant of an input lies in [1970, 9000)."""
    if isinstance(event, DeadLetterReason):
        return event
    values = event.__dict__
    for name in _INSTANT_FIELDS if event.type in _MORE_INSTANTS else _ONLY_OCCURRED_AT:
        value = values.get(name)
        if isinstance(value, datetime) and not EARLIEST_INSTANT <= value < LATEST_INSTANT:
            return DeadLetterReason(INVALID_FIELD, f"field {name!r}: {value.isoformat()} is outside the "
                                                   "accepted range (1970-01-01 to 9000-01-01, UTC)")
    return event


def _decode_slow(raw: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> InputEvent | DeadLetterReason:
    """`decode` with every event validated by pydantic (no fast path): the reference in tests and benchmarks."""
    try:
        return _bounded(_decode(raw, max_bytes, False))
    except Exception as exc:
        return DeadLetterReason(INVALID_FIELD, f"could not decode the event: {type(exc).__name__}: {exc}")


def _decode(raw: bytes | str, max_bytes: int, fast: bool) -> InputEvent | DeadLetterReason:
    if isinstance(raw, str):
        try:
            size = len(raw) if raw.isascii() else len(raw.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return DeadLetterReason(INVALID_ENCODING, f"not valid UTF-8: unpaired surrogate at character {exc.start}")
        if size > max_bytes:
            return DeadLetterReason(TOO_LARGE, f"event is {size} bytes, more than the limit of {max_bytes}")
        text = raw
    else:
        size = len(raw)
        if size > max_bytes:
            return DeadLetterReason(TOO_LARGE, f"event is {size} bytes, more than the limit of {max_bytes}")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            return DeadLetterReason(INVALID_ENCODING, f"not valid UTF-8: {exc.reason} at byte {exc.start}")

    try:
        obj = from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        return DeadLetterReason(INVALID_JSON, f"not valid JSON: {exc}")

    if not isinstance(obj, dict):
        return DeadLetterReason(NOT_AN_OBJECT, f"expected a JSON object, got {_json_kind(obj)}")

    event_type = obj.get("type")
    model = INPUT_MODELS.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        return DeadLetterReason(UNKNOWN_TYPE, _unknown_type_message(obj, event_type))

    version = obj.get("schema_version", 1)
    if version is None:
        version = 1
    if type(version) is not int:
        return DeadLetterReason(
            INVALID_FIELD, f"field 'schema_version': input should be an integer (got {_show(version)})"
        )
    if version != CURRENT_VERSION[event_type]:
        try:
            obj = upcast(event_type, version, obj)
        except UnsupportedSchemaVersion as exc:
            return DeadLetterReason(UNSUPPORTED_SCHEMA_VERSION, f"field 'schema_version': {exc}")

    if fast:
        build = _FAST_BUILDERS.get(model)
        if build is not None:
            event = build(obj)
            if event is not None:
                return event  # type: ignore[return-value]
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as exc:
        return _reason_from_validation_error(exc)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _unknown_type_message(obj: dict[str, Any], event_type: Any) -> str:
    if "type" not in obj:
        return "field 'type' is missing"
    if not isinstance(event_type, str):
        return f"field 'type': input should be a string naming an input event type (got {_show(event_type)})"
    if event_type in OUTPUT_MODELS:
        return f"field 'type': {event_type!r} is an output event type, not an input"
    known = ", ".join(sorted(INPUT_MODELS))
    return f"field 'type': unknown event type {_show(event_type)}; known types: {known}"


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_IN_MESSAGE:
        text = text[: _MAX_VALUE_IN_MESSAGE - 3] + "..."
    return text


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        elif _UNION_MEMBER_LABEL.match(part):
            continue  # pydantic names the union member it tried; not a field on the wire
        else:
            path += f".{part}" if path else part
    return path or "(event)"


# Union members appear in error locations as class names (`TargetSpec`) or type
# expressions (`tuple[TargetSpec, ...]`); wire field names are lower-case.
_UNION_MEMBER_LABEL = re.compile(r"^(?:[A-Z]\w*|[a-z-]+\[.*\])$")


def _code_for(error_type: str) -> str:
    if error_type == "missing":
        return MISSING_FIELD
    if error_type == "timezone_aware":
        return NAIVE_TIMESTAMP
    return INVALID_FIELD


def _describe(error: Any) -> str:
    path = _field_path(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"field {path!r} is missing"
    if kind == "timezone_aware":
        return (
            f"field {path!r}: timestamp {_show(error['input'])} has no UTC offset; "
            "add 'Z' or an offset such as '+02:00'"
        )
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message = message[:1].lower() + message[1:]
    return f"field {path!r}: {message} (got {_show(error['input'])})"


def _reason_from_validation_error(exc: ValidationError) -> DeadLetterReason:
    # The most specific problem decides the code (a naive timestamp is a systematic
    # producer bug worth its own count); the message names up to three problems, the
    # deciding one first, so one fix-and-resend round usually suffices.
    errors = exc.errors(include_url=False, include_context=False)
    deciding = min(range(len(errors)), key=lambda i: _CODE_PRIORITY[_code_for(errors[i]["type"])])
    ordered = [errors[deciding], *errors[:deciding], *errors[deciding + 1 :]]
    parts = [_describe(error) for error in ordered[:_MAX_ERRORS_IN_MESSAGE]]
    if len(errors) > _MAX_ERRORS_IN_MESSAGE:
        parts.append(f"and {len(errors) - _MAX_ERRORS_IN_MESSAGE} more")
    return DeadLetterReason(_code_for(errors[deciding]["type"]), "; ".join(parts))


_CODE_PRIORITY = {NAIVE_TIMESTAMP: 0, MISSING_FIELD: 1, INVALID_FIELD: 2}


# --------------------------------------------------------------------------- decode: fast path

# model_validate (with two Python callbacks per timestamp) is over half the cost of
# decoding, even for the plain ticket events that make up almost all of a stream. `_FAST_BUILDERS[model](obj)` does what
# `model.model_validate(obj)` does for the inputs it is sure about and returns None for
# anything else, which then goes through pydantic (and gets its dead-letter reason from
# there). It accepts a subset of what pydantic accepts and must build identical models
# for that subset; tests/unit/test_codec_fast.py checks this against `_decode_slow`.
#
# A builder is generated per model from the model's fields at import time (as
# dataclasses generates __init__: one straight-line function, no per-field calls), and
# only when every field has a shape recognised by `_field_kind` (exactly the
# annotations and constraints events.models uses) and the model has no validator or
# config the fast path does not mirror. A model changed in any other way gets no
# builder: decoding it becomes slower, never different. `_fast_builder_source(model)`
# shows the generated code.

_FAST_TYPES = (
    "ticket.opened",
    "ticket.replied",
    "ticket.priority_changed",
    "ticket.status_changed",
    "ticket.escalated",
    "ticket.resolved",
    "ticket.reopened",
    "ticket.closed",
    "outage.started",
    "outage.reported",
    "outage.resolved",
    "outage.classified",
    "maintenance.scheduled",
    "maintenance.cancelled",
)
"""The input types with a fast path (every input type but contract.upserted, which is rare)."""

# Only the strict RFC 3339 shape: ASCII digits, upper-case `T`, hours < 24, minutes and
# seconds < 60, 1-6 fraction digits, `Z` or an offset below 24 h. pydantic accepts more
# (lower-case `t`/`z`, a space, long fractions, ...) and datetime.fromisoformat more
# still (week dates, a comma, no seconds, ...); everything else goes the slow way.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_rfc3339_match = _RFC3339.fullmatch
_fromisoformat = datetime.fromisoformat
_UTC = timezone.utc
_OFFSETS = {
    f"{sign}{hours:02d}:{minutes:02d}": (1 if sign == "-" else -1) * timedelta(hours=hours, minutes=minutes)
    for sign in "+-"
    for hours in range(24)
    for minutes in range(60)
}
"""`±HH:MM` -> what to add to the local time to get UTC (cheaper than datetime.astimezone)."""


def _fast_instant(value: Any) -> datetime | None:
    """A `UtcInstant` as pydantic builds it (tzinfo is the `timezone.utc` object, see
    models._to_utc), or None when the value is not the strict shape or not a valid instant."""
    if type(value) is not str or _rfc3339_match(value) is None:
        return None
    try:
        # fromisoformat checks month and day ranges (2026-02-30 -> ValueError) and gives
        # tzinfo=timezone.utc for a `Z`; OverflowError: no UTC instant within years 1..9999.
        if value[-1] == "Z":
            return _fromisoformat(value)
        return _fromisoformat(value[:-6] + "Z") + _OFFSETS[value[-6:]]
    except (ValueError, OverflowError):
        return None


def _ends_after_start(values: dict[str, Any]) -> bool:
    return values["ends_at"] > values["starts_at"]


_KNOWN_FIELD_VALIDATORS: dict[tuple[type[BaseModel], str], Callable[[dict[str, Any]], bool]] = {
    (_models.MaintenanceScheduled, "_ends_after_start"): _ends_after_start,
}
"""Field validators the fast path mirrors: (model, validator name) -> True when the
validator would accept the (already checked) values unchanged. Validators must be
"after" validators that only reject."""


def _is(obj: Any, class_name: str) -> bool:
    return type(obj).__name__ == class_name


def _field_kind(field: Any) -> tuple[Any, ...] | None:
    """What a model field accepts, as a kind the generator knows, or None if it knows no such kind."""
    annotation, metadata = field.annotation, field.metadata
    if field.alias is not None or field.validation_alias is not None or field.default_factory is not None:
        return None
    if annotation is AwareDatetime:
        validators = [m for m in metadata if not _is(m, "WithJsonSchema")]
        if (
            len(validators) == 2
            and isinstance(validators[0], BeforeValidator)
            and validators[0].func is _models._require_timestamp
            and isinstance(validators[1], AfterValidator)
            and validators[1].func is _models._to_utc
        ):
            return ("instant",)
        return None
    if annotation is str:
        if not metadata:
            return ("any_str",)
        if len(metadata) != 1 or not _is(metadata[0], "StringConstraints"):
            return None
        c = metadata[0]
        if c.to_upper or c.strict or c.pattern is not None or c.ascii_only or c.max_length is None:
            return None
        low, high = c.min_length or 0, c.max_length
        if not c.strip_whitespace and not c.to_lower:
            return ("str", low, high)
        if c.strip_whitespace and c.to_lower and low >= 1:
            return ("lower_str", low, high)
        return None
    if annotation is int:
        if len(metadata) == 1 and _is(metadata[0], "Ge") and metadata[0].ge == 1:
            return ("int_ge1",)
        return None
    if annotation == (_models.ScopeNames | None) and not metadata:
        return ("optional_names",)
    if metadata:
        return None
    if annotation is bool:
        return ("bool",)
    if annotation == (str | None):
        return ("optional_str",)
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if choices and all(type(choice) is str for choice in choices):
            return ("literal", frozenset(choices))
    return None


def _check_lines(kind: tuple[Any, ...], var: str, namespace: dict[str, Any]) -> list[str]:
    """Lines that return None unless `var` is acceptable, leaving the field's value in `var`."""
    name = kind[0]
    if name == "instant":
        return [f"{var} = _fast_instant({var})", f"if {var} is None: return None"]
    if name == "str":
        return [f"if type({var}) is not str or not {kind[1]} <= len({var}) <= {kind[2]}: return None"]
    if name == "lower_str":
        # pydantic strips Unicode whitespace and lower-cases in Rust; str.strip and
        # str.lower differ from those outside ASCII (and strip \x1c-\x1f), so only ASCII
        # text that needs no stripping is taken; lower-casing ASCII is the same in both.
        return [
            f"if (type({var}) is not str or not {var}.isascii() or not {kind[1]} <= len({var}) <= {kind[2]}"
            f" or {var}[0] <= ' ' or {var}[-1] <= ' '): return None",
            f"{var} = {var}.lower()",
        ]
    if name == "any_str":
        return [f"if type({var}) is not str: return None"]
    if name == "optional_str":
        return [f"if {var} is not None and type({var}) is not str: return None"]
    if name == "optional_names":
        # `ScopeNames | None` (SPEC §11 scope): a JSON array of 1..256 strings of 1..256 characters, as a tuple.
        return [
            f"if {var} is not None:",
            f"    if (type({var}) is not list or not 1 <= len({var}) <= 256"
            f" or any(type(x) is not str or not 1 <= len(x) <= 256 for x in {var})): return None",
            f"    {var} = tuple({var})",
        ]
    if name == "bool":
        # pydantic would also take 0 / 1 / "yes" / ... in lax mode: those go the slow way.
        return [f"if type({var}) is not bool: return None"]
    if name == "int_ge1":
        return [f"if type({var}) is not int or {var} < 1: return None"]
    if name == "literal":
        namespace[f"{var}_choices"] = kind[1]
        return [f"if type({var}) is not str or {var} not in {var}_choices: return None"]
    raise AssertionError(f"no check for {kind}")


def _fast_builder_source(model: type[BaseModel]) -> tuple[str, dict[str, Any]] | None:
    """The source of `model`'s fast builder and its globals, or None if the model has no fast path."""
    config = model.model_config
    decorators = model.__pydantic_decorators__
    if (
        config.get("extra") != "ignore"
        or any(
            config.get(option)
            for option in ("strict", "str_strip_whitespace", "str_to_lower", "str_to_upper", "str_min_length",
                           "coerce_numbers_to_str", "validate_default", "use_enum_values", "revalidate_instances")
        )
        or config.get("str_max_length") is not None
        or model.__pydantic_post_init__ is not None
        or model.__private_attributes__
        or model.__pydantic_root_model__
        or decorators.validators
        or decorators.root_validators
        or decorators.model_validators
        or any(name in vars(base) for base in model.__mro__ if base is not BaseModel for name in _INSTANCE_SLOTS)
    ):
        return None
    namespace: dict[str, Any] = {
        "_model": model,
        "_new": model.__new__,
        "_set_dict": _set_dict,
        "_set_fields_set": _set_fields_set,
        "_set_extra": _set_extra,
        "_set_private": _set_private,
        "_fast_instant": _fast_instant,
        "_MISSING": _MISSING,
    }
    after_checks = []
    for validator_name, info in decorators.field_validators.items():
        check = _KNOWN_FIELD_VALIDATORS.get((model, validator_name))
        if check is None or info.info.mode != "after":
            return None
        namespace[f"_after_{len(after_checks)}"] = check
        after_checks.append(f"_after_{len(after_checks)}")

    fields = model.model_fields
    type_field = fields.get("type")
    if type_field is None or typing.get_args(type_field.annotation) != (type_field.default,):
        return None
    namespace["_type"] = type_field.default
    body = ["get = obj.get", "if get('type') != _type: return None"]
    required_names = ["type"]
    entries = []
    for index, (name, field) in enumerate(fields.items()):
        var = f"v{index}"
        entries.append(f"{name!r}: {var}")
        if name == "type":
            body.append(f"{var} = _type")
            continue
        kind = _field_kind(field)
        if kind is None:
            return None
        check = _check_lines(kind, var, namespace)
        if field.is_required():
            required_names.append(name)
            if kind[0] == "optional_str":
                body += [f"{var} = get({name!r}, _MISSING)", f"if {var} is _MISSING: return None"]
            else:
                body.append(f"{var} = get({name!r})")  # a missing field reads as None, which the check rejects
            body.extend(check)
        else:
            namespace[f"{var}_default"] = field.default
            body.append(f"{var} = get({name!r}, _MISSING)")
            body.append(f"if {var} is _MISSING:")
            body.append(f"    {var} = {var}_default")
            body.append("else:")
            body.extend("    " + line for line in check)
            body.append(f"    fields_set.add({name!r})")
    # fields_set must exist before the first optional field adds to it.
    body.insert(2, "fields_set = {" + ", ".join(map(repr, required_names)) + "}")
    body.append("values = {" + ", ".join(entries) + "}")
    body.extend(f"if not {check}(values): return None" for check in after_checks)
    body += [
        "# What model_construct does, without its per-field alias lookups.",
        "event = _new(_model)",
        "_set_dict(event, values)",
        "_set_fields_set(event, fields_set)",
        "_set_extra(event, None)",
        "_set_private(event, None)",
        "return event",
    ]
    source = f"def build_{model.__name__}(obj):\n" + "".join(f"    {line}\n" for line in body)
    return source, namespace


_MISSING = object()

# BaseModel's instance slots, set through their descriptors (what model_construct does
# with object.__setattr__, minus the attribute lookup); no model may redefine them.
_INSTANCE_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
_set_dict, _set_fields_set, _set_extra, _set_private = (vars(BaseModel)[name].__set__ for name in _INSTANCE_SLOTS)


def _fast_builders() -> dict[type[BaseModel], Callable[[dict[str, Any]], Any]]:
    builders = {}
    for event_type in _FAST_TYPES:
        model = INPUT_MODELS[event_type]
        generated = _fast_builder_source(model)
        if generated is None:
            continue
        source, namespace = generated
        exec(compile(source, f"<fast builder for {model.__name__}>", "exec"), namespace)  # noqa: S102 - our own code
        builders[model] = namespace[f"build_{model.__name__}"]
    return builders


_FAST_BUILDERS = _fast_builders()
"""Input model -> a function doing `model.model_validate(obj)` for the inputs it is sure of, else returning None."""


# --------------------------------------------------------------------------- encode


def encode(event: BaseModel) -> bytes:
    """Canonical compact JSON of any event model (field order, no spaces, UTF-8, UTC `Z`)."""
    return event.__pydantic_serializer__.to_json(event)


def encode_line(event: BaseModel) -> bytes:
    """`encode(event)` followed by a newline (one JSON-lines record)."""
    return event.__pydantic_serializer__.to_json(event) + b"\n"


def decode_output(raw: bytes | str) -> OutputEvent:
    """Read back an output event (consumers, tests). Raises pydantic.ValidationError if invalid."""
    return OUTPUT_ADAPTER.validate_json(raw)


# --------------------------------------------------------------------------- dead letters


def dead_letter_event(
    source: str, raw: bytes | str, reason: DeadLetterReason, occurred_at: datetime
) -> DeadLetter:
    """The `dead_letter` output for `raw` read from `source` (e.g. `events.jsonl:12`).

    `occurred_at` comes from the caller (the processor's current time, or the record
    timestamp): the core has no clock. The id hashes the source and the raw bytes.
    """
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else bytes(raw)
    source = source[:_MAX_SOURCE_CHARS] or "(unknown)"
    return DeadLetter(
        event_id=ids.dead_letter_event_id(source, data),
        occurred_at=occurred_at,
        source=source,
        raw=data.decode("utf-8", errors="backslashreplace")[:RAW_TEXT_LIMIT],
        raw_bytes=len(data),
        reason=reason.code,
        error=reason.message,
    )

