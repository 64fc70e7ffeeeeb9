"""The checks an events batch's columns pass before its rows are taken without pydantic.

A row is vouched for only when its columns prove what `Event` would make of it; numpy over
the bytes of pyarrow's string arrays does that for a whole batch at once. Nothing here
says why a row is bad: that is left to `Event` itself (see `retail.event_files`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from retail.events import EVENT_TYPES

Mask = npt.NDArray[np.bool_]
Micros = npt.NDArray[np.int64]
#: offsets into an array's data, lengths: int32, as arrow keeps them
Ints = npt.NDArray[np.int32]

_TYPE_WORDS = pa.array([t.value for t in EVENT_TYPES], pa.string())
_NO_PRODUCT = pa.scalar(None, pa.string())


@dataclass
class Batch:
    """One batch's id and type columns as read, and which rows they vouch for."""

    customer: pa.Array
    product: pa.Array  # null: no product
    types: npt.NDArray[np.int8]
    ok: Mask


def check_columns(customer: pa.Array, product: pa.Array | None, kind: pa.Array) -> Batch:
    """Which rows the id and type columns vouch for: a customer id and a product id (or
    none: empty or null) without a blank or non-ASCII byte at either end, a type word as
    `EventType` spells it. The product ids come back with null for none; the types as
    codes into `EVENT_TYPES`."""
    count = len(customer)
    lengths, clean = _text_edges(customer)
    ok = clean & (lengths > 0)
    if product is None:
        product = pa.nulls(count, pa.string())
    else:
        product_lengths, product_clean = _text_edges(product)
        absent = (product_lengths == 0) | nulls(product)
        ok &= product_clean | absent
        if absent.any():
            product = pc.if_else(pa.array(absent), _NO_PRODUCT, product)
    codes = pc.index_in(kind, value_set=_TYPE_WORDS)
    ok &= np.asarray(codes.is_valid(), dtype=bool)
    types = np.asarray(codes.fill_null(0), dtype=np.int8)
    return Batch(customer, product, types, ok)


def nulls(column: pa.Array) -> Mask:
    """Per entry, whether it is null."""
    if not column.null_count:
        return np.zeros(len(column), dtype=bool)
    return ~np.asarray(column.is_valid(), dtype=bool)


def _buffers(
    text: pa.Array,
) -> tuple[Ints, Ints, npt.NDArray[np.uint8]]:
    """A string array's per-entry start and length in its data, and the data (bytes)."""
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int32, count=len(text) + 1, offset=text.offset * 4
    )
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    return offsets[:-1], np.diff(offsets), data


def _text_edges(text: pa.Array) -> tuple[Ints, Mask]:
    """Per entry, its length in bytes and whether its first and last bytes are printable
    ASCII other than a space: then pydantic's whitespace stripping leaves it as it is."""
    starts, lengths, data = _buffers(text)
    if not len(data):
        return lengths, np.zeros(len(text), dtype=bool)
    last = len(data) - 1
    first_byte = data[np.minimum(starts, last)]
    last_byte = data[np.clip(starts + lengths - 1, 0, last)]
    clean = (first_byte > 32) & (first_byte < 127) & (last_byte > 32) & (last_byte < 127)
    return lengths, clean & (lengths > 0) & ~nulls(text)


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


def parse_timestamps(stamps: pa.Array) -> tuple[Micros, Mask]:
    """Per text, microseconds since 1970-01-01 UTC and whether it was read: the text must
    be `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}]` then `Z` or `±HH:MM` (lower-case `t`, `z` too),
    a real date and time, a year from 1900 to 9998. Every text read here is read the same by
    `Event`; what is not read here may still be a timestamp `Event` takes."""
    stamps = stamps.cast(pa.string())
    micros = np.zeros(len(stamps), dtype=np.int64)
    ok = np.zeros(len(stamps), dtype=bool)
    # A slice at a time: the two dozen numpy temporaries stay small whatever the block.
    for start in range(0, len(stamps), _STAMPS_AT_A_TIME):
        end = min(start + _STAMPS_AT_A_TIME, len(stamps))
        micros[start:end], ok[start:end] = _parse_timestamps(stamps.slice(start, end - start))
    return micros, ok


_STAMPS_AT_A_TIME = 16_384


def _parse_timestamps(stamps: pa.Array) -> tuple[Micros, Mask]:
    count = len(stamps)
    starts, lengths, data = _buffers(stamps)
    ok = (lengths >= 20) & (lengths <= 32) & ~nulls(stamps)
    if not ok.any():
        return np.zeros(count, dtype=np.int64), ok
    # The texts as the rows of a byte grid: a view of the data when they have one length,
    # else each text's first bytes, copied in one go from a sliding window over the data.
    from_end: Callable[[int], npt.NDArray[np.uint8]]
    if ok.all() and (lengths == lengths[0]).all():
        width = int(lengths[0])
        grid = data[int(starts[0]) : int(starts[0]) + count * width].reshape(count, width)

        def from_end(back: int) -> npt.NDArray[np.uint8]:
            return grid[:, width - back]
    else:
        width = int(lengths[ok].max())
        first, end = int(starts[0]), int(starts[-1] + lengths[-1])
        padded = np.concatenate([data[first:end], np.zeros(width, dtype=np.uint8)])
        window = np.lib.stride_tricks.as_strided(
            padded, shape=(len(padded) - width + 1, width), strides=(1, 1), writeable=False
        )
        grid = window[starts - first]
        rows = np.arange(count)

        def from_end(back: int) -> npt.NDArray[np.uint8]:
            return grid[rows, np.clip(lengths - back, 0, width - 1)]

    def byte(at: int) -> npt.NDArray[np.uint8]:
        return grid[:, min(at, width - 1)]

    # int32 for the fields (less to allocate and walk); int64 from the seconds on.
    def number(at: int, digits: int) -> Ints:
        nonlocal ok
        value = np.zeros(count, dtype=np.int32)
        for offset in range(digits):
            digit = byte(at + offset) - np.uint8(48)  # wraps below "0": not a digit
            ok &= digit <= 9
            value = value * 10 + digit
        return value

    def number_from_end(back: int) -> tuple[Ints, Mask]:
        tens, units = from_end(back) - np.uint8(48), from_end(back - 1) - np.uint8(48)
        return tens.astype(np.int32) * 10 + units, (tens <= 9) & (units <= 9)

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    sep = byte(10)
    ok &= (byte(4) == 45) & (byte(7) == 45) & (byte(13) == 58) & (byte(16) == 58)
    ok &= (sep == 84) | (sep == 116) | (sep == 32)
    last_byte = from_end(1)
    zulu = (last_byte == 90) | (last_byte == 122)
    sign_byte = from_end(6)
    (offset_hours, hours_ok), (offset_minutes, minutes_ok) = number_from_end(5), number_from_end(2)
    offset_ok = ((sign_byte == 43) | (sign_byte == 45)) & (from_end(3) == 58)
    offset_ok &= hours_ok & minutes_ok
    offset_ok &= (offset_hours <= 23) & (offset_minutes <= 59)
    ok &= zulu | offset_ok
    # After the seconds: nothing, or "." and one to six digits, before the zone.
    fraction = lengths - 19 - np.where(zulu, 1, 6)
    ok &= (fraction == 0) | ((fraction >= 2) & (fraction <= 7) & (byte(19) == 46))
    micro = np.zeros(count, dtype=np.int32)
    for place in range(1, 7):
        present = place < fraction
        digit = byte(19 + place) - np.uint8(48)
        ok &= ~present | (digit <= 9)
        micro = micro * 10 + np.where(present, digit, 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1900) & (year <= 9998) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    # Days since the epoch from the civil date (H. Hinnant's days_from_civil).
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    offset = np.where(zulu, 0, offset_hours * 3600 + offset_minutes * 60)
    offset = np.where(sign_byte == 45, -offset, offset)
    seconds = days.astype(np.int64) * 86_400 + ((hour * 60 + minute) * 60 + second - offset)
    micros: Micros = np.where(ok, seconds * 1_000_000 + micro, 0)
    return micros, ok
