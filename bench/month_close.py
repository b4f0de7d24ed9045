"""Month-close benchmark: the cost of closing one month for N customers x 5 services with M outages.

One measurement (`measure`) of a size (customers, outages):

- generate (deterministic for the seed) N Vectorize Pro / Enterprise customers with 5 services
  each, and M outages spread over March 2026 as JSON lines: started and/or reported, resolved
  (a few never), some classified (mostly `excluded`), and maintenance windows (notice of
  1 to 3 days, a few cancelled, half of them with an outage inside);
- install the contracts in a `policies.processor.Processor` (not timed in the close);
- feed: `events.codec.decode` + `Processor.apply` for every line (timed apart: the feed);
- close: `Processor.advance_to(2026-04-01T01:00:01Z)`, the first instant after March's close
  instant (month end + the 1 h delay), which emits 5N `uptime.month_closed` and the
  `refund.eligible` of every service below its commitment — the figure of this benchmark;
- encode: `streams.wire.to_bytes` of those outputs (what replay writes; timed apart);
- baseline: `bench.replay.baseline` (read the file in binary + `json.loads` every line, best of 3)
  over the same event lines written to a file: the replay benchmark's reference figure.

Wall time (`time.perf_counter`) and process CPU time (`time.process_time`) are both reported:
the machine is shared, and CPU time is what the ratios should be read from.

    python -m bench.month_close                      # the size matrix (see SIZES), one child process per size
    python -m bench.month_close --density            # 500 services with 10k and 100k outages (DENSITY_SIZES)
    python -m bench.month_close --shared             # SPEC §11: N customers on the same 5 shared services (SHARED_SIZES)
    python -m bench.month_close --size 10000 100000  # one size, in this process
    python -m bench.month_close --size 1000 100000 --profile   # + cProfile of the close (top 20)
    python -m bench.month_close --size 1000 10000 --json a.json   # then: --tables a.json b.json ...

Results are printed as a markdown table (and as JSON with --json).
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
SERVICES_PER_CUSTOMER = 5
MONTH = "2026-03"
MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 4, 1, tzinfo=UTC)
# The first instant after March's close instant (month end + the default 1 h close delay).
CLOSE_AT = MONTH_END + timedelta(hours=1, seconds=1)
ENTERPRISE_COMMITMENTS = ("99.9", "99.95", "99.99")
EXCLUDED_CATEGORIES = ("third_party", "customer_caused", "force_majeure")

# (customers, outages): a base, outages x10 at the same customers, customers x10 at the same
# outages, and both x10 (the 10k customers x 100k outages).
SIZES = ((1_000, 10_000), (1_000, 100_000), (10_000, 10_000), (10_000, 100_000))
# Outages per service is what a service's close iterates over: 20 and 200 a month (--density).
DENSITY_SIZES = ((100, 10_000), (100, 100_000))
# SPEC §11 (--shared): every customer subscribes to the same 5 services, with a region and component
# list drawn from a few (so a handful of distinct scopes a service); the 10k customers with
# 1,000 outages, against 1,000 customers (customers x10) and 10k outages (outages x10).
SHARED_SIZES = ((1_000, 1_000), (10_000, 1_000), (10_000, 10_000))
SHARED_SERVICES = tuple(f"shared-s{j}" for j in range(SERVICES_PER_CUSTOMER))
REGIONS = ("eu-west", "us-east", "ap-south")
COMPONENTS = ("search", "ingest", "console")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Workload:
    """Contracts (YAML-shaped dicts, the fields of `contract.upserted`) and the event lines in time order."""

    customers: int
    outages: int
    seed: int
    contracts: list[dict[str, Any]]
    lines: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> int:
        return self.meta.get("services", self.customers * SERVICES_PER_CUSTOMER)


def _scope(rng: random.Random) -> dict[str, Any]:
    """A subscriber's scope on a shared service: no region a quarter of the time, no list half of it."""
    scope: dict[str, Any] = {}
    if rng.random() < 0.75:
        scope["region"] = rng.choice(REGIONS)
    if rng.random() < 0.5:
        scope["components"] = sorted(rng.sample(COMPONENTS, rng.randint(1, 2)))
    return scope


def _event_scope(rng: random.Random) -> dict[str, Any]:
    """An outage's or window's scope: mostly the whole service, sometimes one region or one component."""
    scope: dict[str, Any] = {}
    if rng.random() < 0.3:
        scope["regions"] = [rng.choice(REGIONS)]
    if rng.random() < 0.2:
        scope["components"] = [rng.choice(COMPONENTS)]
    return scope


def _contracts(rng: random.Random, customers: int, shared: bool = False) -> list[dict[str, Any]]:
    entries = []
    for i in range(customers):
        customer_id = f"mc{i:06d}"
        entry: dict[str, Any] = {"customer_id": customer_id, "policy": "vectorize",
                                 "plan": "enterprise" if rng.random() < 0.4 else "pro"}
        if entry["plan"] == "enterprise":  # Enterprise's commitment is an order-form value
            entry["overrides"] = {"uptime_commitment_percent": rng.choice(ENTERPRISE_COMMITMENTS)}
        services = []
        for j in range(SERVICES_PER_CUSTOMER):
            fee = f"{rng.randint(100, 20_000)}.{rng.randint(0, 99):02d}"
            svc = {"service_id": SHARED_SERVICES[j] if shared else f"{customer_id}-s{j}", "currency": "USD"}
            if shared:
                svc.update(_scope(rng))
            svc["annual_fee" if rng.random() < 0.1 else "monthly_fee"] = fee
            services.append(svc)
        entry["services"] = services
        entry["effective_from"] = _iso(MONTH_START)
        entries.append(entry)
    return entries


class _Events:
    def __init__(self) -> None:
        self.items: list[tuple[datetime, int, str, dict[str, Any]]] = []

    def add(self, t: datetime, type_: str, **fields: Any) -> None:
        self.items.append((t, len(self.items), type_, fields))


def _outage(ev: _Events, rng: random.Random, service_id: str, outage_id: str, start: datetime,
            duration: timedelta, scope: dict[str, Any] | None = None) -> dict[str, int]:
    """The events of one outage inside the month; returns what it drew (for the meta counts)."""
    last = MONTH_END - timedelta(seconds=1)
    end = min(start + duration, last)
    drew = {"started": 0, "reported": 0, "resolved": 0, "unresolved": 0, "partial": 0,
            "classified_excluded": 0, "classified_provider": 0}
    started = rng.random() < 0.85
    if started:
        fields = {"outage_id": outage_id, "service_id": service_id, **(scope or {})}
        if rng.random() < 0.05:
            fields["scope"] = "partial"
            drew["partial"] = 1
        ev.add(start, "outage.started", **fields)
        drew["started"] = 1
    if not started or rng.random() < 0.4:  # a customer report: alone, or before / after the alert
        at = start + timedelta(seconds=rng.randint(-20 * 60, 20 * 60)) if started else start
        at = max(MONTH_START, min(at, end - timedelta(seconds=1)))
        ev.add(at, "outage.reported", outage_id=outage_id, service_id=service_id, ticket_id=f"R-{outage_id}")
        drew["reported"] = 1
    if rng.random() < 0.99:
        ev.add(end, "outage.resolved", outage_id=outage_id, service_id=service_id)
        drew["resolved"] = 1
        if rng.random() < 0.15:  # classified some time after, still before the month ends
            at = min(end + timedelta(seconds=rng.randint(600, 2 * 86400)), last)
            if rng.random() < 2 / 3:
                ev.add(at, "outage.classified", outage_id=outage_id, service_id=service_id, cause="excluded",
                       category=rng.choice(EXCLUDED_CATEGORIES))
                drew["classified_excluded"] = 1
            else:
                ev.add(at, "outage.classified", outage_id=outage_id, service_id=service_id, cause="provider")
                drew["classified_provider"] = 1
    else:
        drew["unresolved"] = 1  # counts until the month's end
    return drew


def _duration(rng: random.Random) -> timedelta:
    """Log-normal around ~35 min, 2 min to 12 h (as bench.generate)."""
    return timedelta(seconds=int(min(12 * 3600, max(120, 60 * 35 * rng.lognormvariate(0, 1.1)))))


def generate(customers: int, outages: int, seed: int = 1, shared: bool = False) -> Workload:
    """N customers x 5 services and exactly `outages` outages over March 2026 (plus outages // 10
    maintenance windows), as event lines sorted by occurred_at. Deterministic for the seed.
    `shared`: the 5 services are the same for every customer (SPEC §11), each subscriber and
    event with a scope (`_scope`, `_event_scope`)."""
    rng = random.Random(seed)
    contracts = _contracts(rng, customers, shared)
    service_ids = list(SHARED_SERVICES) if shared else [s["service_id"] for c in contracts for s in c["services"]]

    def scope() -> dict[str, Any] | None:
        return _event_scope(rng) if shared else None

    ev = _Events()
    counts: dict[str, int] = {}

    def tally(drew: dict[str, int]) -> None:
        for k, v in drew.items():
            counts[k] = counts.get(k, 0) + v

    n_out = 0
    windows = outages // 10
    span = int((MONTH_END - MONTH_START).total_seconds())
    for w in range(windows):
        service_id = rng.choice(service_ids)
        mid = f"mnt-{w + 1:07d}"
        notice = timedelta(hours=rng.choices((72, 48, 24), weights=(3, 2, 1))[0])
        length = timedelta(minutes=rng.choice((30, 60, 90, 120, 180, 240)))
        room = span - int((notice + length).total_seconds())
        begins = MONTH_START + notice + timedelta(seconds=rng.randint(0, room) // 900 * 900)
        ev.add(begins - notice, "maintenance.scheduled", maintenance_id=mid, service_id=service_id,
               starts_at=_iso(begins), ends_at=_iso(begins + length), **(scope() or {}))
        counts["windows"] = counts.get("windows", 0) + 1
        if rng.random() < 0.05:
            ev.add(begins - notice + (notice // 2), "maintenance.cancelled", maintenance_id=mid, service_id=service_id)
            counts["windows_cancelled"] = counts.get("windows_cancelled", 0) + 1
        if rng.random() < 0.5 and n_out < outages:  # something goes down inside the window
            n_out += 1
            at = begins + timedelta(seconds=rng.randint(0, int(length.total_seconds()) // 2))
            tally(_outage(ev, rng, service_id, f"out-{n_out:07d}", at, begins + length - at, scope()))
            counts["outages_in_windows"] = counts.get("outages_in_windows", 0) + 1
    latest_start = span - 13 * 3600
    while n_out < outages:
        n_out += 1
        start = MONTH_START + timedelta(seconds=rng.randint(0, latest_start))
        tally(_outage(ev, rng, rng.choice(service_ids), f"out-{n_out:07d}", start, _duration(rng), scope()))
    ev.items.sort(key=lambda it: (it[0], it[1]))
    lines = []
    for seq, (t, _n, type_, fields) in enumerate(ev.items, 1):
        record = {"event_id": f"mc-{seq:09d}", "type": type_, "occurred_at": _iso(t)}
        record.update(fields)
        lines.append(json.dumps(record, separators=(",", ":")))
    meta = {"customers": customers, "services": len(service_ids), "outages": n_out, "seed": seed, "shared": shared,
            "month": MONTH, "events": len(lines), "close_at": _iso(CLOSE_AT), **dict(sorted(counts.items()))}
    return Workload(customers, n_out, seed, contracts, lines, meta)


# --------------------------------------------------------------------------- phases


def build_processor(work: Workload):
    """A processor with every contract installed (the catalog's validation and resolution included)."""
    from events.contract import ContractTerms
    from policies.catalog import default_catalog
    from policies.contracts import contract_from_terms
    from policies.processor import Processor

    catalog = default_catalog()
    processor = Processor(catalog)
    for entry in work.contracts:
        processor.install(contract_from_terms(ContractTerms.model_validate(entry), catalog))
    return processor


def feed(processor, lines: list[str]) -> dict[str, int]:
    """Decode and apply every line; the counts of outputs, rejections and undecodable lines."""
    from events.codec import DeadLetterReason, decode

    outputs = rejected = undecodable = 0
    apply = processor.apply
    for n, line in enumerate(lines, 1):
        ev = decode(line, f"line {n}")
        if isinstance(ev, DeadLetterReason):
            undecodable += 1
            continue
        out, rejection = apply(ev)
        outputs += len(out)
        rejected += rejection is not None
    return {"outputs": outputs, "rejected": rejected, "undecodable": undecodable}


def _clock(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def baseline(lines: list[str], repeat: int = 3) -> dict[str, Any]:
    """bench.replay's baseline (read the file in binary + json.loads every line) over these lines."""
    from bench.replay import baseline as replay_baseline

    with tempfile.TemporaryDirectory(prefix="month-close-") as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return replay_baseline(path, repeat)


def _rewind_point(processor) -> tuple:
    """What a month close changes in the processor. Service states are immutable (the ledger's fold
    and the close copy them), so keeping the dicts is enough to undo a close exactly."""
    return (processor.now, dict(processor.store.services), dict(processor._next_close),
            processor._closes_checked_until)


def _rewind(processor, point: tuple) -> None:
    processor.now, services, next_close, processor._closes_checked_until = point
    processor.store.services = dict(services)
    processor._next_close = dict(next_close)


class _CountedFigures:
    """`policies.uptime.month_figures` counting its calls during a close (how many times a service-month's
    intervals were computed: once per distinct scope with SPEC §11's sharing, not once per subscriber)."""

    def __enter__(self) -> "_CountedFigures":
        from policies import uptime

        self.calls = 0
        self._original = original = uptime.month_figures

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        uptime.month_figures = counted
        return self

    def __exit__(self, *exc: Any) -> None:
        from policies import uptime

        uptime.month_figures = self._original


def measure(customers: int, outages: int, seed: int = 1, repeat: int = 3, closes: int = 2,
            profile_top: int = 0, shared: bool = False) -> dict[str, Any]:
    """Generate, install, feed, then time the month close `closes` times with the garbage collector
    and `closes` times without (best of each kept; the processor is rewound between closes), and
    the encoding of its outputs."""
    from streams.wire import to_bytes

    work, gen_wall, _ = _clock(generate, customers, outages, seed, shared)
    base = baseline(work.lines, repeat)
    processor, install_wall, install_cpu = _clock(build_processor, work)
    gc.collect()
    fed, feed_wall, feed_cpu = _clock(feed, processor, work.lines)
    lines = len(work.lines)
    del work.lines[:]  # only the processor's state stays on the heap during the close
    point = _rewind_point(processor)
    # Each round closes twice: with the garbage collector as it runs in a replay (the figure),
    # then with it disabled (the work of the close alone; full collections traverse the whole heap).
    timed: dict[str, dict[str, list[float]]] = {"gc": {"walls": [], "cpus": []}, "no_gc": {"walls": [], "cpus": []}}
    collections: list[int] = []
    ids = None
    outputs: list = []
    for n in range(max(1, closes)):
        for mode in ("gc", "no_gc"):
            if ids is not None:
                _rewind(processor, point)
            outputs = []
            gc.collect()
            before = [g["collections"] for g in gc.get_stats()]
            if mode == "no_gc":
                gc.disable()
            try:
                outputs, wall, cpu = _clock(processor.advance_to, CLOSE_AT)
            finally:
                gc.enable()
            if mode == "gc":
                collections = [g["collections"] - b for g, b in zip(gc.get_stats(), before)]
            timed[mode]["walls"].append(wall)
            timed[mode]["cpus"].append(cpu)
            these = [o.event_id for o in outputs]
            if ids is not None and these != ids:
                raise AssertionError("a repeated close emitted other outputs: the rewind is incomplete")
            ids = these
    profile_text = None
    if profile_top:
        import cProfile
        import io
        import pstats

        _rewind(processor, point)
        gc.collect()
        prof = cProfile.Profile()
        prof.enable()
        processor.advance_to(CLOSE_AT)
        prof.disable()
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text).strip_dirs()
        stats.sort_stats("tottime").print_stats(profile_top)
        stats.sort_stats("cumulative").print_stats(profile_top)
        profile_text = text.getvalue()
    _rewind(processor, point)
    with _CountedFigures() as counted:
        processor.advance_to(CLOSE_AT)
    encoded, encode_wall, encode_cpu = _clock(lambda outs: [to_bytes(o) for o in outs], outputs)
    closed = [o for o in outputs if o.type == "uptime.month_closed"]
    refunds = [o for o in outputs if o.type == "refund.eligible"]
    held = [len(st.outages) for st in point[1].values()]  # outages held per service with any
    result = {
        "customers": customers, "services": work.services, "outages": work.outages, "events": lines,
        "meta": work.meta, "baseline": base,
        "generate_seconds": gen_wall,
        "install": {"wall": install_wall, "cpu": install_cpu},
        "feed": {"wall": feed_wall, "cpu": feed_cpu, **fed},
        "close": {"wall": min(timed["gc"]["walls"]), "cpu": min(timed["gc"]["cpus"]), **timed["gc"],
                  "gc_collections": collections},
        "close_no_gc": {"wall": min(timed["no_gc"]["walls"]), "cpu": min(timed["no_gc"]["cpus"]), **timed["no_gc"]},
        "encode": {"wall": encode_wall, "cpu": encode_cpu, "bytes": sum(len(b) for b in encoded)},
        "month_closed": len(closed), "refunds": len(refunds), "other_outputs": len(outputs) - len(closed) - len(refunds),
        "shared": shared, "figures_computed": counted.calls,
        "downtime_services": sum(1 for o in closed if o.fields["downtime_minutes"] > 0),
        "outages_per_service": {"max": max(held, default=0), "mean": sum(held) / work.services,
                                "sum_of_squares": sum(k * k for k in held)},
    }
    if profile_text is not None:
        result["profile"] = profile_text
    return result


# --------------------------------------------------------------------------- report


def _in_child(customers: int, outages: int, seed: int, repeat: int, closes: int, shared: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.month_close", "--size", str(customers), str(outages),
           "--seed", str(seed), "--repeat", str(repeat), "--closes", str(closes), "--raw",
           *(["--shared"] if shared else [])]
    done = subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def size_table(results: list[dict[str, Any]]) -> str:
    rows = ["| customers | services | outages | event lines | baseline: read + json.loads | feed (decode + apply) "
            "| **close: wall / CPU** | close CPU, GC off | close CPU per service | month_closed / refunds | encode outputs |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        close = r["close"]
        rows.append(
            f"| {r['customers']:,} | {r['services']:,} | {r['outages']:,} | {r['events']:,} "
            f"| {r['baseline']['rate']:,.0f} lines/s ({r['baseline']['seconds']:.2f} s) "
            f"| {r['feed']['cpu']:.1f} s CPU ({r['events'] / r['feed']['cpu']:,.0f} lines/s) "
            f"| **{close['wall']:.2f} s / {close['cpu']:.2f} s** | {r['close_no_gc']['cpu']:.2f} s "
            f"| {close['cpu'] / r['services'] * 1e6:,.0f} µs "
            f"| {r['month_closed']:,} / {r['refunds']:,} "
            f"| {r['encode']['cpu']:.2f} s CPU |")
    if any(r.get("shared") for r in results):
        rows += ["", "| customers (shared 5 services) | outages | month_closed | service-month figures computed |",
                 "|---:|---:|---:|---:|"]
        rows += [f"| {r['customers']:,} | {r['outages']:,} | {r['month_closed']:,} | {r['figures_computed']:,} |"
                 for r in results if r.get("shared")]
    return "\n".join(rows)


# (from, to, what a cost linear in services + outages allows): each pair changes one size at a time,
# except the last, which changes both.
COMPARISONS = (
    ((1_000, 10_000), (1_000, 100_000), "outages x10, same services: <= x10 (~x1 if the per-service work dominates)"),
    ((10_000, 10_000), (10_000, 100_000), "outages x10, same services: <= x10"),
    ((1_000, 10_000), (10_000, 10_000), "customers x10, same outages: <= x10 (the 5N closes)"),
    ((1_000, 100_000), (10_000, 100_000), "customers x10, same outages: <= x10"),
    ((1_000, 10_000), (10_000, 100_000), "both x10: x10"),
    ((100, 10_000), (100, 100_000), "outages x10, same 500 services (20 -> 200 a service): <= x10"),
    ((10, 10_000), (10, 100_000), "outages x10, same 50 services (200 -> 2,000 a service): <= x10"),
)
SHARED_COMPARISONS = (
    ((1_000, 1_000), (10_000, 1_000), "customers x10 on the same 5 services: ~x10 (customers x outages: x10 too, "
                                      "but from a x1,000-larger base)"),
    ((10_000, 1_000), (10_000, 10_000), "outages x10, same customers: ~x1 (customers x outages would give x10)"),
)


def ratio_table(results: list[dict[str, Any]], comparisons: tuple = COMPARISONS) -> str:
    by = {(r["customers"], r["outages"]): r for r in results}
    rows = ["| from (customers / outages) | to | close CPU ratio | close wall ratio | CPU ratio, GC off "
            "| linear would give |",
            "|---|---|---:|---:|---:|---|"]
    for a, b, linear in comparisons:
        if a in by and b in by:
            ra, rb = by[a], by[b]
            rows.append(f"| {a[0]:,} / {a[1]:,} | {b[0]:,} / {b[1]:,} "
                        f"| **{rb['close']['cpu'] / ra['close']['cpu']:.1f}** | {rb['close']['wall'] / ra['close']['wall']:.1f} "
                        f"| {rb['close_no_gc']['cpu'] / ra['close_no_gc']['cpu']:.1f} "
                        f"| {linear} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.month_close", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", nargs=2, type=int, metavar=("CUSTOMERS", "OUTAGES"),
                        help="measure one size in this process (default: the matrix SIZES, one child each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="baseline repetitions (best taken)")
    parser.add_argument("--closes", type=int, default=2,
                        help="month closes timed per size, with and without the GC each (best kept)")
    parser.add_argument("--profile", type=int, nargs="?", const=20, default=0, metavar="TOP",
                        help="cProfile the close and print the top functions (with --size)")
    parser.add_argument("--density", action="store_true",
                        help="measure DENSITY_SIZES (100 customers, 10k and 100k outages) instead of SIZES")
    parser.add_argument("--shared", action="store_true",
                        help="SPEC §11: every customer on the same 5 services (with --size, or SHARED_SIZES)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--tables", type=Path, nargs="+", metavar="JSON",
                        help="only print the tables of results saved with --json (one size or a list each)")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.tables is not None:
        results = []
        for path in args.tables:
            saved = json.loads(path.read_text())
            results += saved if isinstance(saved, list) else [saved]
    elif args.size is not None:
        result = measure(*args.size, seed=args.seed, repeat=args.repeat, closes=args.closes,
                         profile_top=args.profile, shared=args.shared)
        if args.raw:
            print(json.dumps(result))
            return 0
        results = [result]
    else:
        results = []
        sizes = SHARED_SIZES if args.shared else DENSITY_SIZES if args.density else SIZES
        for customers, outages in sizes:
            print(f"size {customers:,} customers x {outages:,} outages ...", file=sys.stderr, flush=True)
            results.append(_in_child(customers, outages, args.seed, args.repeat, args.closes, args.shared))
            r = results[-1]
            print(f"  close {r['close']['wall']:.2f} s wall, {r['close']['cpu']:.2f} s CPU", file=sys.stderr, flush=True)
    print(size_table(results))
    if len(results) > 1:
        print()
        print(ratio_table(results, SHARED_COMPARISONS if any(r.get("shared") for r in results) else COMPARISONS))
    for r in results:
        if "profile" in r:
            print()
            print(r["profile"])
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
