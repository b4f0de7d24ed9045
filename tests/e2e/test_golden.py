"""Golden scenarios: hand-computed expectations (tests/golden/*/README.md) against `slaproc replay`."""
from __future__ import annotations

import pytest

from tests.golden_support import Scenario, compare, scenarios


@pytest.mark.parametrize("path", scenarios(), ids=lambda p: p.name)
def test_golden_scenario(path):
    scenario = Scenario.load(path)
    outputs = scenario.replay()
    instants = [o["occurred_at"] for o in outputs]
    assert instants == sorted(instants), "replay output must be ordered by occurred_at"
    assert all(o["event_id"].startswith("sla-") for o in outputs)
    actual = [{k: v for k, v in o.items() if k != "event_id"} for o in outputs
              if scenario.types is None or o["type"] in scenario.types]
    problems = compare(scenario.expected(), actual, scenario.subset)
    assert not problems, f"{scenario.name}: outputs differ from the hand-computed expectation\n" + "\n".join(problems)


@pytest.mark.parametrize("path", scenarios()[:4], ids=lambda p: p.name)
def test_replay_is_byte_identical(path):
    scenario = Scenario.load(path)
    assert scenario.replay() == scenario.replay()
