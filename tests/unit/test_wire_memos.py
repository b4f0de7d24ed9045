"""The direct encoder of clock outputs (`streams.wire`), with its memos of numbers and of a ticket's
string fields, writes what the validated models write: on every clock output of a replay of the
samples (twice: memos cold, then warm), and for values the memos key alike (1 and 1.0, 0.5 and 0.50)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from policies.catalog import default_catalog
from policies.contracts import load_contracts_yaml
from streams import wire
from streams.replay import Replayer

ROOT = Path(__file__).resolve().parents[2]


def _clock_outputs() -> list:
    catalog = default_catalog()
    rep = Replayer(load_contracts_yaml(ROOT / "samples" / "contracts.yaml", catalog), catalog)
    outs: list = []
    apply = rep.processor.apply

    def keep(ev, not_after=None):
        out, rejected = apply(ev, not_after=not_after)
        outs.extend(out)
        return out, rejected

    rep.processor.apply = keep  # type: ignore[method-assign]
    for i, raw in enumerate((ROOT / "samples" / "events.jsonl").read_bytes().splitlines(), 1):
        if raw.strip():
            rep.feed_line(raw, f"events.jsonl:{i}")
    rep.finish(None)
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
