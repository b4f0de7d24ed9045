"""`python -m tests.integration.applied_offsets_worker`: the real worker, writing down every input
offset it applies.

After each input batch the worker applied (`StreamWorker._input_batch` returned: its state and
outputs are on the broker, its events not acknowledged yet, so no commit can include them before
the line is written), one JSON line `{"applied": [[topic, partition, offset], ...]}` in the order
the events were applied goes to `$SLAPROC_TEST_APPLIED_DIR/applied-<pid>.jsonl`, unbuffered: a
kill -9 loses no line of a batch whose offsets could have been committed. The file's first line
names the `streams` package the worker imported (the worktree's, not an installed copy). Used by
test_backfill_progress's kill test to check that each incarnation applies every input partition
contiguously from the offset committed when it started.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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


async def _recording_input_batch(self: Any, events: Any) -> None:
    await _original(self, events)
    if _out is not None:
        _out.write(json.dumps({"applied": [[e.message.topic, e.message.partition, e.message.offset]
                                           for e in events]}).encode() + b"\n")


if __name__ == "__main__":
    _out = open(applied_path(Path(os.environ[APPLIED_DIR_ENV]), os.getpid()), "ab", buffering=0)
    _out.write(json.dumps({"streams": streams.__file__}).encode() + b"\n")
    app_module.StreamWorker._input_batch = _recording_input_batch  # type: ignore[method-assign]
    parser = argparse.ArgumentParser(prog="applied offsets worker")
    add_worker_flags(parser)
    sys.exit(run_worker(parser.parse_args()))
