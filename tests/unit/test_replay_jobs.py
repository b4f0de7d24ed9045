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


def test_cli_jobs_flag() -> None:
    from tests.unit.test_cli import run_cli

    args = ("replay", "samples/events.jsonl", "--contracts", "samples/contracts.yaml", "--until", "2026-05-01T02:00:00Z",
            "-q")
    one, two = run_cli(*args), run_cli(*args, "--jobs", "2")
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout and one.stdout.count(b"\n") > 50
    bad = run_cli(*args, "--jobs", "0")
    assert bad.returncode == 2 and b"expected a number of processes from 1 to 64" in bad.stderr
