"""Output keys (`policies.tickets.OutputKey`): the packed int is the stored format of
`TicketState.emitted`, so its layout is pinned; a field the layout cannot hold is refused."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from policies.tickets import METRICS, OutputKey, TicketState, _cancel_key, _is_breach_key, _is_met_key

BREACH, MET, AT_RISK, RETRACTED, NOTICE, MET_RETRACTED = 1, 2, 3, 4, 5, 6


def test_the_packed_layout_is_the_stored_one():
    # Written out from the layout states have been saved with: threshold index x1, kind x16,
    # binding x128, metric x256, cycle x1024, generation x2**40.
    assert OutputKey(BREACH, "resolution", True, 2).pack() == 1 * 16 + 1 * 128 + 2 * 256 + 2 * 1024
    assert OutputKey(AT_RISK, "first_response", False, 1, 15).pack() == 15 + 3 * 16 + 0 + 0 + 1024
    assert OutputKey(MET, "update", True, 7, 0, 3).pack() == 2 * 16 + 128 + 256 + 7 * 1024 + 3 * 2 ** 40


@given(st.sampled_from([BREACH, MET, AT_RISK, RETRACTED, NOTICE, MET_RETRACTED]), st.sampled_from(METRICS),
       st.booleans(), st.integers(0, 2 ** 30 - 1), st.integers(0, 15), st.integers(0, 2 ** 23 - 1))
def test_unpack_inverts_pack(kind, metric, binding, cycle, index, generation):
    key = OutputKey(kind, metric, binding, cycle, index, generation)
    assert OutputKey.unpack(key.pack()) == key


@pytest.mark.parametrize("key, problem", [
    (OutputKey(AT_RISK, "first_response", True, 1, 16), "threshold index 16"),
    (OutputKey(AT_RISK, "first_response", True, 1, -1), "threshold index -1"),
    (OutputKey(0, "first_response", True, 1), "unknown kind 0"),  # 1-7 are taken
    (OutputKey(BREACH, "update", True, 2 ** 30), "cycle"),
    (OutputKey(BREACH, "update", True, 1, 0, 2 ** 23), "generation"),
])
def test_a_field_the_layout_cannot_hold_is_refused(key, problem):
    with pytest.raises(ValueError, match=problem):
        key.pack()


def test_the_last_threshold_index_is_not_a_retraction():
    breach = OutputKey(BREACH, "first_response", True, 1).pack()
    last_at_risk = OutputKey(AT_RISK, "first_response", True, 1, 15).pack()
    assert _is_breach_key(breach) and not _is_breach_key(last_at_risk) and not _is_met_key(last_at_risk)
    assert _cancel_key(breach) == OutputKey(RETRACTED, "first_response", True, 1).pack() != last_at_risk
    met = OutputKey(MET, "resolution", False, 2, 0, 1).pack()
    assert _cancel_key(met) == OutputKey(MET_RETRACTED, "resolution", False, 2, 0, 1).pack()


def test_a_stored_state_keeps_its_keys():
    state = TicketState("T1", "c1", "v1", "production", datetime(2026, 2, 3, 15, tzinfo=timezone.utc))
    state.emitted.extend([OutputKey(BREACH, "first_response", True, 1).pack(),
                          OutputKey(AT_RISK, "update", False, 3, 2).pack()])
    assert sorted(OutputKey.unpack(k) for k in TicketState.from_json(state.to_json()).emitted) == [
        OutputKey(BREACH, "first_response", True, 1), OutputKey(AT_RISK, "update", False, 3, 2)]


def test_the_worker_refuses_more_thresholds_than_a_key_holds_at_start():
    from streams.settings import SettingsError, WorkerSettings
    assert len(WorkerSettings(at_risk_thresholds=tuple(i / 17 for i in range(1, 17))).at_risk_thresholds) == 16
    with pytest.raises(SettingsError, match="SLAPROC_AT_RISK_THRESHOLDS: at most 16 distinct thresholds, got 17"):
        WorkerSettings(at_risk_thresholds=tuple(i / 18 for i in range(1, 18)))
