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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from events import ids
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
    FORWARD_FAILED = "forward_failed"  # a misrouted record the producer refuses to copy (too large)
    MISROUTED_COPY = "misrouted_copy"  # a forwarded copy that is itself off its murmur2 partition

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
        return _bounded(_decode(raw, max_bytes))
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


def _decode(raw: bytes | str, max_bytes: int) -> InputEvent | DeadLetterReason:
    if type(raw) is bytes and len(raw) <= max_bytes:
        event = _decode_plain(raw)
        if event is not None:
            return event
    return _decode_full(raw, max_bytes)


# The one-pass path: most lines are a plain ticket or monitoring event, which pydantic can
# validate straight from the bytes (`model_validate_json`, one parse in Rust) instead of a
# parse to a dict and a validation of the dict: ~0.8 of the time per event. It is taken only
# where it cannot differ from the full path, which decides everything else and names the
# problem: no `\u` escape, `NaN` or `Infinity` anywhere (the full parse refuses the last two,
# pydantic's JSON mode would ignore them in an unknown field), a `schema_version` absent or
# written once as the current version's digits (pydantic would read 1.0, "1" or true as 1;
# the full path dead-letters them), and the model named by a `"type"` found in the bytes
# validating the whole line (its `type` is a Literal, so a "type" found elsewhere in the line
# fails and goes the full way). Duplicate keys: both parsers keep the last. A test holds the
# two paths equal over the samples, the golden scenarios and lines built to tell them apart.
_PLAIN_TYPE = re.compile(rb'"type"\s*:\s*"([a-z]+\.[a-z_]+)"')
_PLAIN_VERSION = re.compile(rb'"schema_version"\s*:\s*([0-9]+)\s*[,}]')
_ONE_PASS_VALIDATORS = {name: model.__pydantic_validator__ for name, model in INPUT_MODELS.items()
                        if name != "contract.upserted"}
_NOT_PLAIN = re.compile(rb"\\u|NaN|Infinity")


def _decode_plain(raw: bytes) -> InputEvent | None:
    """The event of a plain line in one pass, None when the line is not plain or not valid."""
    if _NOT_PLAIN.search(raw) is not None:
        return None
    found = _PLAIN_TYPE.search(raw)
    if found is None:
        return None
    event_type = found.group(1).decode()
    validator = _ONE_PASS_VALIDATORS.get(event_type)
    if validator is None:
        return None
    versions = raw.count(b'"schema_version"')
    if versions:
        version = _PLAIN_VERSION.search(raw)
        if versions != 1 or version is None or int(version.group(1)) != CURRENT_VERSION[event_type]:
            return None
    elif CURRENT_VERSION[event_type] != 1:
        return None  # absent means version 1, which an upcaster brings to the current one
    try:
        return validator.validate_json(raw)  # type: ignore[no-any-return]
    except ValidationError:
        return None


_ABSENT = object()


def one_pass_validator(raw: bytes, obj: Any) -> Any | None:
    """The validator that decodes `raw` in one pass (`decode_one_pass`), given the line's plain
    parse `obj = from_json(raw, allow_inf_nan=False)` (which, as the full path's, refuses NaN and
    Infinity outside strings); None where the full path must decide.

    `_decode_plain`'s rules, read from the parse a caller already has (replay's sort key) instead of
    searched in the bytes (its three searches cost ~15,000 instructions a line, counted by callgrind;
    one byte search is left, ~3,000): the `"type"` is the parse's (the last, as pydantic's),
    `schema_version` absent or the current version as an integer (the last, as pydantic's; not 1.0,
    "1" or true), no `\\u` escape."""
    if type(obj) is not dict or len(raw) > DEFAULT_MAX_BYTES:
        return None
    event_type = obj.get("type")
    if not isinstance(event_type, str):
        return None
    validator = _ONE_PASS_VALIDATORS.get(event_type)
    if validator is None:
        return None
    version = obj.get("schema_version", _ABSENT)
    if version is _ABSENT:
        if CURRENT_VERSION[event_type] != 1:
            return None  # absent means version 1, which an upcaster brings to the current one
    elif type(version) is not int or version != CURRENT_VERSION[event_type]:
        return None
    if b"\\u" in raw:
        return None
    return validator


def decode_one_pass(raw: bytes, validator: Any) -> InputEvent | DeadLetterReason | None:
    """`decode(raw)` by `one_pass_validator(raw, ...)`'s answer: None when the line does not
    validate (the full path then says why), else what `decode` returns."""
    try:
        event: InputEvent = validator.validate_json(raw)
    except ValidationError:
        return None
    if event.type not in _MORE_INSTANTS and EARLIEST_INSTANT <= event.occurred_at < LATEST_INSTANT:
        return event  # `_bounded`'s common case without its call: the one instant, in range
    return _bounded(event)


def _decode_full(raw: bytes | str, max_bytes: int) -> InputEvent | DeadLetterReason:
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
    if model is None or not isinstance(event_type, str):
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


# --------------------------------------------------------------------------- encode


def encode(event: BaseModel) -> bytes:
    """Canonical compact JSON of any event model (field order, no spaces, UTF-8, UTC `Z`)."""
    return event.__pydantic_serializer__.to_json(event)


def encode_line(event: BaseModel) -> bytes:
    """`encode(event)` followed by a newline (one JSON-lines record)."""
    return event.__pydantic_serializer__.to_json(event) + b"\n"


def decode_output(raw: bytes | str) -> OutputEvent:
    """Read back an output event (consumers, tests). Raises pydantic.ValidationError if invalid."""
    event: OutputEvent = OUTPUT_ADAPTER.validate_json(raw)
    return event


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

