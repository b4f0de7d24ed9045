"""The `slaproc` command: replay, explain-month, report, whatif, worker, demo, gateway, convert."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

REPLAY_EPILOG = """\
inputs:
  EVENTS.jsonl     one input event per line (SPEC §3): event_id, type, occurred_at
                   (RFC 3339 with an offset), schema_version, and the type's fields
  CONTRACTS.yaml   `contracts:` list of customer contracts (policy, plan, timezone,
                   services with fees, order-form overrides); see samples/contracts.yaml

output:
  derived events (sla.breached, sla.met, sla.at_risk, sla.breach_retracted, notices,
  uptime.month_closed, refund.eligible, sla.attainment_reported, dead_letter) as JSON
  lines on stdout, ordered by occurred_at then key; the same input gives the same bytes.
  Bad lines become dead_letter records with a reason; processing continues.

example:
  slaproc replay samples/events.jsonl --contracts samples/contracts.yaml \\
      --until 2026-05-01T02:00:00Z > derived.jsonl
"""


def _instant(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 timestamp (e.g. 2026-05-01T00:00:00Z)") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write e.g. {text}Z")
    return t


def _is_month(text: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text) is not None


def _jobs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 64, got {text!r}")
    return int(text)


def _event_bound(args: argparse.Namespace) -> datetime:
    """SPEC §10's bound on event time for replay, whatif, explain-month and report: `--until`, else
    the wall clock + `--max-future` (read here, in the shell, never in the core)."""
    from datetime import timedelta, timezone

    until: datetime | None = args.until
    if until is not None:
        return until
    return datetime.now(timezone.utc) + timedelta(seconds=args.max_future)


def _cmd_replay(args: argparse.Namespace) -> int:
    from policies.catalog import ContractError
    from streams.replay import replay_file

    bound = _event_bound(args)
    if args.until is None:
        print(f"slaproc replay: no --until: events after {bound.isoformat()} (now + {args.max_future:g} s) "
              "are dead letters (future_timestamp)", file=sys.stderr)
    try:
        replay_file(args.events, args.contracts, args.until, sys.stdout.buffer,
                    progress=None if args.quiet else sys.stderr, bound=bound, jobs=args.jobs)
    except (ContractError, OSError) as err:
        print(f"slaproc replay: {err}", file=sys.stderr)
        return 2
    return 0


def _month_command(command: str, args: argparse.Namespace, produce: Any) -> int:
    """explain-month and report: check the month, load `--catalog`, then `produce(catalog)` (the
    text), each expected failure one line on stderr and exit 2."""
    from policies.catalog import CatalogError, ContractError, load_catalog

    if not _is_month(args.month):
        print(f"slaproc {command}: {args.month!r} is not a month; write YYYY-MM, e.g. 2026-04", file=sys.stderr)
        return 2
    try:
        produce(load_catalog(args.catalog) if args.catalog else None)
    except (CatalogError, ContractError, OSError, LookupError, ValueError) as err:
        print(f"slaproc {command}: {err}", file=sys.stderr)
        return 2
    return 0


def _time_bound(command: str, args: argparse.Namespace) -> tuple[datetime, Any]:
    """SPEC §10 for explain-month and report, as replay: events after `--until`, else after the wall
    clock + `--max-future`, are dead letters (future_timestamp); (the bound, a `warn` that names
    them on stderr)."""
    bound = _event_bound(args)

    def warn(line: str) -> None:
        why = "--until" if args.until is not None else f"now + {args.max_future:g} s, no --until"
        print(f"slaproc {command}: {line} (bound: {why})", file=sys.stderr)
    return bound, warn


def _cmd_explain_month(args: argparse.Namespace) -> int:
    from streams.explain import explain_month_from_files

    bound, warn = _time_bound("explain-month", args)

    def produce(catalog: Any) -> None:
        print(explain_month_from_files(args.events, args.contracts, args.customer, args.service, args.month, catalog,
                                       until=args.until, bound=bound, warn=warn))
    return _month_command("explain-month", args, produce)


def _cmd_whatif(args: argparse.Namespace) -> int:
    from policies.catalog import CatalogError, ContractError, default_catalog, load_catalog
    from streams.whatif import Side, compare, render, replay_both

    bound = _event_bound(args)  # on both sides alike
    if args.until is None:
        print(f"slaproc whatif: no --until: events after {bound.isoformat()} are dead letters on both sides",
              file=sys.stderr)
    try:
        catalog_a = load_catalog(args.catalog) if args.catalog else default_catalog()
        catalog_b = load_catalog(args.versus_catalog) if args.versus_catalog else catalog_a
        a, b = replay_both(args.events, Side(args.contracts, catalog_a), Side(args.versus or args.contracts, catalog_b),
                           args.until, bound, progress=None if args.quiet else sys.stderr)
    except (CatalogError, ContractError, OSError) as err:
        print(f"slaproc whatif: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(render(compare(a, b), args.format))
    return 0


def _add_whatif(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from streams.whatif import WHATIF_DESCRIPTION, WHATIF_EPILOG

    p = sub.add_parser("whatif", help="replay the same events under two contracts / catalogs and show what changes",
                       description=WHATIF_DESCRIPTION, epilog=WHATIF_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    p.add_argument("--contracts", type=Path, required=True, metavar="A.yaml", help="side A's contracts")
    p.add_argument("--versus", type=Path, metavar="B.yaml", help="side B's contracts (default: side A's)")
    p.add_argument("--catalog", type=Path, metavar="DIR", help="side A's catalog directory (default: the packaged one)")
    p.add_argument("--versus-catalog", type=Path, metavar="DIR2", help="side B's catalog directory (default: side A's)")
    p.add_argument("--until", type=_instant, metavar="TS",
                   help="advance both sides to this instant at the end (as replay --until)")
    p.add_argument("--max-future", type=float, default=3600.0, metavar="SECONDS",
                   help="without --until: events more than this ahead of the wall clock are dead letters; default 3600")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default text)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or warnings on stderr")
    p.set_defaults(func=_cmd_whatif)


def _cmd_report(args: argparse.Namespace) -> int:
    from streams.report import RENDERERS
    from streams.report.build import report_from_files

    bound, warn = _time_bound("report", args)

    def produce(catalog: Any) -> None:
        text = RENDERERS[args.format](report_from_files(args.events, args.contracts, args.customer, args.month,
                                                        args.until, catalog, bound=bound, warn=warn))
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
    return _month_command("report", args, produce)


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    return run_worker(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(args)


def version_text() -> str:
    """What decides the outputs besides the input: slaproc's own version, each policy's
    catalog version, and the holidays release (its data decides business hours)."""
    from importlib.metadata import PackageNotFoundError, version

    from policies.catalog import default_catalog

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    catalog = default_catalog()
    lines = [f"slaproc {installed('slaproc')}"]
    lines += [f"  catalog {policy} {catalog.version(policy)}" for policy in catalog.policies]
    lines.append(f"  holidays {installed('holidays')}")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """--version, computed when asked (the catalog is not loaded for other commands' --help)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print slaproc's version, the catalog version of each policy and the holidays release")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_text())
        parser.exit()


def _cmd_convert(args: argparse.Namespace) -> int:
    from streams.gateway.convert import run_convert

    return run_convert(args)


def _add_convert(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from streams.gateway.convert import CONVERT_DESCRIPTION, CONVERT_EPILOG, add_convert_arguments

    p = sub.add_parser("convert", help="webhook bodies (Alertmanager, Zendesk, Jira) -> native events, offline",
                       description=CONVERT_DESCRIPTION, epilog=CONVERT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_convert_arguments(p)
    p.set_defaults(func=_cmd_convert)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from streams.gateway.run import run_gateway

    return run_gateway(args)


def _add_gateway(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from streams.gateway.run import GATEWAY_DESCRIPTION, GATEWAY_EPILOG, add_gateway_flags

    p = sub.add_parser("gateway", help="HTTP gateway: webhooks (Alertmanager, Zendesk, Jira) -> input topics",
                       description=GATEWAY_DESCRIPTION, epilog=GATEWAY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gateway_flags(p)
    p.set_defaults(func=_cmd_gateway)


def _add_time_bound(p: argparse.ArgumentParser) -> None:
    """explain-month's and report's --until / --max-future: the time bound of replay (SPEC §10)."""
    p.add_argument("--until", type=_instant, metavar="TS",
                   help="figures as of this instant (as replay --until: time advances to it, later events are "
                        "dead letters); default: the latest event of the file")
    p.add_argument("--max-future", type=float, default=3600.0, metavar="SECONDS",
                   help="without --until: events more than this ahead of the wall clock are dead letters "
                        "(future_timestamp, named on stderr) and count for nothing, as in replay; default 3600")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slaproc",
        description="Event-sourced SLA processor: ticket clocks in business time, monthly uptime and refunds.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="derive SLA events from a JSON-lines file (no broker)",
                       description="Replay input events through the SLA core and print the derived events.",
                       epilog=REPLAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    p.add_argument("--contracts", type=Path, required=True, metavar="CONTRACTS.yaml")
    p.add_argument("--until", type=_instant, metavar="TS",
                   help="advance time to this instant at the end: fires the deadlines and closes strictly before it (a month at its end + 1 h; a quarter's attainment at its end + 1 h, or when its last ticket has a first-response outcome, at the latest its end + 7 days)")
    p.add_argument("--max-future", type=float, default=3600.0, metavar="SECONDS",
                   help="without --until: events more than this ahead of the wall clock are dead letters "
                        "(future_timestamp); default 3600")
    p.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="split the file by customer across N processes; the same output as --jobs 1 "
                        "(replayed in one process where customers' outcomes depend on each other's time)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("explain-month", help="explain a service's uptime month and refund, for a person",
                       description="Replay EVENTS and explain one customer's service month: each interval that "
                                   "counted, was excluded or was maintenance and why, then the uptime and refund "
                                   "arithmetic. A month in progress (the events end inside it) is shown as of "
                                   "the latest event (or --until) and says so; a month before the contract or after "
                                   "the events shows no figures.",
                       epilog="example:\n  slaproc explain-month acme acme-api 2026-04 samples/events.jsonl "
                              "--contracts samples/contracts.yaml --until 2026-05-01T02:00:00Z",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("customer")
    p.add_argument("service")
    p.add_argument("month", help="YYYY-MM (UTC calendar month)")
    p.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    p.add_argument("--contracts", type=Path, required=True, metavar="CONTRACTS.yaml")
    p.add_argument("--catalog", type=Path, metavar="DIR",
                   help="catalog directory with every published version (default: the packaged one); the month "
                        "is measured under the version in force at its start (SPEC §14)")
    _add_time_bound(p)
    p.set_defaults(func=_cmd_explain_month)

    p = sub.add_parser("report", help="one customer's month for an account manager: HTML, CSV or JSON",
                       description="Replay EVENTS and report one customer's month (SPEC §15): tickets by priority "
                                   "and metric (measured, met, breached, attainment), each breach with its deadline, "
                                   "uptime per service with its outage timeline, refunds with their claim deadline. "
                                   "The HTML page is self-contained (inline SVG, works offline).",
                       epilog="example:\n  slaproc report acme 2026-04 samples/events.jsonl --contracts "
                              "samples/contracts.yaml --format html --out acme-2026-04.html",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("customer")
    p.add_argument("month", help="YYYY-MM (UTC calendar month)")
    p.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    p.add_argument("--contracts", type=Path, required=True, metavar="CONTRACTS.yaml")
    p.add_argument("--format", choices=("html", "csv", "json"), default="html")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--catalog", type=Path, metavar="DIR",
                   help="catalog directory with every published version (default: the packaged one); each "
                        "ticket is measured under the version it was opened under (SPEC §14)")
    _add_time_bound(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("worker", help="run the Faust stream worker (broker from SLAPROC_BROKER)",
                       description="The stream worker: consumes the input topics (SPEC §1), keeps the clocks and "
                                   "downtime tables in Faust tables, emits the outputs, serves /metrics and the "
                                   "query API (GET /tickets/{id}, GET /services/{id}/months/{YYYY-MM}) on its "
                                   "web port. Every setting is an environment variable or a flag.",
                       epilog="example:\n  SLAPROC_BROKER=kafka://localhost:9092 slaproc worker --partitions 12",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    from streams.worker import add_worker_flags

    add_worker_flags(p)
    p.set_defaults(func=_cmd_worker)
    from streams.demo import DEMO_DESCRIPTION, DEMO_EPILOG, add_demo_flags

    p = sub.add_parser("demo", help="embedded broker + worker + sample traffic, outputs shown live",
                       description=DEMO_DESCRIPTION, epilog=DEMO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_demo_flags(p)
    p.set_defaults(func=_cmd_demo)
    _add_convert(sub)
    _add_gateway(sub)
    _add_whatif(sub)  # slaproc whatif (SPEC §14)

    from streams.publish import add_publish_parser

    add_publish_parser(sub)  # slaproc publish contracts|events FILE (SPEC §12)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("worker", "demo"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
