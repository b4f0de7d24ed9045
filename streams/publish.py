"""`slaproc publish contracts FILE.yaml` / `slaproc publish events FILE.jsonl` (SPEC §12).

Each entry is validated the way the worker will judge it (`events.codec.decode`, then for a
contract `policies.contracts.contract_from_event` against the policy catalog); a rejected entry is
reported with its line number and not sent. The rest go to their input topic with the topic's key
(SPEC §1): contracts by customer_id, ticket events by ticket_id, monitoring events by service_id,
under the worker's topic prefix. Exit status: 0 all sent, 1 some entries rejected (the others were
sent), 2 nothing sent (bad arguments, settings, file, or the cluster refused the connection),
3 sending failed part-way.

Re-publishing is safe: event ids are in the input (events) or derived from the contract's content
(contracts), and the worker ignores an event id it already processed.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

__all__ = ["Entry", "Reject", "contract_entries", "event_entries", "run_publish", "add_publish_parser"]

CONTRACTS = "sla.contracts"
TICKET_EVENTS = "sla.ticket-events"
MONITORING_EVENTS = "sla.monitoring-events"
TOPICS = (CONTRACTS, TICKET_EVENTS, MONITORING_EVENTS)  # = streams.app.INPUT_TOPICS (not imported: no Faust)

PUBLISH_DESCRIPTION = """\
Validate a contracts file or an events file and produce its entries to the worker's input
topics (SPEC §1), each with its topic's key. Entries that fail validation are listed on stderr
with their line number and are not sent; everything else is."""

PUBLISH_EPILOG = """\
what goes where (names after SLAPROC_TOPIC_PREFIX):
  contracts FILE.yaml   each entry of `contracts:` as a contract.upserted event on sla.contracts,
                        key customer_id; event_id from the entry's content (re-publishing an
                        unchanged contract sends the same event), occurred_at --occurred-at (now)
  events FILE.jsonl     ticket.* -> sla.ticket-events (key ticket_id); outage.* and
                        maintenance.* -> sla.monitoring-events (key service_id);
                        contract.upserted -> sla.contracts (key customer_id)

validation: the worker's own decoder (envelope, type, fields, RFC 3339 times with an offset) and,
for contracts, the policy catalog (policy, plan, timezone, holidays, order-form values).
Duplicate customer_id / service_id in one contracts file: the later entry is rejected.

The input topics must exist (the worker creates them at start with SLAPROC_PARTITIONS
partitions): publish refuses to let the broker auto-create them with another count.

connection: SLAPROC_BROKER and the SLAPROC_KAFKA_* settings, as for the worker (docs/kafka.md).

exit status: 0 all sent; 1 some entries rejected, the rest sent; 2 nothing sent (arguments,
settings, unreadable file, connection); 3 sending failed part-way (re-run: it is idempotent).

examples:
  slaproc publish contracts contracts.yaml --dry-run
  SLAPROC_BROKER=kafka://kafka:9092 slaproc publish events backfill.jsonl
"""


@dataclass(frozen=True)
class Entry:
    """One validated entry: where it goes and what is sent."""

    line: int
    topic: str  # before the prefix
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str

    def text(self, path: Path) -> str:
        return f"{path}:{self.line}: {self.reason}"[:500]


def _route(event: Any) -> tuple[str, str]:
    """Topic and key field of a decoded input event (SPEC §1)."""
    kind = event.type
    if kind == "contract.upserted":
        return CONTRACTS, "customer_id"
    if kind.startswith(("outage.", "maintenance.")):
        return MONITORING_EVENTS, "service_id"
    return TICKET_EVENTS, "ticket_id"


class _Checker:
    """The validation shared by both file kinds; remembers customers and services seen."""

    def __init__(self) -> None:
        from policies.catalog import default_catalog

        self.catalog = default_catalog()
        # a customer's terms -> line: one per effective_from (SPEC §14; service ids may be shared: SPEC §11)
        self.terms: dict[str, int] = {}

    def check(self, raw: bytes, line: int) -> Entry | Reject:
        from events.codec import DeadLetterReason, decode
        from policies.contracts import ContractError, contract_from_event, history_key

        event = decode(raw)
        if isinstance(event, DeadLetterReason):
            return Reject(line, str(event))
        topic, key_field = _route(event)
        if topic == CONTRACTS:
            try:
                terms = history_key(contract_from_event(event, self.catalog))
            except ContractError as err:
                return Reject(line, f"invalid_contract: {err}")
            if terms in self.terms:
                since = f" with effective_from {event.effective_from.isoformat()}" if event.effective_from else ""
                return Reject(line, f"duplicate: customer_id {event.customer_id!r}{since} already on line "
                                    f"{self.terms[terms]}")
            self.terms[terms] = line
            # Keyed by the terms, not the customer: sla.contracts is compacted, and one key per customer
            # would keep only its last terms of a history (SPEC §14; the worker's table uses this key).
            return Entry(line, topic, terms.encode("utf-8"), raw)
        key = getattr(event, key_field, None)
        if not key:
            return Reject(line, f"missing_field: {key_field} (the message key of {topic})")
        return Entry(line, topic, str(key).encode("utf-8"), raw)


def _yaml_entry_lines(text: str) -> list[int] | None:
    """1-based line of each item under `contracts:` (None if there is no such list)."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "contracts" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return None


def contract_event(entry: dict[str, Any], occurred_at: datetime) -> dict[str, Any]:
    """A contracts-file entry as a contract.upserted event; the id is a hash of the entry's content."""
    body = json.loads(json.dumps(entry, default=str))  # YAML dates/decimals as the strings JSON carries
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]
    return {"event_id": f"contract-{body.get('customer_id', 'unknown')}-{digest}", "type": "contract.upserted",
            "occurred_at": occurred_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "schema_version": 1, **body}


class FileError(Exception):
    """The file as a whole cannot be read (nothing is sent)."""


def contract_entries(path: Path, occurred_at: datetime) -> Iterator[Entry | Reject]:
    """Validated entries of a contracts YAML file, in file order."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        lines = _yaml_entry_lines(text)
    except OSError as exc:
        raise FileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise FileError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict) or not isinstance(data.get("contracts"), list) or lines is None:
        raise FileError(f"{path}: the file must be a mapping with a list under 'contracts' (see samples/contracts.yaml)")
    checker = _Checker()
    for entry, line in zip(data["contracts"], lines):
        if not isinstance(entry, dict):
            yield Reject(line, f"invalid_contract: an entry must be a mapping, got {type(entry).__name__}")
            continue
        raw = json.dumps(contract_event(entry, occurred_at), separators=(",", ":")).encode("utf-8")
        yield checker.check(raw, line)


def event_entries(path: Path) -> Iterator[Entry | Reject]:
    """Validated lines of a JSON-lines events file, in file order (blank lines skipped)."""
    checker = _Checker()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            yield checker.check(line, number)


class Progress:
    """'published N of M lines' on stderr: in place on a terminal, else a line every `every` seconds."""

    EVERY = 5.0  # seconds between lines when stderr is not a terminal

    def __init__(self, out: IO[str] | None, total: int, what: str) -> None:
        self.out, self.total, self.what, self.every = out, total, what, self.EVERY
        self.tty = bool(out is not None and getattr(out, "isatty", lambda: False)())
        self.last = time.monotonic()
        self.shown = False

    def update(self, done: int, rejected: int, final: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        pct = f" ({100 * done // self.total}%)" if self.total else ""
        text = f"{self.what}: {done} of {self.total} lines read{pct}, {rejected} rejected"
        if self.tty:
            self.out.write("\r" + text + ("\n" if final else ""))
        elif final and not self.shown:
            return  # small file: the summary says it all
        else:
            self.out.write(text + "\n")
        self.shown = True
        self.out.flush()


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


async def publish(entries: Iterator[Entry | Reject], *, broker_url: str, prefix: str, kafka: Any,
                  path: Path, err: IO[str], progress: Progress, dry_run: bool = False) -> tuple[dict[str, int], list[Reject]]:
    """Send the valid entries; returns (sent per topic, rejects). Raises KafkaConfigError before
    anything is sent when the cluster cannot be used."""
    from aiokafka import AIOKafkaProducer

    from streams import kafka_config

    producer = None
    if not dry_run:
        info = await kafka_config.preflight(broker_url, kafka, topics=[prefix + t for t in TOPICS])
        missing = [prefix + t for t in TOPICS if prefix + t not in info.partitions]
        if missing:
            raise kafka_config.KafkaConfigError([
                f"SLAPROC_TOPIC_PREFIX: topic {t!r} does not exist; start the worker once (it creates the input "
                f"topics with SLAPROC_PARTITIONS partitions) or check the prefix" for t in missing])
        producer = AIOKafkaProducer(**kafka_config.producer_kwargs(
            broker_url, kafka, acks="all", linger_ms=20, max_request_size=16 * 1024 * 1024))
        await producer.start()
    sent = {t: 0 for t in TOPICS}
    rejects: list[Reject] = []
    pending: list[asyncio.Future[Any]] = []
    done = 0
    try:
        for item in entries:
            done += 1
            if isinstance(item, Reject):
                rejects.append(item)
                print(item.text(path), file=err)
            else:
                if producer is not None:
                    pending.append(await producer.send(prefix + item.topic, item.value, key=item.key))
                sent[item.topic] += 1
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending = []
            progress.update(done, len(rejects))
        if pending:
            await asyncio.gather(*pending)
        progress.update(done, len(rejects), final=True)
    finally:
        if producer is not None:
            await producer.stop()
    return sent, rejects


def add_publish_parser(sub: Any) -> None:
    """`slaproc publish {contracts,events} FILE` on the CLI's subparsers."""
    from streams.worker import add_kafka_flags

    p = sub.add_parser("publish", help="validate a contracts or events file and produce it to the input topics",
                       description=PUBLISH_DESCRIPTION, epilog=PUBLISH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("contracts", "events"), help="contracts: a contracts YAML file; "
                   "events: a JSON-lines file of input events (SPEC §3)")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--broker", default=None, metavar="URL", help="env SLAPROC_BROKER (default kafka://localhost:9092)")
    p.add_argument("--topic-prefix", default=None, metavar="PREFIX", help="env SLAPROC_TOPIC_PREFIX (default none)")
    p.add_argument("--occurred-at", default=None, metavar="TS",
                   help="contracts: the contract.upserted events' occurred_at (default now); a contract without "
                        "effective_from closes uptime months from this instant's month")
    p.add_argument("--dry-run", action="store_true", help="validate only; connect to nothing, send nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary on stderr (rejects still)")
    add_kafka_flags(p)
    p.set_defaults(func=run_publish)


def run_publish(args: argparse.Namespace, environ: dict[str, str] | None = None, err: IO[str] | None = None) -> int:
    from streams.kafka_config import KafkaConfigError, KafkaSettings
    from streams.worker import kafka_env

    err = err or sys.stderr
    env = kafka_env(args, dict(os.environ if environ is None else environ))
    name = "slaproc publish"
    broker_url = (args.broker or env.get("SLAPROC_BROKER") or "kafka://localhost:9092").strip()
    prefix = (args.topic_prefix if args.topic_prefix is not None else env.get("SLAPROC_TOPIC_PREFIX", "")).strip()
    occurred_at = datetime.now(timezone.utc)
    if args.occurred_at:
        try:
            occurred_at = datetime.fromisoformat(args.occurred_at.replace("Z", "+00:00"))
        except ValueError:
            occurred_at = None  # type: ignore[assignment]
        if occurred_at is None or occurred_at.tzinfo is None:
            print(f"{name}: --occurred-at: {args.occurred_at!r} is not an RFC 3339 timestamp with an offset", file=err)
            return 2
    try:
        kafka = KafkaSettings.from_env(env)
    except KafkaConfigError as exc:
        for problem in exc.problems:
            print(f"{name}: {problem}", file=err)
        return 2
    path: Path = args.file
    if not path.is_file():
        print(f"{name}: {path}: no such file", file=err)
        return 2
    try:
        if args.kind == "contracts":
            items = list(contract_entries(path, occurred_at))  # small; read whole, so a YAML error sends nothing
            total = len(items)
            entries: Iterator[Entry | Reject] = iter(items)
        else:
            total = _count_lines(path)
            entries = event_entries(path)
        progress = Progress(None if args.quiet else err, total, f"{name} {args.kind}")
        started = time.monotonic()
        sent, rejects = asyncio.run(publish(entries, broker_url=broker_url, prefix=prefix, kafka=kafka,
                                            path=path, err=err, progress=progress, dry_run=args.dry_run))
    except FileError as exc:
        print(f"{name}: {exc}", file=err)
        return 2
    except KafkaConfigError as exc:
        for problem in exc.problems:
            print(f"{name}: {problem}", file=err)
        return 2
    except Exception as exc:  # the broker went away part-way
        print(f"{name}: sending failed ({type(exc).__name__}: {exc}); nothing is lost by re-running", file=err)
        return 3
    if not args.quiet:
        verb = "valid (dry run, nothing sent)" if args.dry_run else "sent"
        parts = ", ".join(f"{n} to {prefix}{t}" for t, n in sent.items() if n) or "nothing"
        print(f"{name}: {sum(sent.values())} {verb}: {parts}; {len(rejects)} rejected "
              f"({time.monotonic() - started:.1f} s)", file=err)
    return 1 if rejects else 0
