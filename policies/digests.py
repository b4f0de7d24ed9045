"""Small per-ticket sets of 64-bit digests kept as arrays, with a membership test that does
not make a Python int per item.

A module of its own because `Digests` subclasses `array`, which a compiled (mypyc) class cannot:
`policies/tickets.py` is compiled by `make compiled`, this module stays plain Python.
"""
from __future__ import annotations

import struct
from array import array
from typing import TYPE_CHECKING, Any, Iterable, Iterator, SupportsIndex, cast


def _find_item(data: bytes, item: bytes) -> bool:
    """Whether the 8 bytes `item` are one of the 64-bit items of `data` (found at a multiple of 8)."""
    i = data.find(item)
    while i % 8 and i != -1:
        i = data.find(item, i + 1)
    return i != -1


#: The content digest of an event applied without one (`TicketState.mark_seen`: a replay keeps none
#: for an id it reads once): `SeenEvents.content_of` gives None for it, as for an id applied before
#: contents were kept. A real content digest of 0 (one chance in 2**64) reads the same: that event
#: is then not told from a conflicting duplicate of it.
NO_CONTENT = 0


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



class SeenEvents(_IntArray):
    """A ticket's applied input events: (id digest, content digest) pairs, flat in one `array("Q")`.
    `in` and iterating are over the id digests (idempotency), `content_of` gives an id's content
    digest (a reused id with other content is a conflicting duplicate, SPEC §10). One array where
    there were two (the ids alone, and the pairs again): 16 bytes an event instead of 24.

    Ids applied without a content (states written before contents were kept) are in `_only`, a
    `Digests` beside the pairs; a stored state whose pairs name an id its ids do not (none written
    by this code) keeps its ids as they were, exactly (`_Exact`)."""

    __slots__ = ("_only",)
    _PACK = struct.Struct("=Q").pack
    _only: Digests | None

    def __new__(cls, pairs: Iterable[int] = ()) -> "SeenEvents":
        self = cast("SeenEvents", super().__new__(cls, "Q", pairs))  # array.__new__ returns cls
        self._only = None
        return self

    @classmethod
    def stored(cls, ids: Iterable[int], pairs: Iterable[int]) -> "SeenEvents":
        """From the persisted id digests and (id, content) pairs (`TicketState.to_json`'s "s", "k")."""
        self = cls(pairs)
        left = sorted(ids)
        paired = sorted(array.__getitem__(self, slice(0, None, 2)))
        if paired != left:
            remaining = list(left)
            for item in paired:  # ids without a content: the ids' multiset less the pairs' ids
                try:
                    remaining.remove(item)
                except ValueError:
                    self._only = _Exact(left)  # a pair's id not among the ids: keep the ids exactly
                    return self
            self._only = Digests(remaining)
        return self

    def add(self, digest: int, content: int) -> None:
        self.extend((digest, content))

    def _index(self, value: int) -> int:
        """The item index of `value` among the pairs' ids, -1 when absent."""
        data = self.tobytes()
        item = self._PACK(value)
        i = data.find(item)
        while i % 16:  # -1 % 16 == 15: not found; else a content digest or a match across two items
            if i == -1:
                return -1
            i = data.find(item, i + 1)
        return i // 8

    def __contains__(self, value: object) -> bool:
        only = self._only
        if type(value) is not int or not 0 <= value < 1 << 64:
            return only is not None and value in only
        if only is not None and (value in only or type(only) is _Exact):
            return value in only
        # `_index` inline (once or twice per ticket event)
        data = self.tobytes()
        item = self._PACK(value)
        i = data.find(item)
        while i % 16:
            if i == -1:
                return False
            i = data.find(item, i + 1)
        return True

    def content_of(self, digest: int) -> int | None:
        """The content digest of the event with id digest `digest`, None if it has none."""
        i = self._index(digest)
        if i == -1:
            return None
        content = self[i + 1]
        return None if content == NO_CONTENT else content

    def pairs(self) -> list[int]:
        return self.tolist()

    def __iter__(self) -> Iterator[int]:
        only = self._only
        if type(only) is _Exact:
            return iter(only)
        ids = array.__getitem__(self, slice(0, None, 2))
        return iter(ids if only is None else [*ids, *only])

    def __len__(self) -> int:
        only = self._only
        if type(only) is _Exact:
            return len(only)
        return array.__len__(self) // 2 + (0 if only is None else len(only))

    def __bool__(self) -> bool:
        return self.__len__() > 0

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:  # array's would call __new__("Q", ...)
        return _seen_events, (list(self), self.tolist())

    def __copy__(self) -> "SeenEvents":
        return _seen_events(list(self), self.tolist())

    def __deepcopy__(self, memo: object) -> "SeenEvents":
        return self.__copy__()


def _seen_events(ids: list[int], pairs: list[int]) -> SeenEvents:
    return SeenEvents.stored(ids, pairs)


class _Exact(Digests):
    """`SeenEvents._only` when it holds every id exactly (see `SeenEvents`)."""

    __slots__ = ()
