"""The replay benchmark's verdicts (bench/replay.py)."""
from __future__ import annotations


def test_the_contracts_load_target_is_judged_at_twelve_thousand_contracts_only():
    from bench.replay import contracts_verdict

    assert contracts_verdict(50, 1.77).endswith("judged by bench.contracts_load")
    assert contracts_verdict(12_000, 0.67).endswith(": met")
    assert contracts_verdict(12_000, 1.6).endswith("NOT met")
