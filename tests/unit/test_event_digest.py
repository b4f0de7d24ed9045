"""`event_digest` is the stored digest of an event id (a ticket's seen ids, persisted states): blake2b
with an 8-byte digest, big-endian, whatever way the hash object is made."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.tickets import event_digest


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=128))
def test_event_digest_is_blake2b_of_8_bytes(event_id):
    expected = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
    assert event_digest(event_id) == expected
    assert event_digest(event_id) == expected  # from its cache


def test_a_pinned_digest():
    assert event_digest("ev-00000001") == 18151581169677208500  # as stored in states written before
