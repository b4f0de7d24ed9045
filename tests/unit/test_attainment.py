"""Quarterly attainment (Rescale): the book's persisted size, idempotency, old snapshots.

Contract `rs` of `tests/support.py`: Rescale production, urgent first response 1 business
hour (24x7 for urgent), high 4 hours; quarters of the UTC calendar year, reported at the
quarter's end + 1 h once no ticket of the quarter still waits for its first response, and at
the latest at the quarter's end + 7 days (`quarter_outcome_wait`), without the tickets still waiting.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from policies.attainment import BREACH, PARTIAL, WAITING, AttainmentBook, add_partial
from policies.outputs import Output
from policies.processor import MemoryStore, Processor, Settings
from policies.tickets import TicketState
from tests.support import CATALOG, Run, at, closed, contracts, opened, reply, status


def reports(run: Run) -> list[tuple[str, int, int, str | None, str]]:
    return [(o["quarter"], o["measured"], o["met"], o["attainment_percent"], o["occurred_at"])
            for o in run.other_outputs if o["type"] == "sla.attainment_reported"]


def open_many(run: Run, n: int, prefix: str, t: str) -> None:
    run.feed(*[opened(f"{prefix}{i}", "rs", "high", t) for i in range(n)])


# ====================================================================== snapshot size


def test_snapshot_size_does_not_grow_with_open_tickets():
    small, large = Run("rs", thresholds=()), Run("rs", thresholds=())
    open_many(small, 10, "T", "2026-02-03T10:00:00Z")
    open_many(large, 5000, "T", "2026-02-03T10:00:00Z")
    a, b = small.proc.snapshot(), large.proc.snapshot()
    # Same shape; only the count's digits differ ("10" vs "5000").
    assert json.loads(a)["attainment"]["waiting"] == [["rs", "2026-Q1", 10]]
    assert json.loads(b)["attainment"]["waiting"] == [["rs", "2026-Q1", 5000]]
    assert len(b) - len(a) == 2
    assert len(b) < 300
    # The per-ticket part is on the ticket itself (persisted with it).
    assert large.proc.store.ticket("T42").attainment == WAITING
    assert json.loads(large.proc.store.ticket("T42").to_json())["w"] == WAITING


def test_snapshot_size_does_not_grow_with_breached_tickets():
    # Breaches counted and not yet reported were kept per breach id in the book; now a bit on the ticket.
    small, large = Run("rs", thresholds=()), Run("rs", thresholds=())
    open_many(small, 3, "T", "2026-02-03T10:00:00Z")
    open_many(large, 3000, "T", "2026-02-03T10:00:00Z")
    for run in (small, large):
        run.until("2026-02-03T15:00:00Z")  # high: due 14:00Z, every ticket breached
    a, b = json.loads(small.proc.snapshot()), json.loads(large.proc.snapshot())
    assert a["attainment"]["waiting"] == b["attainment"]["waiting"] == []
    assert b["attainment"]["measured"] == [["rs", "2026-Q1", 3000]]
    assert len(json.dumps(b)) - len(json.dumps(a)) == 3
    assert large.proc.store.ticket("T7").attainment == BREACH


# ====================================================================== idempotency


def _scenario(run: Run, twice: bool) -> None:
    # Q1: T1 answered on time (met), T2 breached, T3 closed before any reply (not measured),
    # T4 answered late after a breach whose retraction comes with a late on-time reply.
    events = [
        opened("T1", "rs", "urgent", "2026-03-30T10:00:00Z"),
        opened("T2", "rs", "urgent", "2026-03-30T10:00:00Z"),
        opened("T3", "rs", "urgent", "2026-03-30T10:00:00Z"),
        opened("T4", "rs", "urgent", "2026-03-30T10:00:00Z"),
        reply("T1", "2026-03-30T10:20:00Z", event_id="r-T1"),
        closed("T3", "2026-03-30T10:30:00Z", event_id="c-T3"),
        reply("T2", "2026-03-30T12:00:00Z", event_id="r-T2"),       # after T2's and T4's breach (11:00Z)
        reply("T4", "2026-03-30T10:50:00Z", event_id="r-T4"),       # late: T4 was answered on time
    ]
    for ev in events:
        run.feed(ev)
        if twice:
            run.feed(ev)  # redelivered (at-least-once): ignored by event id
    run.until("2026-04-01T02:00:00Z")


def test_a_replayed_event_does_not_count_twice():
    once, twice = Run("rs", thresholds=()), Run("rs", thresholds=())
    _scenario(once, twice=False)
    _scenario(twice, twice=True)
    # T1 met, T2 breached, T4 met (its breach retracted), T3 not measured: 2 of 3.
    assert reports(once) == [("2026-Q1", 3, 2, "66.67", "2026-04-01T01:00:00Z")]
    assert reports(twice) == reports(once)
    assert twice.outputs == once.outputs
    assert twice.proc.snapshot() == once.proc.snapshot()


def test_book_calls_are_idempotent_per_ticket():
    book = AttainmentBook()
    state = TicketState("T1", "rs", "v", "production", at("2026-02-03T10:00:00Z"))
    book.opened(state)
    book.opened(state)
    assert book.waiting == {("rs", "2026-Q1"): 1}
    book.stopped(state)
    book.stopped(state)
    assert book.waiting == {}
    assert state.attainment == 0


def test_a_waiting_ticket_holds_its_quarter_until_it_is_answered():
    run = Run("rs", thresholds=())
    run.feed(opened("T1", "rs", "high", "2026-03-31T23:00:00Z"))   # due 2026-04-01T03:00Z
    run.until("2026-04-01T02:00:00Z")
    assert reports(run) == []                                     # T1 still waits
    run.feed(reply("T1", "2026-04-01T02:30:00Z"))
    run.until("2026-04-01T02:31:00Z")
    # Dated by its last outcome (after the quarter's end + 1 h), not by when it was noticed.
    assert reports(run) == [("2026-Q1", 1, 1, "100.00", "2026-04-01T02:30:00Z")]


def test_a_retraction_after_the_quarter_was_reported_changes_no_count_of_it():
    run = Run("rs", thresholds=())
    run.feed(opened("T1", "rs", "urgent", "2026-03-31T20:00:00Z"))    # breached 21:00Z
    run.until("2026-04-01T03:00:00Z")
    assert reports(run) == [("2026-Q1", 1, 0, "0.00", "2026-04-01T01:00:00Z")]
    run.feed(reply("T1", "2026-03-31T20:30:00Z"))                     # late: retraction + met
    assert [o["type"] for o in run.outputs[-2:]] == ["sla.met", "sla.breach_retracted"]
    book = run.proc.attainment
    # Nothing counts for the reported quarter any more: the retraction takes nothing off, and the
    # late `sla.met` is not kept (it was kept before, in counts no report would ever read).
    assert (book.measured, book.met, book.waiting) == ({}, {}, {})
    assert [r[0] for r in reports(run)] == ["2026-Q1"]


# ====================================================================== persistence


def _restored(run: Run, snapshot: str, strip_marks: bool = False) -> Run:
    """A new processor from `run`'s snapshot and ticket states (as the stream worker restarts)."""
    new = Run("rs", thresholds=())
    new.proc = Processor(CATALOG, MemoryStore(), Settings(at_risk_thresholds=()))
    for c in contracts("rs"):
        new.proc.install(c)
    for ticket_id, state in run.proc.store.tickets.items():
        data = json.loads(state.to_json())
        if strip_marks:
            data.pop("w", None)  # ticket states written before the marks existed
        new.proc.store.save_ticket(TicketState.from_json(json.dumps(data)))
    new.proc.restore(snapshot)
    return new


def _first_half(run: Run) -> None:
    run.feed(opened("T1", "rs", "urgent", "2026-03-30T10:00:00Z"),
             opened("T2", "rs", "urgent", "2026-03-30T10:00:00Z"),
             opened("T3", "rs", "urgent", "2026-03-30T10:00:00Z"),
             opened("T4", "rs", "high", "2026-03-31T22:00:00Z"))  # due 04-01T02:00Z
    # T4's open moved time on: T1..T3 breached their first response at 03-30T11:00Z (counted)
    # and their resolution at 18:00Z (not counted).


def _second_half(run: Run) -> None:
    run.feed(reply("T1", "2026-03-30T10:40:00Z"))   # late: T1's breach retracted, met
    run.feed(reply("T2", "2026-03-30T12:00:00Z"))   # after the breach: no change
    run.until("2026-04-01T02:00:00Z")               # T4 (due 04-01T02:00Z) still waits: no report
    run.feed(reply("T4", "2026-04-01T01:00:00Z"))   # on time (a late event: time is 02:00Z)
    run.until("2026-04-01T03:00:00Z")


def test_restore_of_a_snapshot_continues_with_the_same_reports():
    straight = Run("rs", thresholds=())
    _first_half(straight)
    _second_half(straight)
    assert reports(straight) == [("2026-Q1", 4, 2, "50.00", "2026-04-01T01:00:00Z")]

    first = Run("rs", thresholds=())
    _first_half(first)
    resumed = _restored(first, first.proc.snapshot())
    _second_half(resumed)
    assert reports(resumed) == reports(straight)


def test_restore_accepts_an_old_format_snapshot():
    first = Run("rs", thresholds=())
    _first_half(first)
    new_format = json.loads(first.proc.snapshot())
    breach_of = {o["ticket_id"]: o["event_id"] for o in first.outputs
                 if o["type"] == "sla.breached" and o["metric"] == "first_response"}
    # What the book persisted before it moved the per-ticket entries to the tickets: every
    # waiting ticket and every counted, unreported breach, by id; no "v", no "waiting".
    old_format = {
        "now": new_format["now"], "close": new_format["close"],
        "attainment": {
            "measured": [["rs", "2026-Q1", 3]], "met": [],
            "last": [["rs", "2026-Q1", "2026-03-30T11:00:00+00:00"]],
            "breaches": sorted([b, "rs", "2026-Q1"] for b in breach_of.values()),
            "pending": [["T4", "rs", "2026-Q1"]],
            "report": [["rs", "2026-Q1"]],
        },
    }
    assert {k: v for k, v in new_format["attainment"].items() if k in ("measured", "met", "last", "report")} == {
        k: v for k, v in old_format["attainment"].items() if k in ("measured", "met", "last", "report")}

    resumed = _restored(first, json.dumps(old_format), strip_marks=True)
    book = resumed.proc.attainment
    assert book.waiting == {("rs", "2026-Q1"): 1}
    assert book.legacy_pending == {"T4": ("rs", "2026-Q1")}
    assert set(book.legacy_breaches) == set(breach_of.values())
    assert all(st.attainment == 0 for st in resumed.proc.store.tickets.values())

    _second_half(resumed)
    straight = Run("rs", thresholds=())
    _first_half(straight)
    _second_half(straight)
    assert reports(resumed) == reports(straight) == [("2026-Q1", 4, 2, "50.00", "2026-04-01T01:00:00Z")]
    # The legacy entries drained (T4 answered, T1's breach retracted, Q1 reported): the
    # snapshot is back to the per-key counts only.
    assert book.legacy_pending == {} and book.legacy_breaches == {}
    assert "legacy_pending" not in resumed.proc.snapshot()


def test_legacy_waiting_ticket_moves_onto_the_ticket_when_it_is_saved():
    book = AttainmentBook()
    book.load({"measured": [], "met": [], "last": [], "breaches": [], "report": [],
               "pending": [["T1", "rs", "2026-Q1"], ["T2", "rs", "2026-Q1"]]})
    assert book.waiting == {("rs", "2026-Q1"): 2}
    t1 = TicketState("T1", "rs", "v", "production", at("2026-02-03T10:00:00Z"))
    book.adopt(t1)
    assert t1.attainment == WAITING and book.legacy_pending == {"T2": ("rs", "2026-Q1")}
    assert book.to_json()["legacy_pending"] == [["T2", "rs", "2026-Q1"]]
    book.stopped(t1)
    assert book.waiting == {("rs", "2026-Q1"): 1}
    t2 = TicketState("T2", "rs", "v", "production", at("2026-02-03T10:00:00Z"))
    book.stopped(t2)                                   # still a legacy entry: taken off once
    book.stopped(t2)
    assert book.waiting == {} and book.legacy_pending == {}
    assert "legacy_pending" not in book.to_json()


def test_ticket_json_round_trips_the_attainment_marks():
    state = TicketState("T1", "rs", "v", "production", at("2026-02-03T10:00:00Z"))
    assert "w" not in json.loads(state.to_json())     # unmarked tickets keep their old JSON
    state.attainment = WAITING | BREACH
    assert TicketState.from_json(state.to_json()).attainment == WAITING | BREACH


def test_partials_of_every_partition_sum_to_one_report_and_a_redelivered_one_counts_once():
    # Stream mode: each partition sends its quarter's counts; the attainment agent folds them with
    # `add_partial` into the quarter's stored parts (JSON as in its table) and reports once all are in.
    closing = datetime(2026, 4, 1, 1, tzinfo=timezone.utc)

    def partial(partition: int, measured: int, met: int, late: int = 0) -> Output:
        return Output(PARTIAL, closing + timedelta(minutes=late), "acme", f"p{partition}",
                      {"customer_id": "acme", "quarter": "2026-Q1", "partition": partition,
                       "measured": measured, "met": met})

    parts: dict = {}
    assert add_partial(parts, partial(0, 3, 2), 2) is None
    assert add_partial(parts, partial(0, 3, 2), 2) is None  # redelivered: overwrites its own entry
    report = add_partial(parts, partial(1, 5, 5, late=7), 2)
    assert report is not None and report.type == "sla.attainment_reported"
    assert (report.fields["measured"], report.fields["met"], str(report.fields["attainment_percent"])) == (8, 7, "87.50")
    assert report.occurred_at == closing + timedelta(minutes=7)  # the last partition's instant


# ====================================================================== bounded wait (review clock.md F5)


def test_an_abandoned_paused_ticket_holds_its_quarter_only_until_the_wait_bound():
    # Review F5 (input t4, on `rsp`: Rescale 24x5 UTC, waiting_on_customer pauses first_response).
    # High = 4 business hours. T1 opened 08-04 10:00Z, answered 11:00Z: met. T2 opened 08-05
    # 10:00Z, set waiting_on_customer at 10:30Z and never resumed: 30 min elapsed, no outcome.
    # T3 opened 08-06 10:00Z, no reply: breached at 14:00Z. Before: no report at all, for ever.
    # Rule: Q3 waits for T2 until its end + 7 days (2026-10-08T00:00Z), then reports without it:
    # measured 2 (T1, T3), met 1 -> 50.00 %. Q4 (no ticket) at its end + 1 h, measured 0.
    run = Run("rsp", thresholds=())
    run.feed(opened("T1", "rsp", "high", "2026-08-04T10:00:00Z"), reply("T1", "2026-08-04T11:00:00Z"),
             opened("T2", "rsp", "high", "2026-08-05T10:00:00Z"),
             status("T2", "waiting_on_customer", "2026-08-05T10:30:00Z"),
             opened("T3", "rsp", "high", "2026-08-06T10:00:00Z"))
    run.until("2026-10-07T23:59:00Z")
    assert [r for r in reports(run) if r[0] >= "2026-Q3"] == []     # still within the bound
    run.until("2027-03-01T00:00:00Z")
    assert [r for r in reports(run) if r[0] >= "2026-Q3"] == [
        ("2026-Q3", 2, 1, "50.00", "2026-10-08T00:00:00Z"),
        ("2026-Q4", 0, 0, None, "2027-01-01T01:00:00Z")]
    assert run.proc.attainment.waiting == {}                          # T2 no longer counted anywhere
    # T2 answered after the report: its quarter is not re-opened, nothing is kept for it.
    run.feed(status("T2", "open", "2027-03-01T10:00:00Z"), reply("T2", "2027-03-01T10:10:00Z"))
    run.until("2027-03-02T00:00:00Z")
    assert [r[0] for r in reports(run)].count("2026-Q3") == 1
    assert ("rsp", "2026-Q3") not in run.proc.attainment.measured
    assert run.proc.store.ticket("T2").attainment == 0


def test_an_outcome_after_the_wait_bound_is_not_counted_whatever_the_ticks():
    # `rsp` low = 1 business day (24x5 UTC: 24 business hours). T1 opened Thu 2026-12-31 12:00Z,
    # paused at 13:00Z (1 h elapsed), resumed Mon 2027-01-11 00:00Z: 23 h left, breach at
    # 01-11T23:00Z, after Q4's bound (2027-01-08T00:00Z). One replay-like jump to 02-01 (the breach
    # fires in the same advance as the quarter close) and daily ticks must give the same report:
    # Q4 at the bound, T1 not measured (0 of 0).
    events = [opened("T1", "rsp", "low", "2026-12-31T12:00:00Z"),
              status("T1", "waiting_on_customer", "2026-12-31T13:00:00Z"),
              status("T1", "open", "2027-01-11T00:00:00Z")]
    jump, ticked = Run("rsp", thresholds=()), Run("rsp", thresholds=())
    jump.feed(*events)
    jump.until("2027-02-01T00:00:00Z")
    ticked.feed(*events[:2])
    for day in range(1, 11):
        ticked.until(f"2027-01-{day:02d}T12:00:00Z")
    ticked.feed(events[2])
    ticked.until("2027-02-01T00:00:00Z")
    expected = [("2026-Q4", 0, 0, None, "2027-01-08T00:00:00Z")]
    assert [r for r in reports(jump) if r[0] == "2026-Q4"] == expected
    assert [r for r in reports(ticked) if r[0] == "2026-Q4"] == expected
    assert jump.of("sla.breached", metric="first_response") and ticked.of("sla.breached", metric="first_response")


# ====================================================================== retracted breach (review clock.md F6)


def _f6_events() -> list:
    # `rsp` normal = 8 business hours, 24x5 UTC. Opened Tue 03-31 10:00Z; paused 12:00Z (2 h);
    # resumed Wed 04-01 10:00Z; reply 12:00Z: 2 h + 2 h = 4 h < 8 h, met.
    return [opened("T", "rsp", "normal", "2026-03-31T10:00:00Z"),
            status("T", "waiting_on_customer", "2026-03-31T12:00:00Z", event_id="s1"),
            status("T", "open", "2026-04-01T10:00:00Z", event_id="s2"),
            reply("T", "2026-04-01T12:00:00Z", event_id="r")]


def test_a_retracted_breach_puts_its_ticket_back_among_those_waiting():
    # Review F6. Sorted: Q1 waits for T's outcome (met 04-01 12:00Z) and reports 1 of 1, dated 12:00Z.
    # Stream, pause late: a tick to 19:00Z fires the breach due 18:00Z (8 h unpaused); the pause then
    # retracts it. Before: T no longer waited, Q1 reported at 04-01T01:00Z with 0 measured (same
    # event id as the sorted run's 1-of-1 report).
    expected = [("2026-Q1", 1, 1, "100.00", "2026-04-01T12:00:00Z")]
    sorted_run = Run("rsp", thresholds=())
    sorted_run.feed(*_f6_events())
    sorted_run.until("2026-04-02T00:00:00Z")
    assert [r for r in reports(sorted_run) if r[0] == "2026-Q1"] == expected

    late = Run("rsp", thresholds=())
    o, s1, s2, r = _f6_events()
    late.feed(o)
    late.until("2026-03-31T19:00:00Z")
    assert late.of("sla.breached", metric="first_response")
    late.feed(s1)
    assert late.of("sla.breach_retracted")
    assert late.proc.store.ticket("T").attainment == WAITING
    late.until("2026-04-01T01:30:00Z")
    assert [r for r in reports(late) if r[0] == "2026-Q1"] == []      # T waits again
    late.feed(s2, r)
    late.until("2026-04-02T00:00:00Z")
    assert [r for r in reports(late) if r[0] == "2026-Q1"] == expected
    q1 = [o for o in late.other_outputs if o["type"] == "sla.attainment_reported" and o["quarter"] == "2026-Q1"]
    ref = [o for o in sorted_run.other_outputs if o["type"] == "sla.attainment_reported" and o["quarter"] == "2026-Q1"]
    assert q1 == ref                                                   # same id, same content
