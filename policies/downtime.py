"""Per-service downtime ledger: outages and maintenance windows folded from monitoring events.

Pure core (SPEC §8). All instants are timezone-aware UTC datetimes; minutes are exact
`fractions.Fraction` values (seconds / 60, microsecond exact).

The state of one service (`ServiceState`) is folded by pure functions that return a
new state. Every field of a record is merged as a join (earliest start / report,
latest resolution, last-writer-wins by `(occurred_at, event_id)` for classification
and scheduling), so the fold is

- idempotent: applying the same event twice leaves the state unchanged (the figures
  never depend on event ids). The state still remembers, per outage and per window, a
  digest of each applied event's id and content (`ServiceState.applied`), so the
  processor can tell a re-sent event (ignored, SPEC §2) from a reused id with other
  content (`conflicting_duplicate`, SPEC §10); that memory is pruned with its record;
- order-independent once an outage / window exists: the figures do not depend on the
  order in which the events were applied (late events are simply folded in).

Counting rules (decisions on SPEC §8 and the Vectorize seed, see `month_figures`):

- An outage counts from the earlier of its `outage.started` (internal alert) and its
  first `outage.reported` (customer ticket) until `outage.resolved`; an unresolved
  outage counts until the `as_of` instant given to `month_figures`.
- Scope: `all_users` unless every `outage.started` for it said `partial` (an outage known
  only from a customer report is taken as `all_users`). Partial outages are listed for
  explanation but never counted.
- Cause: unclassified outages are provider outages. An `excluded` outage is removed
  entirely. Each instant of the month covered by at least one `all_users` outage is
  classified once: covered by a provider outage -> maintenance if inside Scheduled
  Maintenance, else downtime; covered only by excluded outages -> excluded. Hence
  downtime + maintenance + excluded = the union of all all_users outages in the month,
  and excluded_minutes never overlaps counted downtime.
- Scheduled Maintenance: a window notified at least 48 h before its start (the Vectorize
  seed: "maintenance windows notified at least 48 hours in advance"). The notice runs from the
  first `maintenance.scheduled` that gave the window its current times and scope: a reminder
  (the same window re-sent) keeps it, a reschedule or a reinstatement after a cancellation
  restarts it (`maintenance_scheduled`). The monthly 4 h allowance is
  consumed by the windows' own length (the seed: "maintenance windows ... totaling no
  more than 4 hours per calendar month"), whether or not anything went down in them,
  chronologically in order of start (overlapping windows consume their union once); a
  window straddling the cap is split. A window crossing a month boundary consumes each
  month's allowance with its part in that month.
- A cancelled window does not exist; cancelled while in progress, it ends at the
  cancellation. A `maintenance.scheduled` later than the cancellation re-instates it.
- One outage_id is one interval: a recurrence should use a new outage_id (re-sending
  `outage.started` for a resolved outage does not reopen it).
- Alert keys (`outage.started.alert_key`, e.g. an Alertmanager fingerprint): one alerting
  source keeps at most one incarnation of a keyed alert at a time (Alertmanager replaces the
  old alert when it fires again), so an outage with an alert key ends, at the latest, when the
  next outage of the same key on the service starts (`effective_ends`): the resolution of
  a flap within one `group_interval` is never sent. A rule on the set of outages, computed when
  the figures are, so any arrival order gives the same intervals (decisions.md "Uptime").
- Shared services (SPEC §11): one ledger per service serves every subscriber. An outage's
  reach is the set of (`components`, `regions`) its `outage.started` events stated (a union,
  so order-independent; one statement without either list makes it the whole service); it
  counts for a subscriber that any statement covers. One known only from a customer report is
  the whole service. A window's scope is that of its winning
  `maintenance.scheduled`. `month_figures(..., scope=...)` keeps what counts for one
  subscriber (`SubscriberScope.covers`); a window outside a subscriber's scope neither
  excludes its downtime nor uses its 4 h allowance. `in_force` clips a month to the part a
  contract is in force (the month it starts): the classification is the whole month's,
  only the instants outside are left out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

UTC = timezone.utc
SCHEDULED_NOTICE = timedelta(hours=48)
MONTHLY_MAINTENANCE_ALLOWANCE = timedelta(hours=4)

SCOPES = ("all_users", "partial")
CAUSES = ("provider", "excluded")

# Reason codes handed back to the caller for the dead letter.
UNKNOWN_OUTAGE = "unknown_outage"
INVALID_WINDOW = "invalid_window"
UNKNOWN_MAINTENANCE = "unknown_maintenance"
INVALID_FIELD = "invalid_field"


def minutes(d: timedelta) -> Fraction:
    """Exact minutes of a duration (microsecond resolution)."""
    return Fraction(d // timedelta(microseconds=1), 60_000_000)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: instants must be timezone-aware")
    return t.astimezone(UTC)


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, mon = int(month[:4]), int(month[5:7])
    if len(month) != 7 or month[4] != "-" or not 1 <= mon <= 12:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


# --------------------------------------------------------------------------- records


Names = tuple[str, ...]  # sorted component or region names of a scope; None where the scope is "all"


def _names(values: Iterable[str] | None) -> Names | None:
    return None if values is None else tuple(sorted(set(values)))


Reach = tuple[Names | None, Names | None]  # what one `outage.started` says is down: (components, regions)
WHOLE: Reach = (None, None)


def _reach_key(reach: Reach) -> tuple[tuple[int, Names], ...]:
    return tuple((0, ()) if names is None else (1, names) for names in reach)


def _join_reach(a: tuple[Reach, ...], b: tuple[Reach, ...]) -> tuple[Reach, ...]:
    """Statements of what is down, joined: their union; () (the whole service) when one says so.
    Kept apart rather than merged into one list per field: `ingest` down everywhere and `search`
    down in `eu` do not make `search` down in `us` (no refund for what was not down)."""
    union = set(a) | set(b)
    return () if WHOLE in union else tuple(sorted(union, key=_reach_key))


@dataclass(frozen=True, slots=True)
class SubscriberScope:
    """What one subscriber uses of a shared service (SPEC §11): its components (None: every
    component) and its region (None: every region)."""

    components: Names | None = None
    region: str | None = None

    @classmethod
    def of(cls, components: Iterable[str] | None, region: str | None) -> "SubscriberScope":
        return cls(_names(components), region)

    @property
    def whole(self) -> bool:
        return self.components is None and self.region is None

    def reached_by(self, reach: tuple[Reach, ...]) -> bool:
        """Whether an outage with these statements (() = the whole service) counts for this subscriber."""
        return not reach or any(self.covers(components, regions) for components, regions in reach)

    def covers(self, components: Names | None, regions: Names | None) -> bool:
        """Whether an outage / window with these scope fields counts for this subscriber: its
        components are absent or intersect the subscriber's (a subscriber without a list uses
        every component), and its regions are absent or hold the subscriber's region (a
        subscriber in every region is not wholly down when some regions are: the seed's
        Downtime affects "all Customer users")."""
        if components is not None and self.components is not None and not set(components) & set(self.components):
            return False
        return regions is None or (self.region is not None and self.region in regions)


WHOLE_SERVICE = SubscriberScope()


@dataclass(frozen=True, slots=True)
class Outage:
    """What is known about one outage. `scope` is None until an `outage.started` states it."""

    outage_id: str
    started_at: datetime | None = None
    reported_at: datetime | None = None
    reported_ticket: str | None = None
    resolved_at: datetime | None = None
    scope: str | None = None
    cause: str | None = None  # None = unclassified, counted as a provider outage
    category: str | None = None
    classified_at: datetime | None = None
    classified_by: str | None = None  # event_id of the winning classification (tie-break)
    reach: tuple[Reach, ...] = ()  # SPEC §11: what its outage.started events said is down; () = all
    alert_key: str | None = None  # the alerting source's identity of the alert (the least stated)

    @property
    def start(self) -> datetime | None:
        """Start of downtime: the earlier of the internal alert and the first customer report."""
        known = [t for t in (self.started_at, self.reported_at) if t is not None]
        return min(known) if known else None

    @property
    def start_source(self) -> str:
        if self.reported_at is not None and (self.started_at is None or self.reported_at < self.started_at):
            return "customer report"
        return "internal alert"

    @property
    def effective_scope(self) -> str:
        return self.scope or "all_users"

    @property
    def excluded(self) -> bool:
        return self.cause == "excluded"

    def end(self, as_of: datetime) -> datetime:
        return self.resolved_at if self.resolved_at is not None else as_of


Mark = tuple[datetime, str]  # (occurred_at, event_id) of one `maintenance.scheduled`
# What restarted a window's notice: the mark of a `maintenance.scheduled` with other times or
# scope, or (instant, None) for a cancellation (it comes after every schedule of its instant).
Break = tuple[datetime, str | None]


def _pos(mark: Break) -> tuple[datetime, int, str]:
    """Order of schedules and cancellations of one window: (occurred_at, event_id) among
    schedules; a cancellation after every schedule of the same instant (as `cancelled`)."""
    at, event_id = mark
    return (at, 1, "") if event_id is None else (at, 0, event_id)


def _later(a: Break | None, b: Break) -> Break:
    return b if a is None or _pos(b) > _pos(a) else a


def _after(run: tuple[Mark, ...], broken_at: Break | None) -> tuple[Mark, ...]:
    return run if broken_at is None else tuple(m for m in run if _pos(m) > _pos(broken_at))


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A maintenance window, as its winning (latest) `maintenance.scheduled` says.

    Notice (`notified_at`) is measured from the first `maintenance.scheduled` of `run`: the
    schedules with the winner's times and scope since the last one that changed them or the
    last cancellation (`broken_at`). A reminder (the same window re-sent) keeps the notice; a
    reschedule restarts it. Kept as a join of the event set, so every arrival order gives the
    same window (see `maintenance_scheduled`)."""

    maintenance_id: str
    scheduled_at: datetime  # occurred_at of the winning `maintenance.scheduled`
    starts_at: datetime
    ends_at: datetime
    scheduled_by: str  # event_id of the winning `maintenance.scheduled` (tie-break)
    cancelled_at: datetime | None = None  # the latest cancellation (cancels the window if >= scheduled_at)
    components: Names | None = None  # SPEC §11: None = the whole service
    regions: Names | None = None  # None = every region
    # (occurred_at, event_id) of each schedule of the current notice, in order; the winner last
    run: tuple[Mark, ...] = ()
    broken_at: Break | None = None  # the latest schedule of other content / cancellation before the winner
    cancels: tuple[datetime, ...] = ()  # cancellations at or after `scheduled_at`, in order

    @property
    def notified_at(self) -> datetime:
        """When the customer was first told of this window as it stands (SPEC §8's notice)."""
        return self.run[0][0] if self.run else self.scheduled_at

    @property
    def content(self) -> tuple[datetime, datetime, Names | None, Names | None]:
        """What a re-sent `maintenance.scheduled` must repeat to keep the notice: times and scope."""
        return self.starts_at, self.ends_at, self.components, self.regions

    @property
    def notice(self) -> timedelta:
        return self.starts_at - self.notified_at

    @property
    def qualifies(self) -> bool:
        """Notified at least 48 h ahead (SPEC §8)."""
        return self.notice >= SCHEDULED_NOTICE

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None and self.cancelled_at >= self.scheduled_at

    def effective(self) -> tuple[datetime, datetime] | None:
        """The interval the window really occupies, None when cancelled before it began."""
        if not self.cancelled:
            return self.starts_at, self.ends_at
        assert self.cancelled_at is not None
        if self.cancelled_at <= self.starts_at:
            return None
        return self.starts_at, min(self.ends_at, self.cancelled_at)


@dataclass(frozen=True, slots=True)
class EmittedClose:
    """The last month close emitted for (customer, month): its revision and a fingerprint of its content."""

    customer_id: str
    month: str
    revision: int
    fingerprint: str
    refund_revision: int = 0  # the revision of the refund.eligible standing for the month (0: none)
    refund_amount: str = "0"  # its refund_amount: what a later revision or a withdrawal supersedes


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Everything the ledger knows about one service. Never mutated: the fold copies."""

    service_id: str
    outages: Mapping[str, Outage] = field(default_factory=dict)
    maintenance: Mapping[str, MaintenanceWindow] = field(default_factory=dict)
    emitted: Mapping[tuple[str, str], EmittedClose] = field(default_factory=dict)
    # SPEC §10 conflicting duplicates: per record (`record_key`), the (id digest, content digest)
    # of every event applied to it. Not part of the figures; pruned with the record.
    applied: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    # --- serialisation (compact JSON; instants as UTC ISO strings) ---
    def to_json(self) -> str:
        def ts(t: datetime | None) -> str | None:
            return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")

        doc = {
            "s": self.service_id,
            "o": [
                [o.outage_id, ts(o.started_at), ts(o.reported_at), o.reported_ticket, ts(o.resolved_at),
                 o.scope, o.cause, o.category, ts(o.classified_at), o.classified_by,
                 *([[list(r) for r in o.reach]] if o.reach or o.alert_key else []),
                 *([o.alert_key] if o.alert_key else [])]
                for o in sorted(self.outages.values(), key=lambda o: o.outage_id)
            ],
            "m": [
                [w.maintenance_id, ts(w.scheduled_at), ts(w.starts_at), ts(w.ends_at), w.scheduled_by,
                 ts(w.cancelled_at), *_window_tail(w, ts)]
                for w in sorted(self.maintenance.values(), key=lambda w: w.maintenance_id)
            ],
            "e": [[e.customer_id, e.month, e.revision, e.fingerprint,
                   *([e.refund_revision, e.refund_amount] if e.refund_revision else [])]
                  for _, e in sorted(self.emitted.items())],
        }
        if self.applied:  # absent in rows written before SPEC §10's memory (and when empty)
            doc["a"] = [[key, [list(pair) for pair in pairs]] for key, pairs in sorted(self.applied.items())]
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ServiceState":
        doc = json.loads(text)

        def ts(s: str | None) -> datetime | None:
            return None if s is None else datetime.fromisoformat(s).astimezone(UTC)

        # Rows written before SPEC §11 end before the scope fields (whole service, every region).
        outages = {}
        # Rows of outages without an alert key end before it (as they were written before it existed).
        for oid, st, rp, tk, rs, scope, cause, cat, cat_at, cat_by, *tail in doc["o"]:
            outages[oid] = Outage(oid, ts(st), ts(rp), tk, ts(rs), scope, cause, cat, ts(cat_at), cat_by,
                                  tuple(_scope_from_json(r) for r in tail[0]) if tail else (),
                                  tail[1] if len(tail) > 1 else None)
        windows = {}
        for mid, at, sa, ea, by, ca, *tail in doc["m"]:
            # [components, regions] when scoped, and then the notice's run when not the row's own
            where, notice = (tail[:2], tail[2]) if len(tail) == 3 else (tail, None)
            scheduled_at, cancelled_at = ts(at), ts(ca)
            assert scheduled_at is not None
            if notice is None:
                run, broken_at, cancels = _plain_notice(scheduled_at, by, cancelled_at)
            else:
                run = tuple((ts(t), e) for t, e in notice[0])  # type: ignore[misc]
                broken_at = None if notice[1] is None else (ts(notice[1][0]), notice[1][1])  # type: ignore[assignment]
                cancels = tuple(ts(t) for t in notice[2])  # type: ignore[misc]
            windows[mid] = MaintenanceWindow(mid, scheduled_at, ts(sa), ts(ea), by, cancelled_at,  # type: ignore[arg-type]
                                             *_scope_from_json(where), run=run, broken_at=broken_at, cancels=cancels)
        # 4 fields before refund_revision, 5 before refund_amount (a refund recorded then supersedes "0")
        emitted = {(row[0], row[1]): EmittedClose(*row) for row in doc["e"]}
        applied = {key: tuple((e, c) for e, c in pairs) for key, pairs in doc.get("a", ())}
        return cls(doc["s"], outages, windows, emitted, applied)


def _scope_json(components: Names | None, regions: Names | None) -> list[Any]:
    """A record's scope fields for its JSON row: nothing for the whole service (rows stay as before)."""
    return [] if components is None and regions is None else [components, regions]


def _plain_notice(scheduled_at: datetime, scheduled_by: str, cancelled_at: datetime | None
                  ) -> tuple[tuple[Mark, ...], Break | None, tuple[datetime, ...]]:
    """The notice fields of a window known from one `maintenance.scheduled` (and its latest
    cancellation): what a state row without them means (rows written before they existed, and
    every window never re-sent, so those rows stay as they were)."""
    if cancelled_at is None:
        return ((scheduled_at, scheduled_by),), None, ()
    if cancelled_at >= scheduled_at:
        return ((scheduled_at, scheduled_by),), None, (cancelled_at,)
    return ((scheduled_at, scheduled_by),), (cancelled_at, None), ()


def _window_tail(w: MaintenanceWindow, ts: Callable[[datetime | None], str | None]) -> list[Any]:
    """A window's JSON row after its cancellation: the scope fields (nothing for the whole service),
    then, only when they are not `_plain_notice`'s, the notice's run, `broken_at` and `cancels`."""
    if (w.run, w.broken_at, w.cancels) == _plain_notice(w.scheduled_at, w.scheduled_by, w.cancelled_at):
        return _scope_json(w.components, w.regions)
    notice = [[[ts(t), e] for t, e in w.run],
              None if w.broken_at is None else [ts(w.broken_at[0]), w.broken_at[1]],
              [ts(t) for t in w.cancels]]
    return [w.components, w.regions, notice]


def _scope_from_json(where: list[Any]) -> tuple[Names | None, Names | None]:
    if not where:
        return None, None
    components, regions = where
    return (None if components is None else tuple(components)), (None if regions is None else tuple(regions))


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of folding one event.

    `error` is `(reason code, message)` for the caller to dead-letter (state unchanged).
    `affected_from` is the earliest instant whose figures may have changed (None when the
    event changed nothing, e.g. a duplicate): every closed month ending after it must be
    recomputed (see `policies.uptime.months_to_revise`).
    """

    state: ServiceState
    error: tuple[str, str] | None = None
    affected_from: datetime | None = None


# --------------------------------------------------------------------------- fold


def new_state(service_id: str) -> ServiceState:
    return ServiceState(service_id)


def _earliest(*ts: datetime | None) -> datetime | None:
    known = [t for t in ts if t is not None]
    return min(known) if known else None


def _with_outage(state: ServiceState, old: Outage | None, new: Outage) -> Applied:
    if old == new:
        return Applied(state)
    outages = dict(state.outages)
    outages[new.outage_id] = new
    affected = _earliest(old.start if old else None, new.start)
    return Applied(replace(state, outages=outages), affected_from=affected)


def _with_window(state: ServiceState, old: MaintenanceWindow | None, new: MaintenanceWindow) -> Applied:
    if old == new:
        return Applied(state)
    windows = dict(state.maintenance)
    windows[new.maintenance_id] = new
    affected = _earliest(old.starts_at if old else None, new.starts_at)
    return Applied(replace(state, maintenance=windows), affected_from=affected)


def outage_started(state: ServiceState, *, event_id: str, occurred_at: datetime, outage_id: str,
                   scope: str | None = "all_users", components: Iterable[str] | None = None,
                   regions: Iterable[str] | None = None, alert_key: str | None = None) -> Applied:
    """`outage.started`: the provider's internal alert at `occurred_at`, for `components` in
    `regions` (None: the whole service, every region). `alert_key`: the alerting source's
    identity of the alert; the outage ends at the latest when the next outage of the same key
    starts (`effective_ends`). Two statements of different keys keep the least (a join)."""
    scope = scope or "all_users"
    if scope not in SCOPES:
        return Applied(state, (INVALID_FIELD, f"outage {outage_id}: scope must be one of {SCOPES}, got {scope!r}"))
    at = _utc(occurred_at)
    old = state.outages.get(outage_id)
    base = old or Outage(outage_id)
    merged_scope = "all_users" if "all_users" in (base.scope, scope) else "partial"
    reach = _join_reach((), ((_names(components), _names(regions)),))
    if base.started_at is not None:  # an earlier outage.started stated what is down: join them
        reach = _join_reach(base.reach or (WHOLE,), reach or (WHOLE,))
    key = alert_key if base.alert_key is None or (alert_key is not None and alert_key < base.alert_key) \
        else base.alert_key
    new = replace(base, started_at=_earliest(base.started_at, at), scope=merged_scope, reach=reach, alert_key=key)
    return _with_outage(state, old, new)


def outage_reported(state: ServiceState, *, event_id: str, occurred_at: datetime, outage_id: str,
                    ticket_id: str | None = None) -> Applied:
    """`outage.reported`: a customer ticket with sufficient detail, reported at `occurred_at`."""
    at = _utc(occurred_at)
    old = state.outages.get(outage_id)
    base = old or Outage(outage_id)
    if base.reported_at is None or (at, ticket_id or "") < (base.reported_at, base.reported_ticket or ""):
        new = replace(base, reported_at=at, reported_ticket=ticket_id)
    else:
        new = base
    return _with_outage(state, old, new)


def outage_resolved(state: ServiceState, *, event_id: str, occurred_at: datetime, outage_id: str) -> Applied:
    """`outage.resolved`: restoration at `occurred_at` (the latest resolution wins)."""
    old = state.outages.get(outage_id)
    if old is None:
        return Applied(state, (UNKNOWN_OUTAGE, f"outage.resolved for outage {outage_id!r} never started nor reported"))
    at = _utc(occurred_at)
    resolved = at if old.resolved_at is None else max(old.resolved_at, at)
    return _with_outage(state, old, replace(old, resolved_at=resolved))


def outage_classified(state: ServiceState, *, event_id: str, occurred_at: datetime, outage_id: str,
                      cause: str, category: str | None = None) -> Applied:
    """`outage.classified`: the latest classification (by occurred_at, then event_id) wins."""
    if cause not in CAUSES:
        return Applied(state, (INVALID_FIELD, f"outage {outage_id}: cause must be one of {CAUSES}, got {cause!r}"))
    old = state.outages.get(outage_id)
    if old is None:
        return Applied(state, (UNKNOWN_OUTAGE, f"outage.classified for outage {outage_id!r} never started nor reported"))
    at = _utc(occurred_at)
    if old.classified_at is not None and (at, event_id) <= (old.classified_at, old.classified_by or ""):
        return Applied(state)
    new = replace(old, cause=cause, category=category, classified_at=at, classified_by=event_id)
    return _with_outage(state, old, new)


def maintenance_scheduled(state: ServiceState, *, event_id: str, occurred_at: datetime, maintenance_id: str,
                          starts_at: datetime, ends_at: datetime, components: Iterable[str] | None = None,
                          regions: Iterable[str] | None = None) -> Applied:
    """`maintenance.scheduled`: notified at `occurred_at`; a later one for the same id reschedules it.

    The latest (by `occurred_at`, `event_id`) gives the window's times and scope. Notice (SPEC §8,
    the Vectorize seed: "maintenance windows notified at least 48 hours in advance") is measured
    from the earliest schedule of the run that ends with the latest: the schedules with the same
    times and scope, back to the last one with other times or scope or the last cancellation
    before the latest (`broken_at`). So a reminder (the same window re-sent, a new event_id) keeps
    the notice the customer already had; a reschedule, or a reinstatement after a cancellation,
    restarts it from that event (decisions.md "Uptime"). The window keeps the run's marks and
    `broken_at`, so a late event finds its place: every arrival order gives the same window.
    """
    starts, ends, at = _utc(starts_at), _utc(ends_at), _utc(occurred_at)
    if ends <= starts:
        return Applied(state, (INVALID_WINDOW, f"maintenance {maintenance_id!r}: ends_at {ends.isoformat()} "
                                               f"is not after starts_at {starts.isoformat()}"))
    mark: Mark = (at, event_id)
    comps, regs = _names(components), _names(regions)
    old = state.maintenance.get(maintenance_id)
    if old is None:
        return _with_window(state, None, MaintenanceWindow(maintenance_id, at, starts, ends, event_id, None,
                                                           comps, regs, run=(mark,)))
    if mark in old.run or (old.broken_at is not None and _pos(mark) <= _pos(old.broken_at)):
        return Applied(state)  # applied already, or before what restarted the notice: changes nothing
    same = (starts, ends, comps, regs) == old.content
    if mark > (old.scheduled_at, old.scheduled_by):  # the new winner
        broken = old.broken_at
        passed = [c for c in old.cancels if c < at]  # cancelled the old winner, before this one
        if passed:
            broken = _later(broken, (passed[-1], None))
        if not same:  # a reschedule: the old winner (the latest of the run) had other times or scope
            broken = _later(broken, old.run[-1])
        new = MaintenanceWindow(maintenance_id, at, starts, ends, event_id, old.cancelled_at, comps, regs,
                                run=(*_after(old.run, broken), mark), broken_at=broken,
                                cancels=tuple(c for c in old.cancels if c >= at))
    elif same:  # an earlier schedule of the same window, arrived late: part of the run
        new = replace(old, run=tuple(sorted((*old.run, mark))))
    else:  # an earlier schedule with other times or scope, arrived late: the notice restarts after it
        new = replace(old, run=_after(old.run, mark), broken_at=mark)
    return _with_window(state, old, new)


def maintenance_cancelled(state: ServiceState, *, event_id: str, occurred_at: datetime,
                          maintenance_id: str) -> Applied:
    """`maintenance.cancelled` at `occurred_at` (the latest cancellation is kept). One at or after
    the winning schedule cancels the window; an earlier one (a reinstated window) restarts its notice."""
    old = state.maintenance.get(maintenance_id)
    if old is None:
        return Applied(state, (UNKNOWN_MAINTENANCE, f"maintenance.cancelled for unknown window {maintenance_id!r}"))
    at = _utc(occurred_at)
    cancelled = at if old.cancelled_at is None else max(old.cancelled_at, at)
    if at >= old.scheduled_at:
        new = replace(old, cancelled_at=cancelled, cancels=tuple(sorted({*old.cancels, at})))
    elif old.broken_at is None or _pos((at, None)) > _pos(old.broken_at):
        new = replace(old, cancelled_at=cancelled, run=_after(old.run, (at, None)), broken_at=(at, None))
    else:
        new = replace(old, cancelled_at=cancelled)
    return _with_window(state, old, new)


_FOLD: dict[str, tuple[Callable[..., Applied], tuple[str, ...]]] = {
    "outage.started": (outage_started, ("outage_id", "scope", "components", "regions", "alert_key")),
    "outage.reported": (outage_reported, ("outage_id", "ticket_id")),
    "outage.resolved": (outage_resolved, ("outage_id",)),
    "outage.classified": (outage_classified, ("outage_id", "cause", "category")),
    "maintenance.scheduled": (maintenance_scheduled, ("maintenance_id", "starts_at", "ends_at", "components",
                                                      "regions")),
    "maintenance.cancelled": (maintenance_cancelled, ("maintenance_id",)),
}
MONITORING_TYPES = frozenset(_FOLD)


def record_key(event_type: str, fields: Mapping[str, Any]) -> str:
    """The record (outage or window) a monitoring event is about: the key of its memory of
    applied events in `ServiceState.applied`."""
    if event_type.startswith("maintenance."):
        return "m:" + str(fields["maintenance_id"])
    return "o:" + str(fields["outage_id"])


def applied_content(state: ServiceState | None, key: str, event_digest: int) -> int | None:
    """The content digest of the event with id digest `event_digest` applied to record `key`,
    None when no such event was applied (or it was applied before the memory existed)."""
    if state is None:
        return None
    for digest, content in state.applied.get(key, ()):
        if digest == event_digest:
            return content
    return None


def remember(state: ServiceState, key: str, event_digest: int, content_digest: int) -> ServiceState:
    """`state` that remembers an applied event (id and content digests) of record `key`."""
    pairs = state.applied.get(key, ())
    if any(digest == event_digest for digest, _ in pairs):
        return state
    applied = dict(state.applied)
    applied[key] = (*pairs, (event_digest, content_digest))
    return replace(state, applied=applied)


def needs_entity(state: ServiceState | None, event_type: str, fields: Mapping[str, Any]) -> str | None:
    """The id of the outage / window `event_type` needs but `state` does not hold yet (SPEC §10:
    the event is parked until it appears), None when the event can apply now."""
    if event_type in ("outage.resolved", "outage.classified"):
        oid = fields["outage_id"]
        return None if state is not None and oid in state.outages else oid
    if event_type == "maintenance.cancelled":
        mid = fields["maintenance_id"]
        return None if state is not None and mid in state.maintenance else mid
    return None


def apply_event(state: ServiceState, event_type: str, fields: Mapping[str, Any]) -> Applied:
    """Fold a monitoring event given as plain values (e.g. `model.model_dump()`).

    `fields` must hold `event_id`, `occurred_at` (aware datetime) and the type's own fields;
    extra keys are ignored.
    """
    fn, names = _FOLD[event_type]
    kwargs = {n: fields[n] for n in names if n in fields}
    return fn(state, event_id=fields["event_id"], occurred_at=fields["occurred_at"], **kwargs)


# --------------------------------------------------------------------------- figures


def superseded_at(state: ServiceState) -> dict[str, tuple[datetime, str]]:
    """Per outage with an alert key that a later outage of the same key follows: (that one's
    start, its id). The outage ends there at the latest (the source keeps one incarnation of a
    keyed alert: a new one proves the old one over). Only `outage.started` instants count (a
    customer report says nothing about the alert). A function of the set of outages: every
    arrival order gives the same ends."""
    by_key: dict[str, list[tuple[datetime, str]]] = {}
    for o in state.outages.values():
        if o.alert_key is not None and o.started_at is not None:
            by_key.setdefault(o.alert_key, []).append((o.started_at, o.outage_id))
    out: dict[str, tuple[datetime, str]] = {}
    for starts in by_key.values():
        if len(starts) < 2:
            continue
        starts.sort()
        # From the latest back: each outage is followed by the first of the next later start (the
        # one visited last among those of that start), in one pass (a flapping alert has many).
        following: tuple[datetime, str] | None = None
        previous: tuple[datetime, str] | None = None
        for entry in reversed(starts):
            if previous is not None and previous[0] > entry[0]:
                following = previous
            if following is not None:
                out[entry[1]] = following
            previous = entry
    return out


def effective_end(o: Outage, as_of: datetime, superseded: Mapping[str, tuple[datetime, str]]) -> datetime:
    """Where outage `o` ends: its resolution, or `as_of` when unresolved, and at the latest where
    the next outage of its alert key starts."""
    end = o.end(as_of)
    after = superseded.get(o.outage_id)
    return end if after is None or after[0] >= end else after[0]


@dataclass(frozen=True, slots=True)
class Segment:
    """A maximal stretch of the month with one classification and the same covering ids."""

    start: datetime
    end: datetime
    kind: str  # 'downtime' | 'maintenance' | 'excluded'
    outage_ids: tuple[str, ...]
    maintenance_ids: tuple[str, ...] = ()

    @property
    def minutes(self) -> Fraction:
        return minutes(self.end - self.start)


@dataclass(frozen=True, slots=True)
class OutageView:
    """One outage as seen from one month (clipped to it), for explanations."""

    outage: Outage
    start: datetime  # unclipped start of downtime
    end: datetime  # unclipped end (as_of when unresolved)
    open: bool
    in_month_start: datetime
    in_month_end: datetime
    status: str  # 'counted' | 'excluded' | 'partial' | 'out_of_scope' (SPEC §11: not the subscriber's)
    ended_by: str | None = None  # the outage of the same alert key whose start ended this one (no resolution)

    @property
    def in_month_minutes(self) -> Fraction:
        return minutes(self.in_month_end - self.in_month_start)


@dataclass(frozen=True, slots=True)
class WindowView:
    """One maintenance window in one month: which part of it is Scheduled Maintenance."""

    window: MaintenanceWindow
    in_month_start: datetime
    in_month_end: datetime
    scheduled: tuple[tuple[datetime, datetime], ...]  # parts inside the 4 h allowance (excl. overlaps)
    reason: str  # why (not) scheduled

    @property
    def scheduled_minutes(self) -> Fraction:
        return sum((minutes(e - s) for s, e in self.scheduled), Fraction(0))


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """Exact figures of one calendar month (UTC) as known at `as_of`, for one subscriber's scope.
    `total_minutes` and the sums cover `[in_force_start, in_force_end)`: the whole month, or the
    part a contract starting in it is in force (SPEC §11)."""

    month: str
    start: datetime
    end: datetime
    as_of: datetime
    total_minutes: Fraction
    downtime_minutes: Fraction
    excluded_minutes: Fraction
    maintenance_minutes: Fraction
    segments: tuple[Segment, ...]
    outages: tuple[OutageView, ...]
    windows: tuple[WindowView, ...]
    in_force_start: datetime | None = None  # None: the month's start
    in_force_end: datetime | None = None  # None: the month's end

    @property
    def prorated(self) -> bool:
        """Whether the figures cover only part of the month (the fee is prorated alike)."""
        return self.in_force_start not in (None, self.start) or self.in_force_end not in (None, self.end)


def scheduled_maintenance(windows: Iterable[MaintenanceWindow], month_start: datetime,
                          month_end: datetime) -> tuple[WindowView, ...]:
    """Which parts of the month's windows are Scheduled Maintenance (48 h notice, 4 h a month, by start)."""
    clipped = []
    for w in windows:
        eff = w.effective()
        if eff is None:
            continue
        s, e = max(eff[0], month_start), min(eff[1], month_end)
        if s < e:
            clipped.append((s, e, w))
    clipped.sort(key=lambda x: (x[0], x[1], x[2].maintenance_id))
    remaining = MONTHLY_MAINTENANCE_ALLOWANCE
    covered_until = month_start
    views = []
    for s, e, w in clipped:
        if not w.qualifies:
            hours = Fraction(minutes(w.notice)) / 60
            views.append(WindowView(w, s, e, (), f"notified {_hours(hours)} h before start (< 48 h): not excluded"))
            continue
        new_start = max(s, covered_until)
        parts: list[tuple[datetime, datetime]] = []
        if new_start < e and remaining > timedelta(0):
            part_end = min(e, new_start + remaining)
            parts.append((new_start, part_end))
            remaining -= part_end - new_start
            covered_until = part_end
        got = sum((p[1] - p[0] for p in parts), timedelta(0))
        if new_start >= e:
            reason = "overlaps an earlier scheduled window (counted once)"
        elif got == e - new_start and new_start == s:
            reason = "scheduled maintenance"
        elif got == timedelta(0):
            reason = "monthly 4 h allowance already used: not excluded"
        elif got < e - new_start:
            reason = "partly beyond the monthly 4 h allowance: the rest is not excluded"
        else:
            reason = "scheduled maintenance (start overlaps an earlier window)"
        views.append(WindowView(w, s, e, tuple(parts), reason))
    return tuple(views)


def _hours(h: Fraction) -> str:
    return str(h.numerator) if h.denominator == 1 else f"{float(h):.2f}"


def month_figures(state: ServiceState, month: str, as_of: datetime, scope: SubscriberScope | None = None,
                  in_force: tuple[datetime | None, datetime | None] | None = None) -> MonthFigures:
    """Figures of `month` (YYYY-MM, UTC): unresolved outages count until `as_of`.

    For a month close pass the month's end (or anything later); for running figures, `now`.
    `scope`: one subscriber's (outages and windows outside it are left out); None counts
    every outage and window of the service. `in_force`: the contract's [from, until) (either
    None: unbounded); only that part of the month counts, `total_minutes` included.
    """
    m_start, m_end = _month_bounds(month)
    as_of = _utc(as_of)
    maintenance: Iterable[MaintenanceWindow] = state.maintenance.values()
    if scope is not None:
        maintenance = [w for w in maintenance if scope.covers(w.components, w.regions)]
    windows = scheduled_maintenance(maintenance, m_start, m_end)

    views: list[OutageView] = []
    counted: list[tuple[datetime, datetime, Outage]] = []  # all_users outages clipped to the month
    superseded = superseded_at(state)
    for o in sorted(state.outages.values(), key=lambda o: (o.start or m_end, o.outage_id)):
        start = o.start
        if start is None:
            continue
        end = effective_end(o, as_of, superseded)
        ended_by = superseded.get(o.outage_id)
        ended_by_id = ended_by[1] if ended_by is not None and end < o.end(as_of) else None
        s, e = max(start, m_start), min(end, m_end)
        if s >= e:
            continue
        if o.effective_scope == "partial":
            status = "partial"
        elif scope is not None and not scope.reached_by(o.reach):
            status = "out_of_scope"
        else:
            status = "excluded" if o.excluded else "counted"
            counted.append((s, e, o))
        views.append(OutageView(o, start, end, o.resolved_at is None and ended_by_id is None, s, e, status,
                                ended_by_id))

    # Sweep over the boundary points, keeping the outages and maintenance parts active
    # between them: O(k log k) for k intervals (a rescan per segment would be O(k²)).
    starts: dict[datetime, list[tuple[str, int]]] = {}
    ends: dict[datetime, list[tuple[str, int]]] = {}
    maint_parts = [(s, e, v.window.maintenance_id) for v in windows for s, e in v.scheduled if s < e]
    for i, (s, e, _) in enumerate(counted):
        starts.setdefault(s, []).append(("o", i))
        ends.setdefault(e, []).append(("o", i))
    for i, (s, e, _) in enumerate(maint_parts):
        starts.setdefault(s, []).append(("m", i))
        ends.setdefault(e, []).append(("m", i))
    points = sorted(starts.keys() | ends.keys())
    active_outages: set[int] = set()
    active_parts: set[int] = set()
    raw: list[Segment] = []
    for a, b in zip(points, points[1:]):
        for kind, i in ends.get(a, ()):
            (active_outages if kind == "o" else active_parts).discard(i)
        for kind, i in starts.get(a, ()):
            (active_outages if kind == "o" else active_parts).add(i)
        if not active_outages:
            continue
        covering = [counted[i][2] for i in sorted(active_outages)]  # in the order of `counted`
        provider = tuple(o.outage_id for o in covering if not o.excluded)
        in_maint = tuple(sorted({maint_parts[i][2] for i in active_parts}))
        if provider:
            kind = "maintenance" if in_maint else "downtime"
            raw.append(Segment(a, b, kind, provider, in_maint if in_maint else ()))
        else:
            raw.append(Segment(a, b, "excluded", tuple(o.outage_id for o in covering)))
    segments: list[Segment] = []
    for seg in raw:
        last = segments[-1] if segments else None
        if (last is not None and last.end == seg.start and last.kind == seg.kind
                and last.outage_ids == seg.outage_ids and last.maintenance_ids == seg.maintenance_ids):
            segments[-1] = replace(last, end=seg.end)
        else:
            segments.append(seg)

    counted_from, counted_until = m_start, m_end
    if in_force is not None:
        counted_from = max(m_start, in_force[0]) if in_force[0] is not None else m_start
        counted_until = min(m_end, in_force[1]) if in_force[1] is not None else m_end
        counted_until = max(counted_from, counted_until)
        if (counted_from, counted_until) != (m_start, m_end):
            segments = [replace(seg, start=max(seg.start, counted_from), end=min(seg.end, counted_until))
                        for seg in segments if seg.start < counted_until and seg.end > counted_from]

    def total(kind: str) -> Fraction:
        return sum((s.minutes for s in segments if s.kind == kind), Fraction(0))

    return MonthFigures(
        month=month, start=m_start, end=m_end, as_of=as_of,
        total_minutes=minutes(counted_until - counted_from),
        downtime_minutes=total("downtime"),
        excluded_minutes=total("excluded"),
        maintenance_minutes=total("maintenance"),
        segments=tuple(segments), outages=tuple(views), windows=windows,
        in_force_start=counted_from, in_force_end=counted_until,
    )


def busy_spans(state: ServiceState, as_of: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) of every outage (unresolved: until `as_of`) and maintenance window: the
    instants whose months have something to close."""
    superseded = superseded_at(state)
    spans = [(o.start, effective_end(o, as_of, superseded)) for o in state.outages.values() if o.start is not None]
    spans += [(w.starts_at, w.ends_at) for w in state.maintenance.values()]
    return sorted(s for s in spans if s[0] is not None and s[1] > s[0])


def prune(state: ServiceState, keep_from_month: str) -> ServiceState:
    """Forget what can no longer change months from `keep_from_month` on (bounded state).

    Drops resolved outages restored before that month starts, windows that ended before it,
    and the emitted-close records of earlier months (late events for those months are then
    no longer revised; a late `outage.resolved` for a dropped outage becomes `unknown_outage`).
    Call it with a month whose claim deadline has long passed.
    """
    cut, _ = _month_bounds(keep_from_month)
    # An outage ended by the next of its alert key goes when that end is before the cut: the
    # next one starts before its own end, so it is never dropped while the earlier one stays.
    superseded = superseded_at(state)
    never = datetime.max.replace(tzinfo=UTC)
    outages = {k: o for k, o in state.outages.items() if effective_end(o, never, superseded) > cut}
    windows = {k: w for k, w in state.maintenance.items() if w.ends_at > cut}
    emitted = {k: e for k, e in state.emitted.items() if _month_bounds(e.month)[1] > cut}
    applied = {k: pairs for k, pairs in state.applied.items()
               if (outages if k.startswith("o:") else windows).get(k[2:]) is not None}
    return replace(state, outages=outages, maintenance=windows, emitted=emitted, applied=applied)
