"""Replay benchmark: replay throughput next to a read-and-parse baseline, and memory per open ticket.

One run measures, over the same generated file (bench/generate.py, cached under bench/out/):

- baseline: read the file in binary and `json.loads` every line (best of `--repeat`, default 3);
- replay: `streams.replay.Replayer` over the same lines — decode, processor, output encoding —
  then `finish(until)`, the sort by (occurred_at, key) and the write to /dev/null, as
  `slaproc replay` does (contracts are loaded before the clock starts and timed apart);
- contracts: the workload's contracts loaded against a bare CSafeLoader parse of the file
  (`bench.contracts_load.measure`);
- jobs: `replay_file` end to end with `--jobs 1`, then `--jobs N` (default 2), wall time each;
- memory, in a child process under tracemalloc (which slows it down, so never in the timed run):
  the bytes released when the store's open tickets are dropped (`store.tickets`, then the
  due index), divided by the open tickets at the end; also the closed-ticket residue
  (`store.closed`), the output buffer, the traced peak and the peak RSS.

    python -m bench.replay                 # 1,000,000 events, 100,000 tickets
    python -m bench.replay --quick         # 100,000 events, 10,000 tickets
    python -m bench.replay --profile       # also cProfile the replay (top 25 by cumulative / tottime)
    python -m bench.replay --quick --workload long-open        # or many-customers (see WORKLOADS)

Results are printed as a markdown table (and as JSON with --json).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "out"
TARGET_RATIO = 0.25
TARGET_BYTES_PER_TICKET = 2048
TARGET_CONTRACTS_LOAD = 1.5  # issue 16: load <= 1.5 x a CSafeLoader parse of 12,000 contracts
TARGET_CONTRACTS_AT = 12_000


#: The workloads (issue 16): today's mix; many tickets open for the whole period (each line moves
#: time over many cadence clocks: many outputs per line); many customers (a tenth of the tickets,
#: so ~10 tickets each: contracts, plans and calendars many, each ticket's customer rarely reused).
WORKLOADS = {
    "default": {},
    "long-open": {"long_open": 0.3},
    "many-customers": {"customers_per_ticket": 0.1},
}


def workload_dir(events: int, tickets: int, seed: int, late_fraction: float, customers: int | None = None,
                 long_open: float = 0.0) -> Path:
    name = (f"e{events}-t{tickets}-s{seed}" + (f"-l{late_fraction:g}" if late_fraction else "")
            + (f"-c{customers}" if customers is not None else "") + (f"-o{long_open:g}" if long_open else ""))
    return CACHE / name


def ensure_workload(events: int, tickets: int, seed: int = 1, late_fraction: float = 0.0,
                    customers: int | None = None, long_open: float = 0.0) -> Path:
    """The cached workload directory, generated first (in a child process, so its memory
    never counts towards this process's peak RSS) when missing."""
    out = workload_dir(events, tickets, seed, late_fraction, customers, long_open)
    if not (out / "meta.json").exists():
        cmd = [sys.executable, "-m", "bench.generate", "--events", str(events), "--tickets", str(tickets),
               "--seed", str(seed), "--late-fraction", str(late_fraction), "--out", str(out)]
        if customers is not None:
            cmd += ["--customers", str(customers)]
        if long_open:
            cmd += ["--long-open", str(long_open)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    return out


def named_workload(name: str, events: int, tickets: int, seed: int, late_fraction: float) -> Path:
    shape = WORKLOADS[name]
    customers = max(1, round(tickets * shape["customers_per_ticket"])) if "customers_per_ticket" in shape else None
    return ensure_workload(events, tickets, seed, late_fraction, customers, shape.get("long_open", 0.0))


def _until(meta: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(meta["until"].replace("Z", "+00:00"))


def baseline(events_path: Path, repeat: int = 3) -> dict[str, Any]:
    """Best time to read the file and json.loads every non-blank line."""
    best = float("inf")
    lines = 0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        lines = 0
        loads = json.loads
        with events_path.open("rb") as fh:
            for raw in fh:
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    loads(raw)
                except ValueError:
                    pass
                lines += 1
        best = min(best, time.perf_counter() - started)
    return {"seconds": best, "lines": lines, "rate": lines / best}


def _load(contracts_path: Path):
    from policies.catalog import default_catalog
    from policies.contracts import load_contracts_yaml
    from streams.replay import Replayer

    catalog = default_catalog()
    contracts = load_contracts_yaml(contracts_path, catalog)
    return Replayer(contracts, catalog)


def _feed(replayer, events_path: Path, progress: bool) -> int:
    name = events_path.name
    feed = replayer.feed_line
    started = last = time.perf_counter()
    lines = 0
    with events_path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            feed(raw, f"{name}:{lineno}")
            lines += 1
            if progress and lineno % 20_000 == 0 and time.perf_counter() - last > 15:
                last = time.perf_counter()
                print(f"  replay: {lineno:,} lines, {lineno / (last - started):,.0f} lines/s", file=sys.stderr, flush=True)
    return lines


def replay_timed(work: Path, progress: bool = True) -> dict[str, Any]:
    """Time a replay of the workload, phase by phase, writing the sorted output to /dev/null."""
    meta = json.loads((work / "meta.json").read_text())
    gc.collect()
    t0 = time.perf_counter()
    replayer = _load(work / "contracts.yaml")
    t1 = time.perf_counter()
    lines = _feed(replayer, work / "events.jsonl", progress)
    t2 = time.perf_counter()
    result = replayer.finish(_until(meta))
    t3 = time.perf_counter()
    with open(os.devnull, "wb") as out:
        for line in result.sorted_lines():
            out.write(line)
            out.write(b"\n")
    t4 = time.perf_counter()
    seconds = t4 - t1
    return {
        "contracts_seconds": t1 - t0, "feed_seconds": t2 - t1, "finish_seconds": t3 - t2,
        "sort_write_seconds": t4 - t3, "seconds": seconds, "lines": lines, "rate": lines / seconds,
        "outputs": len(result.records), "dead_letters": result.dead_letters,
        "open_tickets": len(replayer.processor.store.tickets),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def jobs_timed(work: Path, jobs: int) -> dict[str, Any]:
    """`replay_file` with `--jobs 1` then `--jobs N` over the workload, wall time each (output to
    /dev/null, contracts load included in both), and whether the outputs are byte-identical."""
    import hashlib

    from streams.replay import replay_file

    meta = json.loads((work / "meta.json").read_text())
    figures: dict[str, Any] = {"jobs": jobs}
    digests = {}
    for n in (1, jobs):
        sink = _Digest(hashlib.sha256())
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        result = replay_file(work / "events.jsonl", work / "contracts.yaml", _until(meta), sink, progress=None, jobs=n)
        figures[f"seconds_{n}"] = time.perf_counter() - started
        # CPU on the critical path: this process, plus the busiest job (the jobs run side by side)
        figures[f"cpu_{n}"] = time.process_time() - cpu + max(result.jobs_cpu, default=0.0)
        figures[f"jobs_cpu_{n}"] = result.jobs_cpu
        figures[f"used_{n}"] = result.jobs
        digests[n] = sink.hash.hexdigest()
    figures["speedup"] = figures["seconds_1"] / figures[f"seconds_{jobs}"]
    figures["cpu_speedup"] = figures["cpu_1"] / figures[f"cpu_{jobs}"]
    figures["identical"] = digests[1] == digests[jobs]
    return figures


class _Digest:
    """A binary sink that only hashes what is written (the outputs compared without keeping them)."""

    def __init__(self, hash_: Any):
        self.hash = hash_

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        pass


def memory_probe(work: Path) -> dict[str, Any]:
    """Replay under tracemalloc, then measure what dropping each part of the state releases."""
    import tracemalloc

    meta = json.loads((work / "meta.json").read_text())
    replayer = _load(work / "contracts.yaml")  # catalog and contracts are not per-ticket state
    gc.collect()
    tracemalloc.start()
    _feed(replayer, work / "events.jsonl", progress=True)
    result = replayer.finish(_until(meta))
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    store = replayer.processor.store
    open_tickets = len(store.tickets)
    closed_tickets = len(store.closed)
    outputs = len(result.records)

    def released(drop) -> int:
        before = tracemalloc.get_traced_memory()[0]
        drop()
        gc.collect()
        return before - tracemalloc.get_traced_memory()[0]

    # Outputs first: their keys share the ticket_id strings, which would otherwise stay alive.
    out_bytes = released(lambda: result.records.clear())
    ticket_bytes = released(lambda: setattr(store, "tickets", {}))
    index_bytes = released(lambda: (setattr(store, "_heap", []), setattr(store, "_wake", {})))
    closed_bytes = released(lambda: setattr(store, "closed", {}))
    tracemalloc.stop()
    return {
        "open_tickets": open_tickets, "closed_tickets": closed_tickets, "outputs": outputs,
        "traced_end_bytes": current, "traced_peak_bytes": peak,
        "ticket_state_bytes": ticket_bytes, "due_index_bytes": index_bytes,
        "closed_residue_bytes": closed_bytes, "output_buffer_bytes": out_bytes,
        "per_open_ticket": (ticket_bytes + index_bytes) / max(open_tickets, 1),
        "per_open_ticket_state_only": ticket_bytes / max(open_tickets, 1),
        "per_closed_ticket": closed_bytes / max(closed_tickets, 1),
        "per_output": out_bytes / max(outputs, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def profile(work: Path, top: int = 25) -> str:
    """cProfile a replay of the workload; the top functions by cumulative and by internal time."""
    import cProfile
    import io
    import pstats

    meta = json.loads((work / "meta.json").read_text())
    replayer = _load(work / "contracts.yaml")
    prof = cProfile.Profile()
    prof.enable()
    _feed(replayer, work / "events.jsonl", progress=True)
    result = replayer.finish(_until(meta))
    with open(os.devnull, "wb") as out:
        for line in result.sorted_lines():
            out.write(line + b"\n")
    prof.disable()
    prof.dump_stats(str(work / "replay.prof"))
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def _memory_in_child(work: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.replay", "--memory-probe", str(work)]
    done = subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def use_pure_python() -> None:
    """Import the plain-Python core even where `make compiled` left its `.so` files: a finder ahead
    of the default ones loads `events.*` / `policies.*` from their `.py` (the compiled and the pure
    build measured side by side, from one checkout). Call before the core is imported."""
    import importlib.machinery
    import importlib.util

    class _SourceFirst(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if fullname.partition(".")[0] not in ("events", "policies") or path is None:
                return None
            for entry in path:
                source = Path(entry) / (fullname.rpartition(".")[2] + ".py")
                if source.is_file():
                    return importlib.util.spec_from_file_location(fullname, source)
            return None

    loaded = [name for name in sys.modules if name.partition(".")[0] in ("events", "policies") and "." in name]
    if loaded:
        raise RuntimeError(f"use_pure_python() after the core was imported: {loaded[:3]}")
    sys.meta_path.insert(0, _SourceFirst)


def compiled_modules() -> list[str]:
    """The core modules running compiled in this process (mypyc `.so`), sorted."""
    return sorted(name for name, module in sys.modules.items()
                  if name.partition(".")[0] in ("events", "policies")
                  and getattr(module, "__file__", "") and not module.__file__.endswith(".py"))


#: A child process timing one engine's replay of a workload (side by side): the engine's own
#: `bench.replay` functions, from its checkout; CPU counted from after the contracts load.
_ENGINE_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import bench.replay as br
if sys.argv[3] == "pure":
    br.use_pure_python()
loaded = br._load
mark = {}
def _load(path):
    replayer = loaded(path)
    mark["cpu"] = time.process_time()
    return replayer
br._load = _load
figures = br.replay_timed(br.Path(sys.argv[2]), progress=False)
figures["cpu_seconds"] = time.process_time() - mark["cpu"]
print(json.dumps(figures, default=str))
"""


def side_by_side(work: Path, engines: list[str], rounds: int) -> dict[str, Any]:
    """Each engine's replay of `work` in a process of its own, `rounds` times, interleaved (so the
    machine's load falls on all alike), next to the json.loads baseline measured once per round.
    An engine is `compiled` (this checkout as built), `pure` (this checkout, plain-Python core) or
    the path of another checkout (e.g. `git worktree add /tmp/w59 59ff423`). Best of the rounds."""
    runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in engines}
    bases = []
    for round_ in range(rounds):
        bases.append(baseline(work / "events.jsonl", 1))
        for engine in engines:
            tree = str(ROOT) if engine in ("compiled", "pure") else engine
            done = subprocess.run([sys.executable, "-c", _ENGINE_RUN, tree, str(work), engine], check=True,
                                  cwd=tree, stdout=subprocess.PIPE, text=True)
            runs[engine].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  round {round_ + 1} {engine}: {runs[engine][-1]['seconds']:.1f} s "
                  f"(cpu {runs[engine][-1]['cpu_seconds']:.1f} s)", file=sys.stderr, flush=True)
    return {"baseline": bases, "runs": runs, "load": os.getloadavg()}


def side_by_side_table(meta: dict[str, Any], figures: dict[str, Any]) -> str:
    base = min(figures["baseline"], key=lambda b: b["seconds"])
    out = [f"workload: {meta['events']:,} lines, {meta['tickets']:,} tickets, {meta['customers']:,} customers; "
           f"baseline (read + json.loads) {base['rate']:,.0f} lines/s ({base['seconds']:.2f} s), "
           f"load average at the end {figures['load'][0]:.1f}", "",
           "| engine | replay wall, best (all rounds) | CPU, best | lines/s | replay / baseline | outputs |",
           "|---|---|---|---|---|---|"]
    for engine, runs in figures["runs"].items():
        best = min(runs, key=lambda r: r["seconds"])
        cpu = min(r["cpu_seconds"] for r in runs)
        every = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        out.append(f"| {engine} | {best['seconds']:.1f} s ({every}) | "
                   f"{cpu:.1f} s | {best['rate']:,.0f} | {best['rate'] / base['rate'] * 100:.1f} % | {best['outputs']:,} |")
    return "\n".join(out)


def contracts_verdict(contracts: int, ratio: float) -> str:
    """Issue 16's load target is for 12,000 contracts (bench.contracts_load); with fewer, fixed costs
    dominate both sides and the ratio is reported, not judged."""
    if contracts < TARGET_CONTRACTS_AT:
        return f"target <= {TARGET_CONTRACTS_LOAD} at {TARGET_CONTRACTS_AT:,}: judged by bench.contracts_load"
    return f"target <= {TARGET_CONTRACTS_LOAD}: {'met' if ratio <= TARGET_CONTRACTS_LOAD else 'NOT met'}"


def machine() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs")


def table(meta: dict[str, Any], base: dict[str, Any], rep: dict[str, Any], mem: dict[str, Any] | None,
          contracts: dict[str, Any] | None = None, jobs: dict[str, Any] | None = None) -> str:
    ratio = rep["rate"] / base["rate"]
    rows = [
        ("machine", machine()),
        ("workload", f"{meta['events']:,} lines, {meta['tickets']:,} tickets, {meta['customers']:,} customers, "
                     f"{meta['services']:,} services, {meta['start'][:10]} .. {meta['last_event'][:10]}, "
                     f"--until {meta['until']}"),
        ("baseline: read + json.loads", f"{base['rate']:,.0f} lines/s ({base['seconds']:.2f} s, best of {base.get('repeat', 3)})"),
        ("replay: decode + core + encode + sort + write", f"{rep['rate']:,.0f} lines/s ({rep['seconds']:.1f} s: "
         f"feed {rep['feed_seconds']:.1f}, finish {rep['finish_seconds']:.1f}, sort+write {rep['sort_write_seconds']:.1f})"),
        ("replay / baseline", f"{ratio * 100:.1f} % (target >= {TARGET_RATIO * 100:.0f} %: "
                              f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"),
        ("contracts load (not in the rate)", f"{rep['contracts_seconds']:.2f} s"),
        ("outputs / dead letters", f"{rep['outputs']:,} / {rep['dead_letters']:,}"),
        ("open tickets at the end", f"{rep['open_tickets']:,}"),
        ("peak RSS, timed run", f"{rep['max_rss_mb']:,.0f} MB"),
    ]
    if contracts is not None:
        rows.append(("contracts load / bare CSafeLoader parse",
                     f"{contracts['load_seconds']:.2f} s / {contracts['parse_seconds']:.2f} s = "
                     f"{contracts['ratio']:.2f} ({contracts['contracts']:,} contracts; first load {contracts['first_ratio']:.2f}; "
                     f"{contracts_verdict(contracts['contracts'], contracts['ratio'])})"))
    if jobs is not None:
        n = jobs["jobs"]
        rows.append((f"replay_file --jobs {n} vs --jobs 1 (wall, contracts load included)",
                     f"{jobs['seconds_1']:.1f} s / {jobs[f'seconds_{n}']:.1f} s = **{jobs['speedup']:.2f} x** "
                     f"({jobs[f'used_{n}']} processes used; outputs "
                     f"{'byte-identical' if jobs['identical'] else 'DIFFERENT'})"))
        rows.append(("the same in CPU on the critical path (parent + busiest job)",
                     f"{jobs['cpu_1']:.1f} s / {jobs[f'cpu_{n}']:.1f} s = **{jobs['cpu_speedup']:.2f} x** (jobs "
                     + ", ".join(f"{c:.1f}" for c in jobs[f'jobs_cpu_{n}']) + " s): the wall speed-up on idle CPUs"))
    if mem is not None:
        per = mem["per_open_ticket"]
        rows += [
            ("memory per open ticket (state + due index)",
             f"{per:,.0f} B (state {mem['per_open_ticket_state_only']:,.0f} B; target <= {TARGET_BYTES_PER_TICKET} B: "
             f"{'met' if per <= TARGET_BYTES_PER_TICKET else 'NOT met'})"),
            ("residue per closed ticket (idempotency digests)",
             f"{mem['per_closed_ticket']:,.0f} B x {mem['closed_tickets']:,}"),
            ("output buffer (held for the sort)", f"{mem['output_buffer_bytes'] / 2**20:,.0f} MB, {mem['per_output']:,.0f} B per output"),
            ("traced peak (tracemalloc, after contracts load)", f"{mem['traced_peak_bytes'] / 2**20:,.0f} MB"),
            ("peak RSS, tracemalloc run", f"{mem['max_rss_mb']:,.0f} MB"),
        ]
    out = ["| measure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--late-fraction", type=float, default=0.0)
    parser.add_argument("--quick", action="store_true", help="100,000 events and 10,000 tickets")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="default",
                        help="default: today's mix; long-open: 30 %% of the tickets open all along; "
                             "many-customers: a customer per 10 tickets")
    parser.add_argument("--jobs", type=int, default=2, help="also time replay_file --jobs N against --jobs 1 (0: skip)")
    parser.add_argument("--no-contracts", action="store_true",
                        help="skip timing the contracts load against a bare CSafeLoader parse")
    parser.add_argument("--repeat", type=int, default=3, help="baseline repetitions (best taken)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--profile", action="store_true", help="also cProfile a replay and print the top 25")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--engines", nargs="+", metavar="ENGINE",
                        help="only the replay, side by side: compiled, pure, or the path of another checkout")
    parser.add_argument("--rounds", type=int, default=2, help="--engines: runs of each engine, interleaved")
    parser.add_argument("--pure", action="store_true",
                        help="run the plain-Python core even where the compiled build (make compiled) exists")
    parser.add_argument("--memory-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.pure:
        use_pure_python()
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0
    if args.quick:
        args.events, args.tickets = 100_000, 10_000
    work = named_workload(args.workload, args.events, args.tickets, args.seed, args.late_fraction)
    meta = json.loads((work / "meta.json").read_text())
    print(f"workload {work} ({meta['events']:,} lines)", file=sys.stderr, flush=True)
    if args.engines:
        print(side_by_side_table(meta, side_by_side(work, args.engines, args.rounds)))
        return 0
    base = baseline(work / "events.jsonl", args.repeat)
    base["repeat"] = args.repeat
    print(f"baseline {base['rate']:,.0f} lines/s", file=sys.stderr, flush=True)
    rep = replay_timed(work)
    print(f"replay {rep['rate']:,.0f} lines/s", file=sys.stderr, flush=True)
    contracts = None
    if not args.no_contracts:
        from bench.contracts_load import measure
        contracts = measure(work / "contracts.yaml")
        print(f"contracts load / parse {contracts['ratio']:.2f}", file=sys.stderr, flush=True)
    jobs = None
    if args.jobs > 1:
        jobs = jobs_timed(work, args.jobs)
        print(f"--jobs {args.jobs} speed-up {jobs['speedup']:.2f}", file=sys.stderr, flush=True)
    mem = None if args.no_memory else _memory_in_child(work)
    print(table(meta, base, rep, mem, contracts, jobs))
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "baseline": base, "replay": rep, "memory": mem,
                                         "contracts": contracts, "jobs": jobs, "machine": machine()},
                                        indent=2, default=str) + "\n")
    if args.profile:
        print()
        print(profile(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
