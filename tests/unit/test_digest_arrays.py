"""`policies.digests.Digests` and `EmittedKeys`: `in` by a byte search agrees with a plain array's / set's `in`."""
import sys
from array import array

from hypothesis import given, strategies as st

from policies.compact import EmittedKeys
from policies.digests import Digests

u64 = st.integers(min_value=0, max_value=2**64 - 1)
i64 = st.integers(min_value=-2**63, max_value=2**63 - 1)


@given(st.lists(u64, max_size=40), u64)
def test_digests_membership_equals_the_arrays(items, probe):
    digests, plain = Digests(items), array("Q", items)
    assert (probe in digests) == (probe in plain)
    for item in items:
        assert item in digests


def test_a_match_across_two_items_is_not_membership():
    # the bytes of 0x0102030405060708 straddle two items here, at an offset that is not a multiple of 8
    a, b = 0x0506070800000000, 0x0000000001020304
    digests = Digests([a, b])
    straddling = int.from_bytes(digests.tobytes()[4:12], sys.byteorder)  # the array is in native order
    assert straddling not in array("Q", [a, b]) and straddling not in digests
    assert -1 not in digests and "x" not in digests


output_keys = st.integers(min_value=0, max_value=2**12) | st.integers(min_value=0, max_value=2**40) | i64 \
    | st.builds(lambda low, cycle, generation: generation << 40 | cycle << 10 | low,
                st.integers(0, 1023), st.integers(0, 40), st.integers(0, 5000))


@given(st.lists(output_keys, max_size=60), output_keys, st.lists(output_keys, max_size=10))
def test_emitted_keys_membership_equals_a_set(items, added, probes):
    keys = EmittedKeys(items)
    keys.add(added)
    model = set(items) | {added}
    for probe in [*probes, *items, *(k ^ 1 << 10 for k in model if k >= 0), *(k + (16 << 10) for k in model)]:
        assert (probe in keys) == (probe in model)
    assert sorted(keys) == sorted(model) and len(keys) == len(model) and bool(keys)
    assert EmittedKeys(sorted(model)) == keys


def test_emitted_keys_dense_in_cycle_take_a_bit_each():
    keys = EmittedKeys(k << 10 | 0x31 for k in range(1, 1001))  # 1,000 cycles of one (kind, metric, ...)
    assert len(keys._data) == 8 * 63 and len(keys) == 1000 and list(keys) == [k << 10 | 0x31 for k in range(1, 1001)]
    assert 0x31 not in keys and (1001 << 10 | 0x31) not in keys and (500 << 10 | 0x30) not in keys
    assert not EmittedKeys() and list(EmittedKeys()) == []
