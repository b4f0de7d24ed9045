"""Compact containers for the per-ticket state that grows with a ticket's events.

An open ticket's history was a list of `(datetime, seq, kind, value)` tuples, about 195 bytes an
entry (tuple 72, datetime 48, value string ~70), and its output ids a dict of `sla-` strings, about
400 bytes for one or two ids. With the event id kept in every history entry (the `(occurred_at,
event_id)` fold order of SPEC §10), a quick bench workload's open ticket took 3.0 KB, over the 2 KB
target of docs/benchmarks.md. These keep the same entries in one `bytearray` each:

- `History`: per entry 15 bytes of head (instant as epoch microseconds, seq, kind letter, value
  length) and the value's UTF-8 bytes. Iterating gives the tuples back, equal to the ones appended.
- `IdMap`: int key -> `sla-` + 32 hex digits id (every id the core derives, `events.ids.output_event_id`),
  20 bytes per key below 2**32 (every output key of generation 0 up to cycle 4,194,303); any other
  key or string is kept in a dict beside it, so nothing is lost.

Plain Python (not in the compiled build's list): `bytes.find` does the searching in C.
"""
from __future__ import annotations

import re
import struct
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

Entry = tuple[datetime, int, str, "str | None"]

# instant (µs since the epoch, UTC), seq, kind (one ASCII letter), value length (_NONE: no value)
_HEAD = struct.Struct("<qIcH")
_NONE = 0xFFFF


class History:
    """A ticket's history entries `(occurred_at, seq, kind, value)` in arrival order, packed.

    Instants come back as UTC datetimes equal to the ones appended (the core holds every instant in
    UTC); a value of 65,535 UTF-8 bytes or more is refused (event ids are at most 128 characters)."""

    __slots__ = ("_data", "_count", "_last")

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._data = bytearray()
        self._count = 0
        self._last = 0  # offset of the last entry
        for entry in entries:
            self.append(entry)

    def append(self, entry: Entry) -> None:
        ts, seq, kind, value = entry
        raw = b"" if value is None else value.encode("utf-8")
        if len(raw) >= _NONE:
            raise ValueError(f"history value of {len(raw)} bytes (at most {_NONE - 1})")
        data = self._data
        self._last = len(data)
        data += _HEAD.pack((ts - _EPOCH) // _MICROSECOND, seq, kind.encode("ascii"),
                           _NONE if value is None else len(raw))
        data += raw
        self._count += 1

    def _entry_at(self, offset: int) -> tuple[Entry, int]:
        data = self._data
        micros, seq, kind, size = _HEAD.unpack_from(data, offset)
        start = offset + _HEAD.size
        if size == _NONE:
            value, end = None, start
        else:
            end = start + size
            value = data[start:end].decode("utf-8")
        return (_EPOCH + timedelta(microseconds=micros), seq, kind.decode("ascii"), value), end

    def __iter__(self) -> Iterator[Entry]:
        offset, end = 0, len(self._data)
        while offset < end:
            entry, offset = self._entry_at(offset)
            yield entry

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __getitem__(self, index: int) -> Entry:
        if index == -1 and self._count:
            return self._entry_at(self._last)[0]
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return self._data == other._data
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"History({list(self)!r})"


_ID = re.compile(r"sla-[0-9a-f]{32}")
_KEY = struct.Struct("<I")
_RECORD = _KEY.size + 16
_RECORD_KEYS = 1 << 32  # keys 0 .. 2**32 - 1 are packed; any other in the dict


class IdMap:
    """int key -> output event id: `sla-` ids of keys 0 .. 2**32 - 1 as 20-byte records (key, 16
    digest bytes) in one bytearray, any other id or key in a dict. Keys are unique: setting a key
    again replaces its id."""

    __slots__ = ("_data", "_other")

    def __init__(self, items: Iterable[tuple[int, str]] = ()) -> None:
        self._data: bytes | bytearray = b""  # a bytearray from the first record (most maps stay empty)
        self._other: dict[int, str] | None = None
        for key, value in items:
            self[key] = value

    def _find(self, key: int) -> int:
        """The offset of `key`'s record, -1 when absent."""
        if not 0 <= key < _RECORD_KEYS:
            return -1
        data, packed = self._data, _KEY.pack(key)
        i = data.find(packed)
        while i != -1 and i % _RECORD:
            i = data.find(packed, i + 1)
        return i

    def get(self, key: int, default: str | None = None) -> str | None:
        i = self._find(key)
        if i != -1:
            return "sla-" + self._data[i + _KEY.size:i + _RECORD].hex()
        if self._other is not None:
            return self._other.get(key, default)
        return default

    def __getitem__(self, key: int) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        return self._find(key) != -1 or (self._other is not None and key in self._other)

    def __setitem__(self, key: int, value: str) -> None:
        i = self._find(key)
        if 0 <= key < _RECORD_KEYS and _ID.fullmatch(value):
            if self._other is not None:
                self._other.pop(key, None)
            record = _KEY.pack(key) + bytes.fromhex(value[4:])
            data = self._data if isinstance(self._data, bytearray) else bytearray(self._data)
            if i == -1:
                data += record
            else:
                data[i:i + _RECORD] = record
            self._data = data
            return
        if i != -1:
            assert isinstance(self._data, bytearray)  # a record was found: it was written
            del self._data[i:i + _RECORD]
        if self._other is None:
            self._other = {}
        self._other[key] = value

    def items(self) -> list[tuple[int, str]]:
        data = self._data
        out = [(_KEY.unpack_from(data, i)[0], "sla-" + data[i + _KEY.size:i + _RECORD].hex())
               for i in range(0, len(data), _RECORD)]
        if self._other:
            out.extend(self._other.items())
        return out

    def __len__(self) -> int:
        return len(self._data) // _RECORD + (len(self._other) if self._other else 0)

    def __bool__(self) -> bool:
        return bool(self._data) or bool(self._other)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (IdMap, dict)):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"IdMap({dict(self.items())!r})"


# An output key (policies/tickets.py `OutputKey`): bits 0-9 threshold index, kind, binding and metric,
# bits 10-39 the cycle, bits 40-62 the generation. Keys of one (bits 0-9, generation) differ only by
# cycle, and a long-open ticket's cadence keys are dense in it: `EmittedKeys` keeps 16 cycles in a word.
_LOW_BITS = 0x3FF
_CHUNK_BITS = 0xFFFF_FFFF_FC00  # of `key >> 4`: cycle // 16 (26 bits) and generation (12 bits) above bits 0-9
_WORD_KEYS = 1 << 52  # keys from here (generation >= 4096) or negative ones are kept in a set beside the words


class EmittedKeys:
    """A set of output keys (64-bit ints) as 8-byte words in one bytearray: bytes 0-5 the key with
    the low 4 bits of its cycle dropped (bits 0-9, cycle // 16, generation), bytes 6-7 a bit per
    cycle of those 16. A ticket's record of every output it emitted: ~1 bit per cadence output
    instead of 8 bytes, and `in` is one byte search (found at a multiple of 8) and a bit test.
    Iterating gives the keys back (word by word, each word's cycles in order, then any others)."""

    __slots__ = ("_data", "_other")

    def __init__(self, keys: Iterable[int] = ()) -> None:
        self._data: bytes | bytearray = b""  # a bytearray from the first word (many tickets emit nothing)
        self._other: set[int] | None = None
        for key in keys:
            self.add(key)

    def __contains__(self, key: int) -> bool:
        if not 0 <= key < _WORD_KEYS:
            return self._other is not None and key in self._other
        data = self._data
        chunk = (key & _LOW_BITS | key >> 4 & _CHUNK_BITS).to_bytes(6, "little")
        i = data.find(chunk)
        while i % 8:  # -1 % 8 == 7: a match across two words, or none (then -1 stops below)
            if i == -1:
                return False
            i = data.find(chunk, i + 1)
        return (data[i + 6] | data[i + 7] << 8) >> (key >> 10 & 15) & 1 == 1

    def insert(self, key: int) -> bool:
        """Add `key`; whether it was not there before (one search for `in` and `add`)."""
        if not 0 <= key < _WORD_KEYS:
            other = self._other
            if other is None:
                other = self._other = set()
            elif key in other:
                return False
            other.add(key)
            return True
        data = self._data
        low = key & _LOW_BITS | key >> 4 & _CHUNK_BITS
        chunk = low.to_bytes(6, "little")
        i = data.find(chunk)
        while i % 8:  # -1 % 8 == 7: none (a new word), or a match across two words
            if i == -1:
                if type(data) is bytearray:
                    data += (low | 1 << (48 + (key >> 10 & 15))).to_bytes(8, "little")
                else:
                    self._data = bytearray((low | 1 << (48 + (key >> 10 & 15))).to_bytes(8, "little"))
                return True
            i = data.find(chunk, i + 1)
        bit = key >> 10 & 15
        if bit < 8:
            i += 6
        else:
            i += 7
            bit -= 8
        byte = data[i]
        if byte >> bit & 1:
            return False
        data[i] = byte | 1 << bit  # type: ignore[index]  # found: a word was written, so a bytearray
        return True

    def add(self, key: int) -> None:
        self.insert(key)

    append = add

    def extend(self, keys: Iterable[int]) -> None:
        for key in keys:
            self.add(key)

    def __iter__(self) -> Iterator[int]:
        data = self._data
        for i in range(0, len(data), 8):
            word = int.from_bytes(data[i:i + 8], "little")
            low, mask = word & 0xFFFF_FFFF_FFFF, word >> 48
            base = (low & _LOW_BITS) | (low & ~_LOW_BITS) << 4  # the key of the word's cycle 0 mod 16
            bit = 0
            while mask:
                if mask & 1:
                    yield base | bit << 10
                mask >>= 1
                bit += 1
        if self._other:
            yield from sorted(self._other)

    def __len__(self) -> int:
        data = self._data
        count = sum(int.from_bytes(data[i + 6:i + 8], "little").bit_count() for i in range(0, len(data), 8))
        return count + (len(self._other) if self._other else 0)

    def __bool__(self) -> bool:
        return bool(self._data) or bool(self._other)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EmittedKeys):
            return set(self) == set(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"EmittedKeys({sorted(self)!r})"
