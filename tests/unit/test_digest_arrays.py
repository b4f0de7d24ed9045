"""`policies.tickets.Digests` and `_EmittedKeys`: `in` by a byte search agrees with a plain array's `in`."""
import sys
from array import array

from hypothesis import given, strategies as st

from policies.tickets import Digests, _EmittedKeys

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


@given(st.lists(i64, max_size=40), i64, i64)
def test_emitted_keys_membership_equals_a_set(items, added, probe):
    keys = _EmittedKeys(array("q", items))
    keys.add(added)
    assert (probe in keys) == (probe in set(items) | {added})
