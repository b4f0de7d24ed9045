"""Instructions a replay costs, counted by callgrind: deterministic, unlike CPU time on a shared machine.

    python -m bench.instructions [--lines 10000] [--work bench/out/e100000-t10000-s1] ENGINE...

ENGINE is a source tree (a `git worktree` of any commit with `streams.replay.Replayer`). For each,
two processes run under `valgrind --tool=callgrind`: one loads the contracts and builds the
Replayer as bench/replay.py does, then feeds the first --lines lines, `finish(None)` and writes the
sorted outputs to /dev/null; the other stops after building the Replayer. The difference is the
replay's instructions (imports and the contracts load subtracted). Each engine's bytecode is
compiled first, without valgrind, into a cache of its own (PYTHONPYCACHEPREFIX), so compiling is
never counted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_DEFAULT_WORK = Path(__file__).resolve().parent / "out" / "e100000-t10000-s1"


def _child(work: Path, lines: int, replay: bool) -> None:
    from policies.catalog import default_catalog
    from policies.contracts import load_contracts_yaml
    from streams.replay import Replayer

    catalog = default_catalog()
    replayer = Replayer(load_contracts_yaml(work / "contracts.yaml", catalog), catalog)
    if not replay:
        return
    events = work / "events.jsonl"
    name = events.name
    feed = replayer.feed_line
    with events.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno > lines:
                break
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                feed(raw, f"{name}:{lineno}")
    result = replayer.finish(None)
    digest = hashlib.sha256()
    count = 0
    with open(os.devnull, "wb") as out:
        for line in result.sorted_lines():
            out.write(line)
            out.write(b"\n")
            digest.update(line + b"\n")
            count += 1
    print(f"outputs {count} sha256 {digest.hexdigest()}")


def _run(engine: Path, work: Path, lines: int, replay: bool, valgrind: bool) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(engine),
               PYTHONPYCACHEPREFIX=f"/tmp/pyc-{hashlib.sha1(str(engine).encode()).hexdigest()[:10]}")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--work", str(work), "--lines", str(lines)]
    if replay:
        cmd.append("--replay")
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        if valgrind:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"] + cmd
        proc = subprocess.run(cmd, env=env, cwd=engine, capture_output=True, text=True, check=True)
        if not valgrind:
            return 0, proc.stdout.strip()
        found = re.search(r"Collected : (\d+)", proc.stderr)
        if found is None:
            raise RuntimeError(proc.stderr[-2000:])
        return int(found.group(1)), proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engines", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, default=_DEFAULT_WORK)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.work, args.lines, args.replay)
        return 0
    print("| engine | replay instructions | outputs, sha256 |")
    print("|---|---|---|")
    for engine in args.engines:
        engine = engine.resolve()
        _run(engine, args.work, args.lines, True, valgrind=False)  # warms this engine's .pyc cache
        base, _ = _run(engine, args.work, args.lines, False, valgrind=True)
        total, outputs = _run(engine, args.work, args.lines, True, valgrind=True)
        print(f"| {engine} | {(total - base) / 1e9:.3f} G | {outputs} |", flush=True)
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        del sys.path[0]  # this file's folder: the engine's packages come from PYTHONPATH
    sys.exit(main())
