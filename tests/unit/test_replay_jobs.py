"""`slaproc replay --jobs N` (issue 16): the file split by customer across N processes, the outputs
merged in `--jobs 1`'s order — byte-identical, on the samples and on generated workloads, with and
without `--until`; where customers' outcomes depend on each other's time, one process replays it."""
from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from bench.generate import generate, write_workload
from streams.replay import ReplayResult, replay_file

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
UNTIL = datetime.fromisoformat("2026-05-01T02:00:00+00:00")  # the samples' README command


def replay(events: Path, contracts: Path, jobs: int, until: datetime | None,
           bound: datetime | None = None) -> tuple[bytes, ReplayResult]:
    out = io.BytesIO()
    result = replay_file(events, contracts, until, out, progress=None, bound=bound, jobs=jobs)
    return out.getvalue(), result


def assert_jobs_agree(events: Path, contracts: Path, until: datetime | None, bound: datetime | None = None,
                      split: bool = True) -> bytes:
    one, first = replay(events, contracts, 1, until, bound)
    assert one.count(b"\n") > 0
    for jobs in (2, 3):
        out, result = replay(events, contracts, jobs, until, bound)
        assert out == one, f"--jobs {jobs} differs from --jobs 1"
        assert (result.lines, result.events, result.dead_letters) == (first.lines, first.events, first.dead_letters)
        assert result.jobs == (jobs if split else 1)
    return one


def test_samples_with_until() -> None:
    assert_jobs_agree(SAMPLES / "events.jsonl", SAMPLES / "contracts.yaml", UNTIL)


def test_samples_without_until_events_after_the_bound_are_dated_at_the_time_every_job_reached() -> None:
    bound = datetime.fromisoformat("2026-04-15T00:00:00+00:00")
    out = assert_jobs_agree(SAMPLES / "events.jsonl", SAMPLES / "contracts.yaml", None, bound)
    future = [json.loads(line) for line in out.splitlines() if b"future_timestamp" in line]
    assert future and len({o["occurred_at"] for o in future}) == 1  # the one time reached, not a job's own


@pytest.mark.parametrize("seed,late", [(7, 0.05), (3, 0.0)])
def test_generated_workload(tmp_path: Path, seed: int, late: float) -> None:
    work = generate(events=4000, tickets=400, seed=seed, late_fraction=late, customers=12)
    paths = write_workload(work, tmp_path)
    until = datetime.fromisoformat(work.meta["until"].replace("Z", "+00:00"))
    assert_jobs_agree(paths["events"], paths["contracts"], until)


def test_an_event_taken_out_of_parking_is_replayed_in_one_process(tmp_path: Path) -> None:
    """A reply parked before its ticket opens: in one process it might have expired first, so the
    split is not trusted; the output is still --jobs 1's."""
    lines = (SAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines()
    opened = next(json.loads(line) for line in lines if json.loads(line)["type"] == "ticket.opened")
    early = {"event_id": "early-reply", "type": "ticket.replied", "occurred_at": opened["occurred_at"],
             "ticket_id": opened["ticket_id"], "author": "provider", "public": True}
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(early)] + lines) + "\n", encoding="utf-8")
    assert_jobs_agree(events, SAMPLES / "contracts.yaml", UNTIL, split=False)


def test_an_expired_orphan_applied_after_all_is_replayed_in_one_process(tmp_path: Path) -> None:
    """A resolve whose outage starts more than the parking horizon later: it expires, is remembered
    and applied at the start (`Parking.remembered`). Whether it expired first depends on the time
    every customer's events move, so the split is not trusted; the output is still --jobs 1's."""
    lines = (SAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines()
    start = next(json.loads(line) for line in lines if json.loads(line)["type"] == "outage.started")
    resolved = {"event_id": "early-resolve", "type": "outage.resolved", "occurred_at": "2026-03-01T00:00:00Z",
                "service_id": start["service_id"], "outage_id": "late-start"}
    started = {"event_id": "late-start", "type": "outage.started", "occurred_at": "2026-03-20T00:00:00Z",
               "service_id": start["service_id"], "outage_id": "late-start", "scope": "all_users"}
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(resolved), json.dumps(started)] + lines) + "\n", encoding="utf-8")
    out = assert_jobs_agree(events, SAMPLES / "contracts.yaml", UNTIL, split=False)
    assert b'"source":"parked:early-resolve"' in out.replace(b" ", b"")  # its orphan dead letter stays


def test_cli_jobs_flag() -> None:
    from tests.unit.test_cli import run_cli

    args = ("replay", "samples/events.jsonl", "--contracts", "samples/contracts.yaml", "--until", "2026-05-01T02:00:00Z",
            "-q")
    one, two = run_cli(*args), run_cli(*args, "--jobs", "2")
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout and one.stdout.count(b"\n") > 50
    bad = run_cli(*args, "--jobs", "0")
    assert bad.returncode == 2 and b"expected a number of processes from 1 to 64" in bad.stderr


def test_contract_lines_and_bad_lines(tmp_path: Path) -> None:
    """Contract lines (one valid for a new customer with its ticket, one that does not decode) and
    lines that fail when read or when applied: the dead letters in --jobs 1's order, once each."""
    lines = (SAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines()
    contract = {"event_id": "contract-new", "type": "contract.upserted", "occurred_at": "2026-03-05T09:00:00Z",
                "customer_id": "newco", "policy": "neural-magic", "plan": "standard",
                "effective_from": "2026-01-01T00:00:00Z", "services": [{"service_id": "newco-api"}]}
    broken = {"event_id": "contract-bad", "type": "contract.upserted", "occurred_at": "2026-03-06T09:00:00Z",
              "customer_id": "x", "policy": "nope"}
    ticket = [{"event_id": "nt1", "type": "ticket.opened", "occurred_at": "2026-03-10T10:00:00Z", "ticket_id": "NT1",
               "customer_id": "newco", "priority": "critical"},
              {"event_id": "nt2", "type": "ticket.replied", "occurred_at": "2026-03-10T12:00:00Z", "ticket_id": "NT1",
               "author": "provider", "public": True}]
    extra = [json.dumps(contract), json.dumps(broken), "not json", '{"type": "ticket.opened"}'] + [json.dumps(t) for t in ticket]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines[:100] + extra[:3] + lines[100:200] + extra[3:] + lines[200:]) + "\n",
                      encoding="utf-8")
    out = assert_jobs_agree(events, SAMPLES / "contracts.yaml", UNTIL)
    dead = [json.loads(line) for line in out.splitlines() if b'"dead_letter"' in line]
    assert len({d["source"] for d in dead}) == len(dead) >= 3  # each bad line once, not once per job


GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden"


@pytest.mark.parametrize("scenario", ["shared_two_commitments", "shared_component_outage", "shared_regional_outage",
                                      "shared_contract_starts_mid_month"])
def test_customers_sharing_a_service_are_replayed_in_one_job(scenario: str) -> None:
    # Review of 2026-12-04 (wrong money): the split kept one customer per service, so a shared
    # service's monitoring lines reached only that customer's job; the other subscribers closed
    # their months from an empty ledger (0 min, 100.00 %, no refund) under --jobs 2.
    import yaml

    until = datetime.fromisoformat(yaml.safe_load((GOLDEN / scenario / "options.yaml").read_text())["until"])
    assert_jobs_agree(GOLDEN / scenario / "events.jsonl", GOLDEN / scenario / "contracts.yaml", until)


def test_customers_joined_through_a_chain_of_shared_services_are_one_group() -> None:
    from streams.replay import _CustomerGroups

    groups = _CustomerGroups()
    groups.subscribe("s1", "c")
    groups.subscribe("s2", "a")
    groups.subscribe("s1", "b")
    groups.subscribe("s2", "b")  # a - b - c through s2 and s1
    groups.subscribe("s3", "z")
    assert {groups.group_of(c) for c in "abc"} == {"a"}
    assert groups.group_of("z") == "z" and groups.group_of("unknown") == "unknown"
    assert groups.owner_of_service("s1") == groups.owner_of_service("s2") == "a"
    assert groups.owner_of_service("none") is None
