"""`python -m tests.integration.faulty_worker`: the real worker with one injected fault.

An input batch holding an event whose id is `INJECT-CRASH` raises from the input agent itself
(outside the per-event guards), as a shell bug or a broker refusing writes past the client's
retries would: the agent crashes. Used by test_no_input_stops_a_worker (issue 18, item 9).
"""
from __future__ import annotations

import argparse
import sys

from streams import app as app_module
from streams.worker import add_worker_flags, run_worker

_original = app_module.StreamWorker._input_batch


async def _faulty_input_batch(self, events):  # type: ignore[no-untyped-def]
    if any(b"INJECT-CRASH" in (event.message.value or b"") for event in events):
        raise RuntimeError("injected fault")
    await _original(self, events)


app_module.StreamWorker._input_batch = _faulty_input_batch

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="faulty worker")
    add_worker_flags(parser)
    sys.exit(run_worker(parser.parse_args()))
