"""`slaproc convert`: the gateway's offline twin (SPEC §13).

One webhook body per line in, native events as JSON lines out, with the ids the gateway
would give them. A line that cannot be mapped is reported on stderr with its line number
and the reason; the others are still converted; the exit status is 1 if any line was
rejected (2 if the mapping file or the input cannot be read).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import BinaryIO, TextIO

from streams.gateway.config import MappingConfigError, load_mapping
from streams.gateway.mapping import SOURCES, Unmappable, convert

CONVERT_DESCRIPTION = ("Convert webhook bodies saved from Alertmanager (or Grafana alerting), Zendesk or Jira "
                       "into slaproc's native input events, with the same event ids `slaproc gateway` gives "
                       "them: a redelivered webhook gives the same ids, so converting a body twice, or "
                       "converting what the gateway already sent, creates no duplicates.")

CONVERT_EPILOG = """\
input:
  PAYLOADS.jsonl   one webhook body per line, as the tool sent it (compact JSON). The raw
                   bodies the gateway keeps on <prefix>sla.raw-webhooks (key = source) are
                   exactly this: re-convert them after fixing the mapping.
  MAPPING.yaml     which labels / fields hold the service, customer, priority and status;
                   see samples/mapping.yaml and docs/integrations.md

output:
  native events (outage.started / outage.resolved, ticket.*) as JSON lines on stdout, in
  the order of the input; feed them to `slaproc replay` or a producer. Lines that cannot be
  mapped are reported on stderr ("line N: reason") and skipped; the exit status is then 1.
  An Alertmanager line is mapped alert by alert: a bad alert is reported ("line N: rejected:
  reason") and the line's other alerts are converted (exit status 1 too).
  Parts of a body that mean nothing for SLAs (an alert that fails `match`, a tags change)
  are listed on stderr unless --quiet.

example:
  slaproc convert --from alertmanager --mapping samples/mapping.yaml alerts.jsonl > events.jsonl
  slaproc replay events.jsonl --contracts samples/contracts.yaml --until 2026-04-01T02:00:00Z
"""


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("payloads", type=Path, metavar="PAYLOADS.jsonl", help="one webhook body per line ('-' = stdin)")
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES,
                        help="the tool that sent the bodies (Grafana alerting: alertmanager)")
    parser.add_argument("--mapping", type=Path, required=True, metavar="MAPPING.yaml")
    parser.add_argument("-q", "--quiet", action="store_true", help="report only rejected lines on stderr")


def convert_lines(source: str, mapping, lines: BinaryIO, out: BinaryIO, err: TextIO, quiet: bool = False) -> int:
    """Convert each line; returns the number of rejected lines."""
    rejected = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            conversion = convert(source, line, mapping)
        except Unmappable as exc:
            rejected += 1
            print(f"line {number}: {exc}", file=err)
            continue
        if conversion.rejected:  # the line's other parts are converted; the line still counts as rejected
            rejected += 1
            for reason in conversion.rejected:
                print(f"line {number}: rejected: {reason} (the line's other alerts are converted)", file=err)
        if conversion.truncated_alerts:
            print(f"line {number}: warning: Alertmanager dropped {conversion.truncated_alerts} alert(s) of this "
                  f"group (truncatedAlerts; set max_alerts: 0 on the receiver)", file=err)
        if not quiet:
            for note in conversion.ignored:
                print(f"line {number}: ignored: {note}", file=err)
        for event in conversion.events:
            out.write(event.value + b"\n")
    return rejected


def run_convert(args: argparse.Namespace) -> int:
    try:
        mapping = load_mapping(args.mapping)
    except (MappingConfigError, OSError) as exc:
        print(f"slaproc convert: {exc}", file=sys.stderr)
        return 2
    if mapping.section(args.source) is None:
        print(f"slaproc convert: {args.mapping}: no {args.source} section", file=sys.stderr)
        return 2
    try:
        if str(args.payloads) == "-":
            rejected = convert_lines(args.source, mapping, sys.stdin.buffer, sys.stdout.buffer, sys.stderr, args.quiet)
        else:
            with open(args.payloads, "rb") as lines:
                rejected = convert_lines(args.source, mapping, lines, sys.stdout.buffer, sys.stderr, args.quiet)
    except OSError as exc:
        print(f"slaproc convert: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    if rejected:
        print(f"slaproc convert: {rejected} line(s) rejected", file=sys.stderr)
        return 1
    return 0
