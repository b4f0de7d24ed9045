"""The direct encoder of clock outputs (`streams.wire`), with its memos of numbers and of a ticket's
string fields, writes what the validated models write: on every clock output of a replay of the
samples (twice: memos cold, then warm), and for values the memos key alike (1 and 1.0, 0.5 and 0.50)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from events.codec import DeadLetterReason, decode
from policies.catalog import default_catalog
from policies.contracts import load_contracts_yaml
from policies.processor import Processor
from streams import wire

ROOT = Path(__file__).resolve().parents[2]


def _clock_outputs() -> list:
    """The outputs of the samples, applied in time order by a processor (not a Replayer: its
    processor's methods cannot be wrapped under the compiled build)."""
    catalog = default_catalog()
    proc = Processor(catalog)
    for contract in load_contracts_yaml(ROOT / "samples" / "contracts.yaml", catalog):
        proc.install(contract)
    events = [decode(raw) for raw in (ROOT / "samples" / "events.jsonl").read_bytes().splitlines() if raw.strip()]
    events = sorted((e for e in events if not isinstance(e, DeadLetterReason)), key=lambda e: (e.occurred_at, e.event_id))
    outs: list = []
    for ev in events:
        outs.extend(proc.apply(ev)[0])
    outs.extend(proc.advance_to(events[-1].occurred_at + timedelta(days=40)))
    return [o for o in outs if o.type in wire._DIRECT]


def test_clock_outputs_are_written_as_the_models_write_them():
    outs = _clock_outputs()
    assert len({o.type for o in outs}) == 3  # breached, met and at-risk all there
    for _ in range(2):
        for out in outs:
            assert wire.to_bytes(out) == wire.to_bytes_via_model(out), out


def test_equal_numbers_share_a_text():
    out = next(o for o in _clock_outputs() if o.type == "sla.at_risk")
    for amount, threshold in ((Decimal("1"), 0.5), (Decimal("1.0"), 0.50), (Decimal("1.50"), 0.75),
                              (Decimal("1.5"), 0.75)):
        target = dict(out.fields["target"], amount=amount)
        changed = out._replace(fields=dict(out.fields, target=target, threshold=threshold))
        assert wire.to_bytes(changed) == wire.to_bytes_via_model(changed)


def test_a_string_field_that_is_not_a_str_takes_the_encoder_way():
    out = next(o for o in _clock_outputs() if o.type == "sla.breached")
    odd = out._replace(fields=dict(out.fields, plan=["not", "a", "str"]))
    assert b'"plan":["not","a","str"]' in wire.to_bytes(odd)
    assert wire.to_bytes(out) == wire.to_bytes_via_model(out)
