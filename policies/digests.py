"""Small per-ticket sets of 64-bit digests kept as arrays, with a membership test that does
not make a Python int per item.

A module of its own because `Digests` subclasses `array`, which a compiled (mypyc) class cannot:
`policies/tickets.py` is compiled by `make compiled`, this module stays plain Python.
"""
from __future__ import annotations

import struct
from array import array
from typing import TYPE_CHECKING, Iterable


def _find_item(data: bytes, item: bytes) -> bool:
    """Whether the 8 bytes `item` are one of the 64-bit items of `data` (found at a multiple of 8)."""
    i = data.find(item)
    while i % 8 and i != -1:
        i = data.find(item, i + 1)
    return i != -1


if TYPE_CHECKING:
    _IntArray = array[int]
else:
    _IntArray = array  # not subscriptable before Python 3.12


class Digests(_IntArray):
    """An array of 64-bit digests (`array("Q")`) whose `in` searches its bytes: a ticket's seen ids
    are looked up two or three times per event, and `in` on a plain array makes a Python int of
    every item it passes."""

    __slots__ = ()
    _PACK = struct.Struct("=Q").pack

    def __new__(cls, items: Iterable[int] = ()) -> "Digests":
        return super().__new__(cls, "Q", items)  # type: ignore[return-value]  # array.__new__ returns cls

    def __contains__(self, value: object) -> bool:
        if type(value) is not int or not 0 <= value < 1 << 64:
            return super().__contains__(value)
        # `_find_item`'s first search inline (once per ticket event): the bytes are found at an item
        # boundary or not at all, but for a chance match across two items, which `_find_item` settles.
        data = self.tobytes()
        item = self._PACK(value)
        i = data.find(item)
        if i == -1:
            return False
        return i % 8 == 0 or _find_item(data, item)

