"""The packed per-ticket containers give back exactly what was put in (policies/compact.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from policies.compact import History, IdMap

_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)

instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
                        timezones=st.just(timezone.utc))
entries = st.tuples(instants, st.integers(0, 2**32 - 1), st.sampled_from("oprsyzc"),
                    st.none() | st.text(max_size=128))


@_SETTINGS
@given(st.lists(entries, max_size=40))
def test_a_history_gives_back_the_entries_appended_in_order(items: list) -> None:
    history = History()
    for entry in items:
        history.append(entry)
        assert history[-1] == entry
    assert list(history) == items
    assert len(history) == len(items) and bool(history) == bool(items)
    assert History(items) == history and history == items
    back = list(history)
    assert all(ts.tzinfo is timezone.utc for ts, *_ in back)  # isoformat as before: `+00:00`
    assert [ts.isoformat() for ts, *_ in back] == [ts.isoformat() for ts, *_ in items]


def test_a_history_value_too_long_for_its_length_field_is_refused() -> None:
    history = History()
    with pytest.raises(ValueError, match="history value"):
        history.append((datetime(2026, 1, 1, tzinfo=timezone.utc), 0, "s", "x" * 0xFFFF))
    assert not history  # nothing half-written


def test_a_history_keeps_an_instant_that_is_not_utc_as_the_same_instant() -> None:
    est = timezone(timedelta(hours=-5))
    history = History([(datetime(2026, 3, 3, 9, 0, tzinfo=est), 0, "o", "high|e1")])
    assert history[-1][0] == datetime(2026, 3, 3, 14, 0, tzinfo=timezone.utc)


sla_ids = st.binary(min_size=16, max_size=16).map(lambda b: "sla-" + b.hex())
other_ids = st.text(max_size=40)  # ids of older states or anything not of the derived form
operations = st.lists(st.tuples(st.integers(-2**63, 2**63 - 1) | st.integers(0, 5), sla_ids | other_ids), max_size=30)


@_SETTINGS
@given(operations, st.lists(st.integers(0, 5) | st.integers(-2**63, 2**63 - 1), max_size=10))
def test_an_id_map_behaves_as_a_dict(ops: list, probes: list) -> None:
    model: dict[int, str] = {}
    ids = IdMap()
    for key, value in ops:
        model[key] = value
        ids[key] = value
    assert dict(ids.items()) == model and len(ids) == len(model) and bool(ids) == bool(model)
    for key in [k for k, _ in ops] + probes:
        assert (key in ids) == (key in model)
        assert ids.get(key) == model.get(key)
    assert IdMap(model.items()) == ids == model


def test_an_id_map_finds_a_key_only_at_a_record_boundary() -> None:
    # The 8 bytes of key 0 appear inside the digest of key 1's id: only a record's first 8 bytes count.
    ids = IdMap([(1, "sla-" + "00" * 16)])
    assert 0 not in ids and ids.get(0) is None
    with pytest.raises(KeyError):
        ids[0]
    assert ids[1] == "sla-" + "00" * 16
