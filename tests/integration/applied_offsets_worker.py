"""`python -m tests.integration.applied_offsets_worker`: the real worker, writing down every input
offset it applies.

After each input batch the worker applied (`StreamWorker._input_batch` returned: its state and
outputs are on the broker, its events not acknowledged yet, so no commit can include them before
the line is written), one JSON line `{"at": <time>, "applied": [[topic, partition, offset], ...]}`
in the order the events were applied goes to `$SLAPROC_TEST_APPLIED_DIR/applied-<pid>.jsonl`,
unbuffered: a kill -9 loses no line of a batch whose offsets could have been committed. Each
offset commit Faust asks its consumer thread for (`AIOKafkaConsumerThread.commit`, on the same
event loop) is written before it is sent, as `{"at": <time>, "commit": [[topic, partition,
offset], ...]}`. The file's first line names the `streams` package the worker imported (the
worktree's, not an installed copy). Used by test_backfill_progress's kill test to check that each
incarnation applies every input partition contiguously from the offset committed when it started,
and never commits past what it applied.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import streams
from streams import app as app_module
from streams.worker import add_worker_flags, run_worker

APPLIED_DIR_ENV = "SLAPROC_TEST_APPLIED_DIR"


def applied_path(directory: Path, pid: int) -> Path:
    return directory / f"applied-{pid}.jsonl"


_original = app_module.StreamWorker._input_batch
_out: Any = None


def _write(entry: dict[str, Any]) -> None:
    if _out is not None:
        _out.write(json.dumps({"at": round(time.time(), 3), **entry}).encode() + b"\n")


async def _recording_input_batch(self: Any, events: Any) -> None:
    await _original(self, events)
    _write({"applied": [[e.message.topic, e.message.partition, e.message.offset] for e in events]})


def _record_commits() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    commit = AIOKafkaConsumerThread.commit

    async def recorded_commit(self: Any, offsets: Any) -> bool:
        _write({"commit": [[tp.topic, tp.partition, offset] for tp, offset in offsets.items()]})
        return await commit(self, offsets)

    AIOKafkaConsumerThread.commit = recorded_commit


if __name__ == "__main__":
    _out = open(applied_path(Path(os.environ[APPLIED_DIR_ENV]), os.getpid()), "ab", buffering=0)
    _out.write(json.dumps({"streams": streams.__file__}).encode() + b"\n")
    app_module.StreamWorker._input_batch = _recording_input_batch  # type: ignore[method-assign]
    _record_commits()
    parser = argparse.ArgumentParser(prog="applied offsets worker")
    add_worker_flags(parser)
    sys.exit(run_worker(parser.parse_args()))
