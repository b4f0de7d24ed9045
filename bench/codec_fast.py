"""Does the codec's generated fast path (events.codec._FAST_BUILDERS) still pay? (issue 17, item 6)

Side by side in one process, alternating, best of N: decoding every line of a generated
workload with the fast path and without it (`_decode_slow`), then a whole replay of the
same workload with the builders present and with them removed (every event through
pydantic). What matters is the replay: the decode time saved, as a share of a replay.

    python -m bench.codec_fast [--events 200000] [--tickets 20000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from bench.replay import ensure_workload, replay_timed
from events import codec


def _lines(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        return [raw.rstrip(b"\r\n") for raw in fh if raw.strip()]


def _time_decode(decode, lines: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    for raw in lines:
        decode(raw)
    return time.perf_counter() - started


def _time_replay(work: Path, fast: bool) -> float:
    builders = codec._FAST_BUILDERS
    codec._FAST_BUILDERS = builders if fast else {}
    try:
        return float(replay_timed(work, progress=False)["seconds"])
    finally:
        codec._FAST_BUILDERS = builders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = ensure_workload(args.events, args.tickets)
    lines = _lines(work / "events.jsonl")
    fast_decode = min(_time_decode(codec.decode, lines) for _ in range(1))
    slow_decode = float("inf")
    for _ in range(args.repeat):
        slow_decode = min(slow_decode, _time_decode(codec._decode_slow, lines))
        fast_decode = min(fast_decode, _time_decode(codec.decode, lines))
    fast_replay = slow_replay = float("inf")
    for _ in range(args.repeat):
        slow_replay = min(slow_replay, _time_replay(work, fast=False))
        fast_replay = min(fast_replay, _time_replay(work, fast=True))
    n = len(lines)
    print(f"{n:,} lines ({work.name}), best of {args.repeat}, alternating")
    print(f"decode only: fast {n / fast_decode:,.0f} lines/s, pydantic {n / slow_decode:,.0f} lines/s, "
          f"fast path saves {1 - fast_decode / slow_decode:.1%}")
    print(f"whole replay: with builders {n / fast_replay:,.0f} lines/s, without {n / slow_replay:,.0f} lines/s, "
          f"fast path saves {1 - fast_replay / slow_replay:.1%} (noisy on a shared machine)")
    # Steadier than the replay A/B: the decode time the fast path saves, as a share of a replay.
    print(f"decoding is {slow_decode / slow_replay:.1%} of a replay without builders; the fast path's saving "
          f"is {(slow_decode - fast_decode) / slow_replay:.2%} of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
