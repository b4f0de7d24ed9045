"""Per-ticket SLA clocks (SPEC §5–6): a fold over a ticket's events, with time as data.

A ticket keeps the compact history of the events that matter to its clocks and the
set of outputs already emitted. In-order events are folded incrementally; an event
older than the ticket's time (a late event) rebuilds the clocks from the history and
emits the difference: new breaches, `sla.met`, warnings, and `sla.breach_retracted`
for a breach the history no longer supports. Either way the outcome is a function of
the set of events and of the current time, which is what makes stream equal replay.

All instants are UTC-aware datetimes. A milestone (an at-risk fraction or the deadline
itself) fires once time has *passed* it: a provider reply exactly at `due_at` is on time.
"""
from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from sys import intern
from typing import TYPE_CHECKING, Any, Callable, Container, Iterable, NamedTuple, Sequence, cast

from events.ids import (breach_event_id, clock_outcome_event_id, met_event_id, met_retraction_event_id,
                        minutes_text, notice_retraction_event_id, output_event_id as _hash_id,
                        priority_notice_event_id)
from events.models import TicketPriorityChanged, TicketReplied, TicketStatusChanged
from policies.digests import NO_CONTENT, SeenEvents
from policies.compact import EmittedKeys, History, IdMap
from policies.outputs import Output, Rejected, output_event_id

if TYPE_CHECKING:
    from events.models import Envelope, TicketEvent, TicketOpened
    from policies.calendar import BusinessCalendar
    from policies.catalog import ClockTarget, ResolvedPlan

METRICS = ("first_response", "update", "resolution")
_METRIC_CODE = {m: i for i, m in enumerate(METRICS)}
_KIND_BREACH, _KIND_MET, _KIND_AT_RISK, _KIND_RETRACTED, _KIND_NOTICE, _KIND_MET_RETRACTED = 1, 2, 3, 4, 5, 6
_KIND_NOTICE_RETRACTED = 7
_KINDS = frozenset((_KIND_BREACH, _KIND_MET, _KIND_AT_RISK, _KIND_RETRACTED, _KIND_NOTICE, _KIND_MET_RETRACTED,
                    _KIND_NOTICE_RETRACTED))
# An output key (`OutputKey`) keeps the at-risk threshold index in 4 bits: at most 16 thresholds.
_THRESHOLD_SLOTS = 16
MAX_AT_RISK_THRESHOLDS = _THRESHOLD_SLOTS
# A breach retracted and derived again later (e.g. a late pause moved its deadline) is a new
# generation with its own event id; generations are kept in the high bits of the output key.
_GENERATION = 1 << 40
_CYCLE_SLOTS = _GENERATION // (_THRESHOLD_SLOTS * 8 * 2 * 4)
_GENERATION_SLOTS = (1 << 63) // _GENERATION  # the keys live in a signed 64-bit array

# History entry kinds (compact, one letter).
OPEN, PRIORITY, REPLY, STATUS, RESOLVED, REOPENED, CLOSED = "o", "p", "r", "s", "x", "y", "z"


# A blake2b with digest_size 8 and no data, copied per digest: the same hash as constructing one, for
# ~1,200 fewer instructions (the constructor parses thirteen keyword parameters).
_BLAKE2B_8 = hashlib.blake2b(digest_size=8)


def _event_digest(event_id: str) -> int:
    """A stable 64-bit digest of an input event id, for idempotency sets (not Python's salted hash)."""
    h = _BLAKE2B_8.copy()
    h.update(event_id.encode())
    return int.from_bytes(h.digest(), "big")


event_digest = functools.lru_cache(maxsize=1024)(_event_digest)  # an id is digested 2-3 times while applied


def content_digest(ev: Envelope) -> int:
    """A stable 64-bit digest of an input event's canonical content (its id included)."""
    return int.from_bytes(hashlib.blake2b(ev.__pydantic_serializer__.to_json(ev), digest_size=8).digest(), "big")


class OutputKey(NamedTuple):
    """The identity of one output of a ticket, kept in `TicketState.emitted` as a packed int.

    Fields (low bits first in the packed int): the at-risk threshold index (4 bits), the kind
    (3 bits), binding (1 bit), the metric (2 bits), the cycle (30 bits; a notice's arrival
    number), then the generation of a breach / met derived again after its cancellation. The
    layout is the stored format: states written by earlier versions load unchanged. `pack`
    refuses what the layout cannot hold instead of letting one field spill into the next.
    """

    kind: int
    metric: str
    binding: bool
    cycle: int
    threshold_index: int = 0
    generation: int = 0

    def pack(self) -> int:
        if self.kind not in _KINDS:
            raise ValueError(f"output key: unknown kind {self.kind}")
        if not 0 <= self.threshold_index < _THRESHOLD_SLOTS:
            raise ValueError(f"output key: threshold index {self.threshold_index} outside 0..{_THRESHOLD_SLOTS - 1}")
        if not 0 <= self.cycle < _CYCLE_SLOTS:
            raise ValueError(f"output key: cycle {self.cycle} outside 0..{_CYCLE_SLOTS - 1}")
        if not 0 <= self.generation < _GENERATION_SLOTS:
            raise ValueError(f"output key: generation {self.generation} outside 0..{_GENERATION_SLOTS - 1}")
        base = ((self.cycle * 4 + _METRIC_CODE[self.metric]) * 2 + int(self.binding)) * 8 + self.kind
        return self.generation * _GENERATION + base * _THRESHOLD_SLOTS + self.threshold_index

    @classmethod
    def unpack(cls, key: int) -> OutputKey:
        if not 0 <= key < _GENERATION * _GENERATION_SLOTS:
            raise ValueError(f"output key: {key} is not a packed output key")
        generation, base = divmod(key, _GENERATION)
        base, threshold_index = divmod(base, _THRESHOLD_SLOTS)
        base, kind = divmod(base, 8)
        base, binding = divmod(base, 2)
        cycle, metric = divmod(base, 4)
        return cls(kind, METRICS[metric], bool(binding), cycle, threshold_index, generation)


def _output_key(kind: int, metric: str, binding: bool, cycle: int, threshold_index: int = 0) -> int:
    """`OutputKey(...).pack()` (generation 0) without building the tuple: once per derived output.
    Outside the layout, `pack` raises naming the field."""
    if kind not in _KINDS or not 0 <= threshold_index < _THRESHOLD_SLOTS or not 0 <= cycle < _CYCLE_SLOTS:
        return OutputKey(kind, metric, binding, cycle, threshold_index).pack()
    return (((cycle * 4 + _METRIC_CODE[metric]) * 2 + int(binding)) * 8 + kind) * _THRESHOLD_SLOTS + threshold_index


def _kind_of(key: int) -> int:
    """The kind of a packed key whose threshold index is 0 (only at-risk keys have another)."""
    return key // _THRESHOLD_SLOTS % 8 if key % _THRESHOLD_SLOTS == 0 else _KIND_AT_RISK


def _is_breach_key(key: int) -> bool:
    return _kind_of(key) == _KIND_BREACH


def _retracted_key(breach_key: int) -> int:
    return breach_key + (_KIND_RETRACTED - _KIND_BREACH) * _THRESHOLD_SLOTS


def _is_met_key(key: int) -> bool:
    return _kind_of(key) == _KIND_MET


def _is_notice_key(key: int) -> bool:
    return _kind_of(key) == _KIND_NOTICE


def _is_cancellable_key(key: int) -> bool:
    """Outputs a rebuild may cancel (SPEC §10): breaches, mets and priority notices."""
    return _kind_of(key) in (_KIND_BREACH, _KIND_MET, _KIND_NOTICE)


def _cancel_key(key: int) -> int:
    """The key recording that the breach, met or notice `key` was cancelled (retracted)."""
    if _is_breach_key(key):
        return _retracted_key(key)
    if _is_notice_key(key):
        return key + (_KIND_NOTICE_RETRACTED - _KIND_NOTICE) * _THRESHOLD_SLOTS
    return key + (_KIND_MET_RETRACTED - _KIND_MET) * _THRESHOLD_SLOTS


def _breach_of_key(key: int) -> tuple[str, bool, int, int]:
    """(metric, binding, cycle, generation) of a breach output key."""
    unpacked = OutputKey.unpack(key)
    return unpacked.metric, unpacked.binding, unpacked.cycle, unpacked.generation


def breach_identity(state: "TicketState", breach_id: str) -> tuple[str, bool, int] | None:
    """(metric, binding, cycle) of the ticket's breach with event id `breach_id`, None if not one of its breaches."""
    for key in state.emitted:
        if _is_breach_key(key) and outcome_id(state, key) == breach_id:
            metric, binding, cycle, _generation = _breach_of_key(key)
            return metric, binding, cycle
    return None


def outcome_id(state: "TicketState", key: int) -> str:
    """The event id of the ticket's breach / met output `key` (the id it was emitted with)."""
    stored = state.outcome_ids.get(key)
    if stored is not None:
        return stored
    metric, binding, cycle, generation = _breach_of_key(key)  # a state written before ids were stored
    return (breach_event_id if _is_breach_key(key) else met_event_id)(state.ticket_id, metric, binding, cycle,
                                                                      generation)


def _entry_event_id(kind: str, value: str | None) -> str | None:
    """The input event id a history entry holds, None for an entry written before entries held one.

    Values: open `priority|id`, priority `by|priority|id`, status `status|id` (before: `status`),
    reply / resolved / reopened / closed `id` (before: None)."""
    if kind == PRIORITY:
        return (value or "||").split("|", 2)[2]
    if kind == OPEN or kind == STATUS:
        if value is None or "|" not in value:
            return None
        return value.partition("|")[2]
    return value


def _is_legacy_entry(entry: tuple[datetime, int, str, str | None]) -> bool:
    """An entry of a state written before history entries held their event id (a status, reply,
    resolved, reopened or closed entry without one)."""
    kind = entry[2]
    return kind != OPEN and kind != PRIORITY and _entry_event_id(kind, entry[3]) is None


# The order of the kinds of one instant (see `_fold_order`); equal ranks fold by event id.
_RANK_OF_KIND = {OPEN: 0, REOPENED: 2, REPLY: 3, PRIORITY: 4, STATUS: 4, RESOLVED: 5, CLOSED: 6}
_RANK_CUSTOMER_PRIORITY = 1


def _fold_order(entry: tuple[datetime, int, str, str | None]) -> tuple[datetime, int, str, int]:
    """The order a ticket's history is folded in: SPEC §10's (`occurred_at`, `event_id`), except that
    the events of one instant fold in the order of one help-desk update, then by id:
    `ticket.opened` (the ticket exists from it, and the processor applies events dated at the open);
    the customer's priority requests (judged against the priority before the instant: a
    rejection's `kept` does not depend on which of the provider's same-instant changes arrived
    before it, see docs/decisions.md); `ticket.reopened`; the provider's reply; status and the
    provider's priority changes (by id: a pause and a resume of one instant leave the status of the
    greater id); `ticket.resolved`; `ticket.closed` (events dated at the close still apply, only
    later ones are `ticket_closed`). So a public reply sent with "Submit as Solved" (one Zendesk
    update: a reply and a resolve of one instant, their ids hashes of random envelope ids) answers
    the ticket whatever the ids; a reply that reopens a solved ticket is a reply to the reopened
    ticket, not one ignored while it was solved. Arrival (`seq`) only between entries of one id."""
    ts, seq, kind, value = entry
    if kind == PRIORITY and value is not None and value.startswith("c|"):
        rank = _RANK_CUSTOMER_PRIORITY
    else:
        rank = _RANK_OF_KIND[kind]
    return ts, rank, _entry_event_id(kind, value) or "", seq


def _legacy_fold_order(entry: tuple[datetime, int, str, str | None]) -> tuple[datetime, str, str, int]:
    """The order before entries held their event id (by kind letter, then value), kept for the
    histories of states written then, so that their rebuild after an upgrade derives what their
    fold derived (no outputs changed by a restart)."""
    ts, seq, kind, value = entry
    return ts, kind, value or "", seq


def fold_key(history: Iterable[tuple[datetime, int, str, str | None]]) -> Any:
    """The sort key of a ticket's history: `_fold_order`, or `_legacy_fold_order` for a history with
    an entry written before entries held their event id."""
    return _legacy_fold_order if any(_is_legacy_entry(h) for h in history) else _fold_order


def _encode_priority_entry(requested_by: str, priority: str, event_id: str) -> str:
    return f"{requested_by[0]}|{priority}|{event_id}"


_US = timedelta(microseconds=1)
# `Output(...)` of the five fields, without the named tuple's Python-level `__new__` (~1,600
# instructions an output): once per clock output derived
_new_output = cast("Callable[[tuple[str, datetime, str, str, dict[str, Any]]], Output]",
                   functools.partial(tuple.__new__, Output))
_ZERO = timedelta(0)  # constants: a `timedelta(...)` call costs ~2,000 instructions, per clock computation here
UTC = timezone.utc


#: UTC instant -> its `isoformat()`. `isoformat` is one of the dearest calls per output (~10,000
#: instructions): a breach / met id hashes its instant, deadline and cycle start, the same
#: instants recur across a ticket's outputs, and the wire writes them again just after
#: (`streams.wire` reads this memo). Bounded (cleared when full); only instants whose tzinfo is
#: `UTC` go in, and equal ones of one tzinfo have the same text, so it never shows.
_UTC_ISO: dict[datetime, str] = {}
_UTC_ISO_MAX = 8192


def utc_iso(t: datetime) -> str:
    """`t.astimezone(UTC).isoformat()`, without the conversion call for an instant already in UTC
    (nearly all: the core's instants are UTC; `astimezone` to its own zone returns it unchanged),
    memoised for those."""
    if t.tzinfo is not UTC:
        return t.astimezone(UTC).isoformat()
    text = _UTC_ISO.get(t)
    if text is None:
        if len(_UTC_ISO) >= _UTC_ISO_MAX:
            _UTC_ISO.clear()
        text = _UTC_ISO[t] = _utc_text(t)
    return text


#: date ordinal -> its `YYYY-MM-DDT` (bounded as the memo above): the instants written are few days'
_DAY_TEXT: dict[int, str] = {}
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))


def _utc_text(t: datetime) -> str:
    """`t.isoformat()` of an instant whose tzinfo is `UTC`: for whole seconds (every instant the clocks
    derive from second-precision inputs), its day's text memoised and the time's digits from a table,
    ~5,000 instructions where `isoformat` takes ~11,000 (its zone's offset is a method call)."""
    if t.microsecond:
        return t.isoformat()
    ordinal = t.toordinal()
    day = _DAY_TEXT.get(ordinal)
    if day is None:
        if len(_DAY_TEXT) >= _UTC_ISO_MAX:
            _DAY_TEXT.clear()
        day = _DAY_TEXT[ordinal] = t.date().isoformat() + "T"
    return day + _TWO_DIGITS[t.hour] + ":" + _TWO_DIGITS[t.minute] + ":" + _TWO_DIGITS[t.second] + "+00:00"



class Milestones:
    """The milestones of every clock: the at-risk thresholds in increasing order, then the deadline.

    Index `last` is the deadline. Scaled durations are cached: a few targets x a few thresholds.
    """

    def __init__(self, thresholds: Sequence[float]):
        kept = sorted({Fraction(str(f)) for f in thresholds if 0 < f < 1})
        if len(kept) > MAX_AT_RISK_THRESHOLDS:
            raise ValueError(f"at most {MAX_AT_RISK_THRESHOLDS} at-risk thresholds (an output key holds the "
                             f"threshold's index in 4 bits), got {len(kept)} distinct ones")
        self.thresholds = tuple(float(f) for f in kept)
        self.ratios = tuple((f.numerator, f.denominator) for f in kept)
        self.last = len(kept)
        self._scaled: dict[tuple[timedelta, int], timedelta] = {}

    def need(self, duration: timedelta, index: int) -> timedelta:
        """Open time after which milestone `index` of a `duration` target is reached (to the microsecond)."""
        if index == self.last:
            return duration
        key = (duration, index)
        scaled = self._scaled.get(key)
        if scaled is None:
            num, den = self.ratios[index]
            scaled = self._scaled[key] = timedelta(microseconds=(duration // _US) * num // den)
        return scaled




def _minutes(d: timedelta) -> Fraction:
    return Fraction(d // _US, 60_000_000)


class Slot:
    """One running clock: a (metric, binding) target in its current cycle."""

    __slots__ = ("metric", "binding", "target", "cycle", "start", "effective_from", "pending", "due", "fired", "done",
                 "binding_breached")

    def __init__(self, metric: str, binding: bool, target: ClockTarget, cycle: int, start: datetime, effective_from: datetime):
        self.metric = metric
        self.binding = binding
        self.target = target
        self.cycle = cycle
        self.start = start  # when this cycle's clock started (identity `started_at`)
        self.effective_from = effective_from  # since when the current target applies
        # The next milestone only, (crossing instant, fraction, index): the later ones are computed
        # when it fires, so a ticket answered early never pays for its later thresholds.
        # A tuple (no list per clock: an open ticket keeps a few, most with nothing pending), empty or one.
        self.pending: tuple[tuple[datetime, int], ...] = ()
        self.due: datetime | None = None
        self.fired = 0  # bit mask of the at-risk thresholds fired in this cycle
        self.done = False
        # A breach of this clock was emitted while it was binding (set at a priority change that makes
        # it non-binding): a raise back to binding does not judge it again (`_Clocks._change_priority`).
        self.binding_breached = False


class TicketState:
    """Everything kept about one open ticket. Persistent part: identity, history, seen, emitted.

    The clocks (`slots` and the fields below them) are derived from the history and can be
    rebuilt at any time, so only the persistent part is serialised.
    """

    __slots__ = (
        "ticket_id", "customer_id", "policy_version", "environment", "opened_at",
        "history", "seen", "emitted", "seq", "attainment", "outcome_ids", "notice_contents", "closed_at",
        "purge_at",
        # derived
        "priority", "slots", "status_history", "resolved", "update_started", "update_cycle",
        "resolution_cycle", "resolution_breached", "first_response_done", "advanced_to", "derived", "closed",
        # not persisted: `Processor.ticket_plan`'s memo (the plan, and the processor's contracts token it holds for)
        "plan_token", "plan",
        # what the stream store last counted for this ticket (see `stored_open_clocks`); persisted
        # (optional "oc") by the stream store only
        "stored_open_clocks", "counted_provider",
    )

    def __init__(self, ticket_id: str, customer_id: str, policy_version: str, environment: str, opened_at: datetime):
        self.ticket_id = ticket_id
        self.customer_id = customer_id
        self.policy_version = policy_version
        self.environment = environment
        self.opened_at = opened_at
        # (occurred_at, seq, kind, value) entries, packed (`policies.compact.History`: ~30 bytes an entry)
        self.history = History()
        # The input events applied, as (id digest, content digest) pairs of 64-bit ints in one array
        # (a few bytes each instead of a set's 200+ bytes; a byte search answers `in`): the ids for
        # idempotency, the contents because a reused event_id with other content is a conflicting
        # duplicate (SPEC §10). Ids applied before contents were kept have none (`SeenEvents`).
        self.seen = SeenEvents()
        # SPEC §10: a closed ticket is kept until `purge_at` (its close + the parking horizon), so an
        # event dated before the close that arrives after it still applies; later-dated ones are
        # `ticket_closed`. Then the store keeps only its seen ids.
        self.closed_at: datetime | None = None
        self.purge_at: datetime | None = None
        self.emitted = EmittedKeys()  # keys of the outputs emitted (packed: ~1 bit per cadence output)
        # breach / met key -> its event id (content-addressed; absent in states written before)
        self.outcome_ids = IdMap()
        # notice key -> the fingerprint of what the notice said (a rejection's `kept` depends on the
        # priority at its instant, so the same id can be derived with other content after a late event)
        self.notice_contents: IdMap | None = None  # None while empty (a rejection notice is rare)
        self.seq = 0
        # Bits owned by `policies.attainment.AttainmentBook`: how this ticket is counted in its
        # customer's quarter (waiting for an outcome, holding a counted breach). Kept here, not in
        # the book, so the book's persisted size does not grow with the open tickets.
        self.attainment = 0
        self.plan_token: object = None
        self.plan: ResolvedPlan | None = None
        # What a per-partition count kept by differences at each write (streams/core_adapter.py, the
        # open-clocks gauge) holds for this ticket: `stored_open_clocks` clocks under the provider
        # `counted_provider`, set by the stream store when it writes the state and stored with it
        # ("oc"), so a later write subtracts exactly what was added, even after the ticket's plan or
        # provider changed. 0 / None for a new ticket (nothing counted). A state stored without "oc"
        # (written by a version before it) has None: its clocks as its stored form derives them now
        # (set when the engine derives it), under the provider of its plan at its next write.
        self.stored_open_clocks = 0
        self.counted_provider: str | None = None
        self._reset_clocks()

    def _reset_clocks(self) -> None:
        self.priority: str = ""
        self.slots: list[Slot] = []
        # (since, status, resolved) of each status, flat: [since, status, resolved, since, ...] (no tuple
        # per entry); `status_entries` gives the tuples
        self.status_history: list[Any] = []
        self.resolved = False
        self.update_started = False
        self.update_cycle = 0
        self.resolution_cycle = 1
        self.resolution_breached = False
        self.first_response_done = False
        self.closed = False
        self.advanced_to: datetime = self.opened_at
        self.derived = True  # False after from_json: the engine rebuilds the clocks on first use

    def mark_seen(self, ev: Envelope, keep_content: bool = True) -> None:
        """Record an input event as applied: its id (idempotency) and its content (conflicts).
        `keep_content=False`: its id only (`TicketEngine.repeated_ids`: it cannot come again, so
        nothing looks its digest up again either: computed past the cache)."""
        if keep_content:
            self.seen.extend((event_digest(ev.event_id), content_digest(ev)))  # `SeenEvents.add`, inline
        else:
            self.seen.extend((_event_digest(ev.event_id), NO_CONTENT))

    def conflicts(self, ev: Envelope) -> bool:
        """Whether `ev` reuses the id of an applied event with other content."""
        content = self.seen.content_of(event_digest(ev.event_id))
        return content is not None and content != content_digest(ev)

    @property
    def next_wake(self) -> datetime | None:
        """The earliest pending milestone: the shell must advance this ticket once time passes it."""
        if self.purge_at is not None:
            return self.purge_at  # closed: no clock runs; wake once to forget it
        wake = None
        for slot in self.slots:
            if slot.pending and not slot.done and (wake is None or slot.pending[0][0] < wake):
                wake = slot.pending[0][0]
        return wake

    def to_json(self) -> str:
        """Persistent part as compact JSON (instants as ISO strings); the clocks are derived again on load."""
        return json.dumps({
            "t": self.ticket_id, "c": self.customer_id, "v": self.policy_version, "e": self.environment,
            "o": self.opened_at.isoformat(), "a": self.advanced_to.isoformat(), "q": self.seq,
            "h": [[ts.isoformat(), seq, kind, value] for ts, seq, kind, value in self.history],
            "s": sorted(self.seen), "m": sorted(self.emitted),
            **({"g": sorted(self.outcome_ids.items())} if self.outcome_ids else {}),
            **({"n": sorted(self.notice_contents.items())} if self.notice_contents else {}),
            **({"k": pairs} if (pairs := self.seen.pairs()) else {}),
            **({"z": [self.closed_at.isoformat(), self.purge_at.isoformat()]}
               if self.closed_at is not None and self.purge_at is not None else {}),
            **({"w": self.attainment} if self.attainment else {}),
            **({"oc": [self.counted_provider, self.stored_open_clocks]} if self.counted_provider is not None else {}),
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "TicketState":
        """Inverse of `to_json`. The clocks are rebuilt by the engine on first use (they need the plan)."""
        data = json.loads(text)
        state = cls(data["t"], data["c"], data["v"], data["e"], datetime.fromisoformat(data["o"]))
        state.seq = data["q"]
        state.history = History((datetime.fromisoformat(ts), seq, kind, value) for ts, seq, kind, value in data["h"])
        state.seen = SeenEvents.stored(data["s"], data.get("k", ()))
        state.emitted = EmittedKeys(data["m"])
        state.outcome_ids = IdMap((k, v) for k, v in data.get("g", ()))
        state.notice_contents = IdMap((k, v) for k, v in data["n"]) if data.get("n") else None
        if "z" in data:
            state.closed_at, state.purge_at = (datetime.fromisoformat(x) for x in data["z"])
        state.advanced_to = datetime.fromisoformat(data["a"])
        state.attainment = data.get("w", 0)  # absent: 0 (also in states written before the field existed)
        if "oc" in data:  # absent: not counted by a version that keeps it (see `stored_open_clocks`)
            state.counted_provider, state.stored_open_clocks = data["oc"]
        state.derived = False
        return state


class _Clocks:
    """The fold itself, bound to one ticket, its resolved plan and the at-risk thresholds."""

    def __init__(self, state: TicketState, plan: ResolvedPlan, milestones: Milestones):
        self.s = state
        self.plan = plan
        self.milestones = milestones
        self.out: list[Output] = []
        self.out_keys: list[int] = []
        self.notice_contents: dict[int, str] = {}  # derived notice key -> fingerprint of its content

    # ---- time -------------------------------------------------------------------------
    def advance(self, t: datetime) -> None:
        """Fire every milestone whose instant is before `t`, in order within each clock."""
        s = self.s
        if t <= s.advanced_to:
            return
        for slot in list(s.slots):
            while slot.pending and not slot.done and slot.pending[0][0] < t:
                (crossing, index), = slot.pending  # its one milestone
                slot.pending = ()
                self._fire(slot, crossing, index)
        s.advanced_to = t

    def _fire(self, slot: Slot, crossing: datetime, index: int) -> None:
        at = crossing if crossing > slot.effective_from else slot.effective_from
        if index != self.milestones.last:
            slot.fired |= 1 << index
            self._emit(_KIND_AT_RISK, "sla.at_risk", at, slot, index, {"threshold": self.milestones.thresholds[index]})
            self._queue_next(slot)
            return
        self._emit(_KIND_BREACH, "sla.breached", at, slot, 0, {})
        if slot.metric == "update":
            # SPEC §6: a missed cycle breaches once; the next cycle is due one cadence after the missed deadline.
            # The next cycle starts when the breach occurs (`at`): at the deadline when the cadence simply
            # elapsed; at the change when a change in the folded history (a priority raise, a resume)
            # puts the deadline already behind it (`at` > `crossing`). Starting it at the passed deadline
            # would give cycles that were never due under any priority in force, overdue at birth: a
            # burst of breaches at the change (docs/decisions.md, "Time and clocks").
            self.s.update_cycle = max(self.s.update_cycle, slot.cycle + 1)
            self._restart(slot, slot.cycle + 1, at, at)
        else:
            if slot.metric == "resolution":
                self.s.resolution_breached = True
            slot.done = True
            slot.pending = ()

    # ---- pauses and elapsed time ------------------------------------------------------
    def _paused(self, metric: str, status: str, resolved: bool) -> bool:
        if resolved:
            return True
        statuses = self.plan.pause_statuses.get(metric)
        return statuses is not None and status in statuses

    def _running_intervals(self, metric: str, start: datetime) -> list[tuple[datetime, datetime | None]]:
        """Unpaused intervals of `metric` since `start`; the last one may be open-ended (None)."""
        history = self.s.status_history
        if len(history) == 3:  # the common case: never paused, never resolved
            since, status, resolved = history
            return [] if self._paused(metric, status, resolved) else [(max(since, start), None)]
        intervals: list[tuple[datetime, datetime | None]] = []
        run_from: datetime | None = None
        end = len(history)
        for i in range(0, end, 3):
            since, status, resolved = history[i], history[i + 1], history[i + 2]
            until = history[i + 3] if i + 3 < end else None
            if until is not None and until <= start:
                continue
            lo = max(since, start)
            if self._paused(metric, status, resolved):
                if run_from is not None:
                    intervals.append((run_from, lo))
                    run_from = None
            elif run_from is None:
                run_from = lo
        if run_from is not None:
            intervals.append((run_from, None))
        return intervals

    @staticmethod
    def _cross(runs: list[tuple[datetime, datetime | None]], calendar: BusinessCalendar, need: timedelta) -> datetime | None:
        """The instant at which `need` of open time has run over `runs` (None if they end first)."""
        done = _ZERO
        for lo, hi in runs:
            if hi is None:
                return calendar.add_business(lo, need - done)
            part = calendar.business_between(lo, hi)
            if done + part >= need:
                return calendar.add_business(lo, need - done)
            done += part
        return None

    def _elapsed(self, slot: Slot, until: datetime) -> timedelta:
        calendar = slot.target.calendar
        total = _ZERO
        for lo, hi in self._running_intervals(slot.metric, slot.start):
            end = until if hi is None or hi > until else hi
            if end > lo:
                total += calendar.business_between(lo, end)
        return total

    def _schedule(self, slot: Slot) -> None:
        """Recompute the deadline and the next milestone of a slot (target or pauses changed)."""
        slot.pending = ()
        runs = self._running_intervals(slot.metric, slot.start)
        slot.due = self._cross(runs, slot.target.calendar, slot.target.duration)
        if slot.due is None:
            # Paused: no deadline until the clock runs again. `due_at` (for a reply during the
            # pause) is the deadline the clock would have if it resumed now.
            last_end = runs[-1][1] if runs else None
            resume = max(slot.effective_from, last_end) if last_end is not None else slot.effective_from
            slot.due = self._cross(runs + [(resume, None)], slot.target.calendar, slot.target.duration)
            return
        if slot.metric == "resolution" and self.s.resolution_breached:
            slot.done = True  # resolution breaches once per ticket, whatever the reopen cycles
            return
        self._queue_next(slot, runs)

    def _queue_next(self, slot: Slot, runs: list[tuple[datetime, datetime | None]] | None = None) -> None:
        """Queue the lowest at-risk threshold not fired in this cycle, else the deadline."""
        milestones = self.milestones
        for index in range(milestones.last):
            if not slot.fired >> index & 1:
                if runs is None:
                    runs = self._running_intervals(slot.metric, slot.start)
                crossing = self._cross(runs, slot.target.calendar, milestones.need(slot.target.duration, index))
                if crossing is not None:
                    slot.pending = ((crossing, index),)
                    return
        if slot.due is not None:
            slot.pending = ((slot.due, milestones.last),)

    def _restart(self, slot: Slot, cycle: int, start: datetime, known_at: datetime) -> None:
        """Next cycle from `start`; milestones already passed at `known_at` (a breach found at a
        priority change) occur at `known_at`, keeping the outputs in time order."""
        slot.cycle = cycle
        slot.start = start
        slot.effective_from = known_at
        slot.fired = 0
        slot.done = False
        self._schedule(slot)

    # ---- outputs ----------------------------------------------------------------------
    def _identity(self, slot: Slot) -> dict[str, Any]:
        target = slot.target
        return {
            "ticket_id": self.s.ticket_id,
            "customer_id": self.s.customer_id,
            "policy": self.plan.policy,
            "plan": self.plan.plan,
            "policy_version": self.s.policy_version,
            "priority": self.s.priority,
            "metric": slot.metric,
            "binding": slot.binding,
            "target": {"amount": target.amount, "unit": target.unit, "clock": target.clock},
            "started_at": slot.start,
            "due_at": slot.due,
            "cycle": slot.cycle,
        }

    def _emit(self, kind: int, type_: str, at: datetime, slot: Slot, index: int, extra: dict[str, Any]) -> None:
        key = _output_key(kind, slot.metric, slot.binding, slot.cycle, index)
        fields = self._identity(slot)
        fields.update(extra)
        if kind == _KIND_BREACH or kind == _KIND_MET:  # content-addressed (events.ids.clock_outcome_event_id)
            due = slot.due
            event_id = clock_outcome_event_id(
                type_, self.s.ticket_id, slot.metric, slot.binding, slot.cycle, utc_iso(at),
                utc_iso(due) if due is not None else "", self.s.priority, utc_iso(slot.start),
                minutes_text(extra["elapsed_minutes"]) if kind == _KIND_MET else "")
        else:  # the clock and cycle (an at-risk warning: and its threshold); its parts built only here
            parts = [type_, self.s.ticket_id, slot.metric, "true" if slot.binding else "false", str(slot.cycle)]
            if kind == _KIND_AT_RISK:
                parts.append(str(extra["threshold"]))
            event_id = output_event_id(*parts)
        self.out.append(_new_output((type_, at, self.s.ticket_id, event_id, fields)))
        self.out_keys.append(key)

    # ---- applying one history entry ---------------------------------------------------
    def step(self, ts: datetime, kind: str, value: str | None, seq: int = 0) -> None:
        self.advance(ts)
        s = self.s
        if s.closed:
            return  # nothing applies after ticket.closed (a later-dated event folded in before the close arrived)
        if kind == CLOSED:
            s.closed = True
            s.slots = []  # every clock stops for good
            return
        if kind == OPEN:
            requested, _, event_id = (value or "").partition("|")
            s.priority = intern(self._non_production_rule(requested))  # one string per priority, not per ticket
            if s.priority != requested:
                self._adjusted(ts, seq, event_id, requested, s.priority)
            s.status_history = [ts, "open", False]
            for target in self.plan.targets(s.priority):
                if target.metric in ("first_response", "resolution"):
                    slot = Slot(target.metric, target.binding, target, 1, ts, ts)
                    s.slots.append(slot)
                    self._schedule(slot)
        elif kind == REPLY:
            if s.resolved:
                return
            for slot in s.slots:
                if slot.metric == "first_response" and not slot.done:
                    self._met(slot, ts)
            s.first_response_done = True
            self._reply_updates(ts)
        elif kind == PRIORITY:
            by, requested, event_id = (value or "||").split("|", 2)
            if by == "c" and requested in self.plan.customer_cannot_raise_to and requested != s.priority:
                # Neural Magic: "The urgency of existing tickets can't be increased to Critical."
                self._notice("ticket.priority_change_rejected", ts, seq, event_id, {
                    "ticket_id": s.ticket_id, "requested": requested, "kept": s.priority,
                    "reason": f"{self.plan.policy}: the customer cannot raise an existing ticket to {requested}; "
                              "submit a new ticket"})
            else:
                effective = self._non_production_rule(requested)
                if effective != requested:
                    self._adjusted(ts, seq, event_id, requested, effective)
                self._change_priority(ts, effective)
        elif kind == STATUS:
            self._set_status(ts, intern((value or "open").partition("|")[0]), s.resolved)
        elif kind == RESOLVED:
            if s.resolved:
                return
            for slot in s.slots:
                if slot.metric == "resolution" and not slot.done:
                    self._met(slot, ts)
            self._set_status(ts, s.status_history[-2], True)
            s.first_response_done = True  # SPEC §6: first response stays as it was, also after a reopen
            # SPEC §6: resolved stops all clocks; only resolution can resume (on reopen).
            s.slots = [slot for slot in s.slots if slot.metric == "resolution"]
            for slot in s.slots:
                slot.pending = ()
        elif kind == REOPENED:
            if not s.resolved:
                return
            self._set_status(ts, s.status_history[-2], False)
            s.resolution_cycle += 1
            for slot in s.slots:  # resolution resumes with its elapsed time, as a new cycle
                slot.cycle = s.resolution_cycle
                slot.effective_from = ts
                slot.fired = 0
                slot.done = False
                self._schedule(slot)
            self._start_updates(ts)
        self.advance_inclusive(ts)

    def _non_production_rule(self, priority: str) -> str:
        """Vectorize: "Urgent and High priority levels are not available for non-production systems"."""
        if self.s.environment == "non_production" and priority in self.plan.non_production_unavailable:
            return self.plan.non_production_fallback or priority
        return priority

    def _notice(self, type_: str, ts: datetime, seq: int, event_id: str, fields: dict[str, Any]) -> None:
        """A notice about the input at arrival number `seq`; its id names the input (in-order ids are
        unchanged), its fingerprint what it says, so a rebuild can tell it changed (SPEC §10)."""
        notice_id = priority_notice_event_id(type_, self.s.ticket_id, event_id)
        key = _output_key(_KIND_NOTICE, "first_response", False, seq)
        self.out.append(Output(type_, ts, self.s.ticket_id, notice_id, fields))
        self.out_keys.append(key)
        self.notice_contents[key] = _hash_id(notice_id, ts.astimezone(UTC).isoformat(),
                                             json.dumps(fields, sort_keys=True, default=str))

    def _adjusted(self, ts: datetime, seq: int, event_id: str, requested: str, effective: str) -> None:
        self._notice("ticket.priority_adjusted", ts, seq, event_id, {
            "ticket_id": self.s.ticket_id, "requested": requested, "effective": effective,
            "reason": f"{self.plan.policy}: {requested} is not available for non-production systems"})

    def advance_inclusive(self, ts: datetime) -> None:
        """Fire milestones a change made already passed (crossing before `ts`): they occur at `ts`."""
        for slot in list(self.s.slots):
            while slot.pending and not slot.done and slot.pending[0][0] < ts:
                (crossing, index), = slot.pending  # its one milestone
                slot.pending = ()
                self._fire(slot, crossing, index)

    def _met(self, slot: Slot, ts: datetime) -> None:
        if slot.target is None:
            return
        s = self.s
        if self._paused(slot.metric, s.status_history[-2], s.status_history[-1]):
            # Met during a pause: its `due_at` is the deadline in force at `ts`, the remaining time
            # from `ts` (review 2026-12-06: the deadline as if never paused made a met look late,
            # `met_at` a day after `due_at`).
            runs = self._running_intervals(slot.metric, slot.start)
            slot.due = self._cross(runs + [(max(ts, slot.effective_from), None)], slot.target.calendar,
                                   slot.target.duration)
        self._emit(_KIND_MET, "sla.met", ts, slot, 0, {"met_at": ts, "elapsed_minutes": _minutes(self._elapsed(slot, ts))})
        slot.done = True
        slot.pending = ()

    def _update_targets(self) -> list[ClockTarget]:
        return [t for t in self.plan.targets(self.s.priority) if t.metric == "update"]

    def _start_updates(self, ts: datetime) -> None:
        s = self.s
        s.slots = [slot for slot in s.slots if slot.metric != "update"]
        # The updates have started (a provider public reply, a reopen) whatever the priority: one
        # without timed updates (Neptune Basic critical) runs no cycle, and a change to a priority
        # with a cadence starts cycle 1 at the change (`_change_priority`). Review 2026-12-04 F2: set
        # only with a target, an answered critical ticket lowered to high never got a cadence.
        s.update_started = True
        targets = self._update_targets()
        if not targets:
            return
        s.update_cycle += 1
        for target in targets:
            slot = Slot("update", target.binding, target, s.update_cycle, ts, ts)
            s.slots.append(slot)
            self._schedule(slot)

    def _reply_updates(self, ts: datetime) -> None:
        s = self.s
        for slot in s.slots:
            if slot.metric == "update" and not slot.done:
                self._met(slot, ts)
        self._start_updates(ts)

    def _set_status(self, ts: datetime, status: str, resolved: bool) -> None:
        s = self.s
        before = {id(slot): self._paused(slot.metric, s.status_history[-2], s.status_history[-1]) for slot in s.slots}
        s.status_history = [*s.status_history, ts, status, resolved]  # exact size: a list grown by 3 keeps 6 spare
        s.resolved = resolved
        for slot in s.slots:
            if slot.done:
                continue
            now_paused = self._paused(slot.metric, status, resolved)
            if now_paused and not before[id(slot)]:
                slot.pending = ()
            elif before[id(slot)] and not now_paused:
                slot.effective_from = ts
                self._schedule(slot)

    def _change_priority(self, ts: datetime, priority: str) -> None:
        """SPEC §6: re-evaluate from the original start with the new targets, keeping elapsed time."""
        s = self.s
        if priority == s.priority:
            return
        s.priority = intern(priority)  # one string per priority, not per ticket
        targets = list(self.plan.targets(priority))
        remaining = list(s.slots)
        kept: list[Slot] = []
        # The same clock carries over: first by (metric, binding), then by metric alone (Neptune's
        # medium/low clocks are not binding: a raise to high turns the same clock binding).
        for same_binding in (True, False):
            for target in list(targets):
                slot = next((x for x in remaining if x.metric == target.metric
                             and (x.binding == target.binding or not same_binding)), None)
                if slot is None:
                    continue
                remaining.remove(slot)
                targets.remove(target)
                kept.append(slot)
                # A first response finished by a breach (done without a reply) while binding
                # remembers it, so that a later raise back to a binding target does not breach again.
                breached = slot.metric == "first_response" and slot.done and not s.first_response_done
                if breached and slot.binding:
                    slot.binding_breached = True
                judge = breached and target.binding and not slot.binding and not slot.binding_breached
                slot.binding = target.binding
                slot.target = target
                if not slot.done or judge:
                    # Review 2026-12-04 F3: a clock finished by a non-binding breach (the objective)
                    # is judged again against the binding target it now has; if that deadline has
                    # passed, the breach occurs at the change (SPEC §6). At-risk warnings already
                    # given in this cycle are not repeated (`fired` is kept).
                    slot.done = False
                    slot.effective_from = ts
                    self._schedule(slot)
        s.slots = kept
        for target in targets:  # clocks the old priority did not have
            metric = target.metric
            if s.resolved and metric != "resolution":
                continue  # SPEC §6: resolved stops every clock; only resolution resumes (on reopen)
            if metric == "first_response" and not s.first_response_done:
                slot = Slot(metric, target.binding, target, 1, s.opened_at, ts)
            elif metric == "resolution":
                # While resolved too (review 2026-12-06, a missed breach: a raise to a priority with a
                # resolution target while the ticket was resolved created no clock, so the reopen had
                # none to resume): paused until the reopen, which resumes it as the next cycle.
                slot = Slot(metric, target.binding, target, s.resolution_cycle, s.opened_at, ts)
            elif metric == "update" and s.update_started:
                s.update_cycle += 1
                slot = Slot(metric, target.binding, target, s.update_cycle, ts, ts)
            else:
                continue
            s.slots.append(slot)
            self._schedule(slot)

    def rebuild(self, now: datetime) -> None:
        """Derive the clocks from scratch from the history, up to `now`."""
        s = self.s
        s._reset_clocks()
        s.derived = True
        self.out = []
        self.out_keys = []
        self.notice_contents = {}
        for ts, seq, kind, value in sorted(s.history, key=fold_key(s.history)):
            self.step(ts, kind, value, seq)
        self.advance(now)


def _metric_labels(state: TicketState, plan: ResolvedPlan) -> dict[str, Any]:
    """The breach/met counter labels a retraction is counted under (not on the wire): the ticket's
    policy, plan and priority now. A retraction caused by a late priority change carries the new
    priority, while the outcome it retracts was counted under the old one."""
    return {"policy": plan.policy, "plan": plan.plan, "priority": state.priority}


class TicketEngine:
    """Commands on tickets: each returns the outputs it caused. Pure; `now` is passed in."""

    def __init__(self, thresholds: Sequence[float] = (0.5, 0.75, 0.9)):
        self.thresholds = tuple(thresholds)
        self.milestones = Milestones(self.thresholds)
        # The event ids that may be applied more than once (None: any may, as on a stream). Only
        # these keep a content digest in a ticket's seen ids: the digest is compared only when an id
        # comes again (a duplicate or a conflicting one, SPEC §10), and costs ~18,000 instructions
        # an event (a canonical serialisation and a hash; 7 % of a replay). A replay knows its whole
        # batch (`Replayer.finish`): an id it reads once never comes again.
        self.repeated_ids: Container[str] | None = None

    def open(self, ev: TicketOpened, plan: ResolvedPlan, now: datetime) -> tuple[TicketState, list[Output]]:
        """Open a ticket (`ticket.opened`); the policy's priority rules apply in the fold."""
        priority = ev.priority.lower()
        self._check_priority(priority, plan)
        at, event_id = ev.occurred_at, ev.event_id  # read once (pydantic fields)
        state = TicketState(ev.ticket_id, ev.customer_id, plan.policy_version, ev.environment, at)
        repeated = self.repeated_ids
        state.mark_seen(ev, repeated is None or event_id in repeated)
        state.priority = priority
        if not plan.ticket_clocks:
            return state, []  # e.g. Vectorize Starter: community support only, nothing to hold
        entry = f"{priority}|{event_id}"
        state.history.append((at, 0, OPEN, entry))
        state.seq = 1
        clocks = _Clocks(state, plan, self.milestones)
        clocks.step(at, OPEN, entry, 0)
        clocks.advance(max(now, at))
        return state, self._record(state, clocks)

    @staticmethod
    def _check_priority(priority: str, plan: ResolvedPlan) -> None:
        if priority not in plan.priorities:
            raise Rejected("invalid_field", f"priority {priority!r} is not a priority of policy {plan.policy} "
                                            f"(expected one of {', '.join(plan.priorities)})")

    def _ensure_derived(self, state: TicketState, plan: ResolvedPlan) -> list[Output]:
        """Rebuild the clocks of a state loaded from JSON, or measured under other terms since a
        contract changed (`Processor.ticket_plan`), up to the time it had reached.

        Returns what the history derives but was never recorded as emitted, and the cancellation of
        what was emitted but is no longer derived: nothing after a restart under the same terms
        (unless the state was saved between deriving outputs and recording them); under other
        terms, a breach the new targets give and the retraction of a met they no longer give."""
        if state.derived:
            return []
        clocks = _Clocks(state, plan, self.milestones)
        clocks.rebuild(state.advanced_to)
        if state.counted_provider is None:  # stored without what was counted for it: what it had when stored
            state.stored_open_clocks = open_clock_count((state,))
        return self._record(state, clocks, retract_at=state.advanced_to)

    def stored_open_clocks(self, state: TicketState, plan: ResolvedPlan) -> int:
        """Open clocks of a state as stored (`from_json`): what was counted for it if stored with it,
        else derived from its clocks, so pass a copy nothing else holds (a count of the stored
        tickets, not a step of the ticket)."""
        if state.counted_provider is not None:
            return state.stored_open_clocks
        self._ensure_derived(state, plan)
        return state.stored_open_clocks

    def apply(self, state: TicketState, ev: TicketEvent, plan: ResolvedPlan, now: datetime,
              unseen: bool = False) -> list[Output]:
        """Apply a ticket event (not `ticket.opened`) at its own timestamp; `now` >= processor time.
        `unseen`: the caller has just found the event's id not among the ticket's seen ids."""
        restored = [] if state.derived else self._ensure_derived(state, plan)  # the check inline: once per event
        if not unseen and event_digest(ev.event_id) in state.seen:
            return restored  # SPEC §2: an input event id already processed is ignored
        entry = self._history_entry(ev, plan)
        repeated = self.repeated_ids
        state.mark_seen(ev, repeated is None or ev.event_id in repeated)
        if entry is None or not plan.ticket_clocks:
            return restored
        kind, value = entry
        # An event stamped before its ticket's open (clock skew upstream) is applied at the open.
        at = ev.occurred_at
        ts = at if at >= state.opened_at else state.opened_at
        seq = state.seq
        state.history.append((ts, seq, kind, value))
        state.seq += 1
        clocks = _Clocks(state, plan, self.milestones)
        if ts < state.advanced_to or (ts == state.advanced_to and self._folds_before(state, ts)):
            clocks.rebuild(max(now, state.advanced_to))
            return restored + self._record(state, clocks, retract_at=max(now, state.advanced_to))
        clocks.step(ts, kind, value, seq)
        clocks.advance(max(now, ts))
        return restored + self._record(state, clocks)

    @staticmethod
    def _folds_before(state: TicketState, ts: datetime) -> bool:
        """Whether the entry just appended (at the ticket's instant `ts`) folds before one already
        applied at `ts`: then the clocks are rebuilt, as for a late event."""
        same = [h for h in state.history if h[0] == ts]
        if len(same) < 2:
            return False
        key = fold_key(state.history)
        last = key(state.history[-1])
        return any(key(h) > last for h in same)

    def advance(self, state: TicketState, plan: ResolvedPlan, now: datetime) -> list[Output]:
        """Move the ticket's time to `now`, firing what is due."""
        restored = [] if state.derived else self._ensure_derived(state, plan)
        clocks = _Clocks(state, plan, self.milestones)
        clocks.advance(now)
        return restored + self._record(state, clocks)

    # ---- helpers ----------------------------------------------------------------------
    def _record(self, state: TicketState, clocks: _Clocks, retract_at: datetime | None = None) -> list[Output]:
        """Keep the outputs not emitted before; on a rebuild, cancel what is no longer derived.

        Breaches, mets and priority notices (SPEC §10, every correction cancels what it corrects):
        one no longer derived is retracted (`sla.breach_retracted` / `sla.met_retracted` /
        `ticket.priority_notice_retracted`); one derived again after its retraction, or derived
        with other content (a late priority change moved its deadline, or changed the priority a
        rejection keeps), cancels the standing one and comes as a new generation with its own id."""
        if retract_at is None and not clocks.out:
            return []  # nothing derived, nothing to cancel: skip building the set of emitted keys
        fresh: list[Output] = []
        emitted = state.emitted  # packed (`EmittedKeys`: a byte search and a bit test per `in`); `seen`
        # answers membership: a set for a rebuild (every key is looked up), else the record itself
        rebuilt: set[int] | None = set(emitted) if retract_at is not None else None
        seen: Any = emitted if rebuilt is None else rebuilt
        insert = emitted.insert  # adds a key, True if it was not there (one search for both)
        outcome_ids = state.outcome_ids
        notice_contents = clocks.notice_contents

        def emitted_add(key: int) -> None:
            emitted.insert(key)
            if rebuilt is not None:
                rebuilt.add(key)

        def keep_notice_content(key: int, derived_key: int) -> None:
            if state.notice_contents is None:
                state.notice_contents = IdMap()
            state.notice_contents[key] = notice_contents[derived_key]

        for key, out in zip(clocks.out_keys, clocks.out):
            if rebuilt is None:
                new_key = insert(key)
            elif key in rebuilt:
                new_key = False
            else:
                new_key = True
                emitted.insert(key)
                rebuilt.add(key)
            if new_key:
                if _is_cancellable_key(key):
                    outcome_ids[key] = out.event_id
                    if key in notice_contents:
                        keep_notice_content(key, key)
                fresh.append(out)
                continue
            if not _is_cancellable_key(key):
                continue
            generation = 0
            while key + (generation + 1) * _GENERATION in seen:
                generation += 1
            current = key + generation * _GENERATION
            standing = _cancel_key(current) not in seen
            if standing and self._same_outcome(state, current, out.event_id, notice_contents.get(key)):
                continue
            if standing:  # derived with other content (another instant or deadline): cancel the standing one
                emitted_add(_cancel_key(current))
                fresh.append(self._cancellation(state, clocks.plan, current, retract_at or out.occurred_at,
                                                "it changed"))
            new = current + _GENERATION
            event_id = out.event_id
            if any(outcome_ids.get(key + g * _GENERATION) == event_id for g in range(generation + 1)):
                event_id = _hash_id(event_id, f"generation-{generation + 1}")  # the same outcome, cancelled before
            emitted_add(new)
            outcome_ids[new] = event_id
            if key in notice_contents:
                keep_notice_content(new, key)
            fresh.append(out._replace(event_id=event_id))
        if retract_at is not None:
            derived = set(clocks.out_keys)
            for key in sorted(emitted):
                if (_is_cancellable_key(key) and key % _GENERATION not in derived and _cancel_key(key) not in seen
                        and (key in outcome_ids or not _is_notice_key(key))):  # a notice's id is kept since SPEC §10
                    emitted_add(_cancel_key(key))
                    fresh.append(self._cancellation(state, clocks.plan, key, retract_at, "no longer derived"))
        return fresh

    @staticmethod
    def _same_outcome(state: TicketState, key: int, event_id: str, notice_content: str | None) -> bool:
        """Whether the standing output `key` is the one derived again (id, and a notice's content).
        A state from before ids (or notice contents) were kept counts as the same. A generation
        whose id was taken by an earlier one carries the id hashed with its generation."""
        standing_id = state.outcome_ids.get(key)
        if standing_id is not None and standing_id != event_id and (
                standing_id != _hash_id(event_id, f"generation-{key // _GENERATION}")):
            return False
        standing_content = state.notice_contents.get(key) if state.notice_contents is not None else None
        return standing_content is None or notice_content is None or standing_content == notice_content

    @classmethod
    def _cancellation(cls, state: TicketState, plan: ResolvedPlan, key: int, at: datetime, why: str) -> Output:
        if _is_breach_key(key):
            return cls._retraction(state, plan, key, at)
        if _is_notice_key(key):
            return cls._notice_retraction(state, key, at, why)
        metric, binding, cycle, _generation = _breach_of_key(key)
        met_id = outcome_id(state, key)
        fields = {
            "met_event_id": met_id, "ticket_id": state.ticket_id,
            "customer_id": state.customer_id, "metric": metric, "binding": binding,  # not on the wire: metrics, attainment
            **_metric_labels(state, plan),
            "reason": f"a late event shows the {metric} target (cycle {cycle}) was not met as reported ({why})",
        }
        return Output("sla.met_retracted", at, state.ticket_id, met_retraction_event_id(met_id), fields)

    @staticmethod
    def _notice_retraction(state: TicketState, key: int, at: datetime, why: str) -> Output:
        notice_id = state.outcome_ids[key]
        fields = {"notice_event_id": notice_id, "ticket_id": state.ticket_id,
                  "reason": f"a late event shows this notice does not hold at its instant ({why})"}
        return Output("ticket.priority_notice_retracted", at, state.ticket_id,
                      notice_retraction_event_id(state.ticket_id, notice_id), fields)

    @staticmethod
    def _retraction(state: TicketState, plan: ResolvedPlan, breach_key: int, at: datetime) -> Output:
        metric, binding, cycle, _generation = _breach_of_key(breach_key)
        breach_id = outcome_id(state, breach_key)
        fields = {
            "breach_event_id": breach_id,
            "ticket_id": state.ticket_id,
            # not on the wire (the model ignores them): for metrics, the labels of the breach counter
            "customer_id": state.customer_id, "metric": metric, "binding": binding,
            **_metric_labels(state, plan),
            "reason": f"a late event shows the {metric} target (cycle {cycle}) was not missed at that deadline",
        }
        return Output("sla.breach_retracted", at, state.ticket_id, output_event_id("sla.breach_retracted", breach_id), fields)

    def _history_entry(self, ev: TicketEvent, plan: ResolvedPlan) -> tuple[str, str | None] | None:
        """The compact history entry of a ticket event, or None when it changes no clock."""
        # Each entry holds its event id: entries of one instant fold in id order (`_fold_order`).
        if isinstance(ev, TicketReplied):
            return (REPLY, ev.event_id) if ev.author == "provider" and ev.public else None
        if isinstance(ev, TicketPriorityChanged):
            requested = ev.priority.lower()
            self._check_priority(requested, plan)
            return PRIORITY, _encode_priority_entry(ev.requested_by, requested, ev.event_id)
        if isinstance(ev, TicketStatusChanged):
            return STATUS, f"{ev.status}|{ev.event_id}"
        kind = _KIND_OF_TYPE.get(ev.type)  # ticket.escalated carries no clock change
        return None if kind is None else (kind, ev.event_id)


_KIND_OF_TYPE: dict[str, str] = {"ticket.resolved": RESOLVED, "ticket.reopened": REOPENED, "ticket.closed": CLOSED}


def measurable_under(state: TicketState, plan: ResolvedPlan) -> bool:
    """Whether every priority the ticket has had is one of `plan`'s: terms of another policy
    installed after the fact (backdated, or a correction) may not know them, and its clocks
    cannot be derived under those terms (`Processor.ticket_plan`)."""
    known = plan.priorities
    if state.priority and state.priority not in known:  # "" on a state read back, before its clocks are derived
        return False
    for _ts, _seq, kind, value in state.history:
        if value is None:
            continue
        if kind == OPEN:
            priority = value.partition("|")[0]
        elif kind == PRIORITY:
            priority = value.split("|", 2)[1]
        else:
            continue
        if priority not in known:
            return False
    return True


def describe_ticket(state: TicketState, plan: ResolvedPlan, now: datetime, thresholds: Sequence[float] = (0.5, 0.75, 0.9)) -> dict[str, Any]:
    """The ticket's clocks as JSON-able data for the query API (instants ISO UTC, minutes numbers)."""
    engine = TicketEngine(thresholds)
    engine._ensure_derived(state, plan)
    clocks = _Clocks(state, plan, engine.milestones)
    described = []
    for slot in state.slots:
        paused = bool(slot.pending == () and not slot.done and slot.due is not None
                      and not any(hi is None for _, hi in clocks._running_intervals(slot.metric, slot.start)))
        elapsed = clocks._elapsed(slot, max(now, slot.start))
        described.append({
            "metric": slot.metric, "binding": slot.binding, "cycle": slot.cycle,
            "target": {"amount": float(slot.target.amount), "unit": slot.target.unit, "clock": slot.target.clock},
            "started_at": slot.start.isoformat(), "due_at": slot.due.isoformat() if slot.due else None,
            "elapsed_minutes": round(elapsed.total_seconds() / 60, 4),
            "paused": paused,
            "state": "done" if slot.done else ("paused" if paused else "running"),
        })
    breaches = []
    emitted = set(state.emitted)
    for key in sorted(emitted):
        if _is_breach_key(key) and _retracted_key(key) not in emitted:
            metric, binding, cycle, generation = _breach_of_key(key)
            breaches.append({"metric": metric, "binding": binding, "cycle": cycle,
                             "event_id": outcome_id(state, key)})
    return {"ticket_id": state.ticket_id, "customer_id": state.customer_id, "policy": plan.policy,
            "plan": plan.plan, "policy_version": state.policy_version, "priority": state.priority,
            "opened_at": state.opened_at.isoformat(), "resolved": state.resolved,
            # a closed ticket is kept (no clock runs) until its close + the parking horizon
            "closed_at": state.closed_at.isoformat() if state.closed_at is not None else None,
            "as_of": max(now, state.advanced_to).isoformat(), "clocks": described, "breaches": breaches}


def standing_outcomes(state: TicketState, plan: Any, now: datetime) -> tuple[list[Output], list[tuple[datetime, str, bool]]]:
    """The ticket's `sla.breached` / `sla.met` as its whole history derives them at `now` (what
    stands: a retracted breach is not derived), and its status history (since, status, resolved).

    Rebuilds a copy: the state itself (live in a worker's table) is left as it is."""
    copy = TicketState.from_json(state.to_json())
    clocks = _Clocks(copy, plan, Milestones(()))
    clocks.rebuild(max(now, copy.advanced_to))
    return [o for o in clocks.out if o.type in ("sla.breached", "sla.met")], status_entries(copy)


def status_entries(state: TicketState) -> list[tuple[datetime, str, bool]]:
    """The ticket's status history as (since, status, resolved) tuples (kept flat in the state)."""
    flat = state.status_history
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


def open_clock_count(states: Iterable[TicketState]) -> int:
    """Number of clocks still running (the open-clocks gauge): not done, with a milestone ahead
    (a paused clock has none). The one definition; the gauge and the benchmarks count with it."""
    return sum(1 for st in states for slot in st.slots if not slot.done and slot.pending)
