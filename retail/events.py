"""Behaviour events held as columns: a few bytes an event instead of a model object each.

A retailer with 100,000 customers has millions of events; as pydantic `Event`s they take
about 600 bytes each. An `EventTable` keeps four parallel numpy columns (customer code,
product code, type code, microseconds since the epoch, UTC: 17 bytes an event) and each
distinct customer and product id once. It is a `Sequence[Event]`, so code that walks events
keeps working; the hot consumers (training, the audience, the send-time chooser) use its
vectorized methods and never make the `Event`s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from retail.types import Event, EventType

#: the event types in code order: `EVENT_TYPES[code]`
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
_TYPE_CODE: dict[EventType, int] = {t: i for i, t in enumerate(EVENT_TYPES)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Events made into Python values at a time when walking the table (bounds the garbage).
_CHUNK = 65_536

Codes = npt.NDArray[np.int32]
Mask = npt.NDArray[np.bool_]
_Array = TypeVar("_Array", bound=np.ndarray[Any, Any])


def to_micros(moment: datetime) -> int:
    """`moment` (time-zone aware) as whole microseconds since 1970-01-01 UTC."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC datetime `micros` microseconds after 1970-01-01 UTC."""
    return _EPOCH + timedelta(microseconds=micros)


def type_code(kind: EventType) -> int:
    """The small integer an event type is stored as (its position in `EventType`)."""
    return _TYPE_CODE[kind]


class IdCodes:
    """Each distinct id once, coded by the order it was first seen.

    Only ever grows, so tables that share one (a table and its subsets) stay consistent.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._codes: dict[str, int] = {}
        # `ids` as one Arrow array, for `code_all`; brought up to date when it runs.
        self._arrow: pa.Array = pa.array([], pa.string())

    def __len__(self) -> int:
        return len(self.ids)

    def code(self, id_: str) -> int:
        """The code of `id_`, given one now if it is new."""
        code = self._codes.get(id_)
        if code is None:
            code = self._codes[id_] = len(self.ids)
            self.ids.append(id_)
        return code

    def code_all(self, ids: pa.Array | pa.ChunkedArray) -> Codes:
        """Per entry of `ids` (Arrow strings, or a dictionary of them; no nulls), its code;
        new ids get codes in the order they first appear, as calling `code` on each in turn
        would give them.

        One hash lookup per entry in Arrow, and Python work only for the new ids: a batch
        of a million events costs about what its distinct new ids do.
        """
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if ids.null_count:
            raise ValueError("ids must not be null")
        if pa.types.is_dictionary(ids.type):
            # Each distinct id once: the dictionary's entries in use, in order of first use.
            used = pc.unique(ids.indices)
            codes = np.full(len(ids.dictionary), -1, dtype=np.int32)
            codes[np.asarray(used)] = self.code_all(ids.dictionary.take(used))
            dictionary_codes: Codes = codes[np.asarray(ids.indices)]
            return dictionary_codes
        ids = ids.cast(pa.string())
        if len(self._arrow) < len(self.ids):
            fresh = pa.array(self.ids[len(self._arrow) :], pa.string())
            self._arrow = pa.concat_arrays([self._arrow, fresh])
        found = pc.index_in(ids, value_set=self._arrow)
        result: Codes = np.array(found.fill_null(-1), dtype=np.int32)  # a copy: filled below
        if found.null_count:
            new_at = np.flatnonzero(result < 0)
            new = ids.take(pa.array(new_at)).dictionary_encode()
            base = len(self.ids)
            for offset, id_ in enumerate(new.dictionary.to_pylist()):
                self._codes[id_] = base + offset
                self.ids.append(id_)
            result[new_at] = np.asarray(new.indices, dtype=np.int32) + base
        return result

    def find(self, id_: str) -> int | None:
        """The code of `id_`, or None if it was never seen."""
        return self._codes.get(id_)

    def members(self, ids: Iterable[str]) -> Mask:
        """Per code, whether its id is among `ids`; one more entry, False, for code -1."""
        mask = np.zeros(len(self.ids) + 1, dtype=bool)
        found = [c for i in ids if (c := self._codes.get(i)) is not None]
        mask[np.asarray(found, dtype=np.int64)] = True
        return mask

    def ranks(self) -> Codes:
        """Per code, the position of its id in sorted order; one more entry, -1, for code
        -1 (no id sorts before every id)."""
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        ranks = np.full(len(self.ids) + 1, -1, dtype=np.int32)
        ranks[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
        return ranks


class EventTable(Sequence[Event]):
    """Behaviour events as parallel columns, in the order they were added.

    Indexing and iterating yield `Event`s (UTC timestamps), made on demand; a slice is an
    `EventTable`. `append` and `extend` grow the columns geometrically. Subsets made by
    the methods share the id codes of the table they came from.
    """

    def __init__(self, *, customers: IdCodes | None = None, products: IdCodes | None = None):
        #: customer ids by code
        self.customer_ids = customers if customers is not None else IdCodes()
        #: product ids by code (an event about no product has code -1)
        self.product_ids = products if products is not None else IdCodes()
        self._customer: Codes = np.empty(0, dtype=np.int32)
        self._product: Codes = np.empty(0, dtype=np.int32)
        self._type: npt.NDArray[np.int8] = np.empty(0, dtype=np.int8)
        self._time: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._n = 0

    @classmethod
    def of(cls, events: Iterable[Event]) -> EventTable:
        """`events` as a table: the table itself if it is one, else a new table of them."""
        if isinstance(events, EventTable):
            return events
        table = cls()
        table.extend(events)
        return table

    # -- columns ------------------------------------------------------------------------

    @property
    def customer(self) -> Codes:
        """Per event, its customer's code into `customer_ids` (int32, read-only)."""
        return _frozen(self._customer[: self._n])

    @property
    def product(self) -> Codes:
        """Per event, its product's code into `product_ids`, -1 for none (int32, read-only)."""
        return _frozen(self._product[: self._n])

    @property
    def type(self) -> npt.NDArray[np.int8]:
        """Per event, its type's code into `EVENT_TYPES` (int8, read-only)."""
        return _frozen(self._type[: self._n])

    @property
    def micros(self) -> npt.NDArray[np.int64]:
        """Per event, microseconds since 1970-01-01 UTC (int64, read-only)."""
        return _frozen(self._time[: self._n])

    def seconds(self) -> npt.NDArray[np.float64]:
        """Per event, seconds since the epoch, as `datetime.timestamp()` gives them."""
        return self.micros / 1e6

    @property
    def nbytes(self) -> int:
        """Bytes the columns take (their spare capacity included; the ids not)."""
        return self._customer.nbytes + self._product.nbytes + self._type.nbytes + self._time.nbytes

    # -- Sequence -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> EventTable: ...

    def __getitem__(self, index: int | slice) -> Event | EventTable:
        if isinstance(index, slice):
            return self._take(np.arange(self._n)[index])
        position = int(index)
        if position < 0:
            position += self._n
        if not 0 <= position < self._n:
            raise IndexError("event index out of range")
        return self._event(
            int(self._customer[position]),
            int(self._product[position]),
            int(self._type[position]),
            int(self._time[position]),
        )

    def __iter__(self) -> Iterator[Event]:
        for start in range(0, self._n, _CHUNK):
            end = min(start + _CHUNK, self._n)
            rows = zip(
                self._customer[start:end].tolist(),
                self._product[start:end].tolist(),
                self._type[start:end].tolist(),
                self._time[start:end].tolist(),
                strict=True,
            )
            for customer, product, kind, micros in rows:
                yield self._event(customer, product, kind, micros)

    def __repr__(self) -> str:
        return (
            f"EventTable({self._n} events, {len(self.customer_ids)} customer ids, "
            f"{len(self.product_ids)} product ids)"
        )

    def _event(self, customer: int, product: int, kind: int, micros: int) -> Event:
        # Already validated on the way in: no need to validate again.
        return Event.model_construct(
            customer_id=self.customer_ids.ids[customer],
            product_id=None if product < 0 else self.product_ids.ids[product],
            type=EVENT_TYPES[kind],
            timestamp=_EPOCH + timedelta(microseconds=micros),
        )

    # -- growing ------------------------------------------------------------------------

    def append(self, event: Event) -> None:
        """Add one event at the end."""
        if self._n == len(self._time):
            self._reserve(self._n + 1)
        n = self._n
        self._customer[n] = self.customer_ids.code(event.customer_id)
        pid = event.product_id
        self._product[n] = -1 if pid is None else self.product_ids.code(pid)
        self._type[n] = _TYPE_CODE[event.type]
        self._time[n] = (event.timestamp - _EPOCH) // _MICROSECOND
        self._n = n + 1

    def extend(self, events: Iterable[Event]) -> None:
        """Add `events` at the end, in their order."""
        if isinstance(events, EventTable):
            self._extend_table(events)
            return
        if isinstance(events, Sequence):
            self._reserve(self._n + len(events))
        customers, products, kinds, times = [], [], [], []
        customer_code, product_code = self.customer_ids.code, self.product_ids.code
        for event in events:
            customers.append(customer_code(event.customer_id))
            pid = event.product_id
            products.append(-1 if pid is None else product_code(pid))
            kinds.append(_TYPE_CODE[event.type])
            times.append((event.timestamp - _EPOCH) // _MICROSECOND)
            if len(times) == _CHUNK:
                self._put(customers, products, kinds, times)
                customers, products, kinds, times = [], [], [], []
        self._put(customers, products, kinds, times)

    def extend_columns(
        self,
        customer_ids: pa.Array | pa.ChunkedArray,
        product_ids: pa.Array | pa.ChunkedArray,
        types: npt.NDArray[np.int8],
        micros: npt.NDArray[np.int64],
    ) -> None:
        """Add events given as columns, in order: the ids as Arrow strings or dictionaries
        of them (a null product id is an event about no product), `types` as codes into
        `EVENT_TYPES`, `micros` since the epoch (UTC). The values are taken as valid (the
        caller checked them); the ids get the codes `extend` would give them, in bulk."""
        count = len(customer_ids)
        if not len(product_ids) == len(types) == len(micros) == count:
            raise ValueError("the columns must have one entry per event")
        customers = self.customer_ids.code_all(customer_ids)
        products = np.full(count, -1, dtype=np.int32)
        if 0 < product_ids.null_count < count:
            given = product_ids.is_valid()
            at = np.flatnonzero(np.asarray(given, dtype=bool))
            products[at] = self.product_ids.code_all(product_ids.filter(given))
        elif not product_ids.null_count:
            products = self.product_ids.code_all(product_ids)
        # (every product id null: no event is about a product, and the column may be of
        # Arrow's null type)
        self._put(customers, products, types, micros)

    def trim(self) -> None:
        """Give back the spare capacity growing left (after the last `append`)."""
        self._resize(self._n)

    def _put(
        self,
        customers: Sequence[int] | Codes,
        products: Sequence[int] | Codes,
        kinds: Sequence[int] | npt.NDArray[np.int8],
        times: Sequence[int] | npt.NDArray[np.int64],
    ) -> None:
        count = len(times)
        if not count:
            return
        self._reserve(self._n + count)
        end = self._n + count
        self._customer[self._n : end] = customers
        self._product[self._n : end] = products
        self._type[self._n : end] = kinds
        self._time[self._n : end] = times
        self._n = end

    def _extend_table(self, other: EventTable) -> None:
        customer, product = other.customer, other.product
        if other.customer_ids is not self.customer_ids:
            remap = np.asarray([self.customer_ids.code(i) for i in other.customer_ids.ids])
            customer = remap.astype(np.int32)[customer] if len(remap) else customer
        if other.product_ids is not self.product_ids:
            codes = [self.product_ids.code(i) for i in other.product_ids.ids]
            # The extra last entry maps code -1 (no product) to itself.
            product = np.asarray([*codes, -1], dtype=np.int32)[product]
        self._put(customer, product, other.type, other.micros)

    def _reserve(self, size: int) -> None:
        if size > len(self._time):
            self._resize(max(size, len(self._time) * 3 // 2, 16))

    def _resize(self, capacity: int) -> None:
        for name in ("_customer", "_product", "_type", "_time"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    # -- subsets ------------------------------------------------------------------------

    def where(self, mask: Mask) -> EventTable:
        """The events where `mask` (one bool per event) is True, in order."""
        return self._take(np.flatnonzero(mask))

    def _take(self, index: npt.NDArray[np.intp]) -> EventTable:
        table = EventTable(customers=self.customer_ids, products=self.product_ids)
        table._customer = self._customer[: self._n][index]
        table._product = self._product[: self._n][index]
        table._type = self._type[: self._n][index]
        table._time = self._time[: self._n][index]
        table._n = len(index)
        return table

    def customer_mask(self, ids: Iterable[str]) -> Mask:
        """Per event, whether its customer is among `ids`."""
        return self.customer_ids.members(ids)[self.customer]

    def product_mask(self, ids: Iterable[str]) -> Mask:
        """Per event, whether its product is among `ids` (False for no product)."""
        return self.product_ids.members(ids)[self.product]

    def type_mask(self, *types: EventType) -> Mask:
        """Per event, whether its type is one of `types`."""
        return np.isin(self.type, [_TYPE_CODE[t] for t in types])

    def for_customers(self, ids: Iterable[str]) -> EventTable:
        """The events of the customers `ids`, in order."""
        return self.where(self.customer_mask(ids))

    def until(self, moment: datetime) -> EventTable:
        """The events at or before `moment`, in order."""
        return self.where(self.micros <= to_micros(moment))

    def positions(self, customers: Sequence[str]) -> npt.NDArray[np.int64]:
        """Per event, the position of its customer in `customers` (-1 if not there): the
        key to count or group each customer's events with numpy."""
        where = np.full(len(self.customer_ids), -1, dtype=np.int64)
        for position, cid in enumerate(customers):
            code = self.customer_ids.find(cid)
            if code is not None and where[code] < 0:
                where[code] = position
        return where[self.customer]

    # -- answers ------------------------------------------------------------------------

    def latest(self) -> datetime | None:
        """The time of the latest event (UTC), or None without events."""
        return from_micros(int(self.micros.max())) if self._n else None

    def customers_with(self, kind: EventType) -> set[str]:
        """Ids of the customers with at least one event of type `kind`."""
        codes = np.unique(self.customer[self.type == _TYPE_CODE[kind]])
        ids = self.customer_ids.ids
        return {ids[c] for c in codes.tolist()}

    def last_purchases(self, until: datetime | None = None) -> LastPurchases:
        """(customer id, product id) → the time of the latest purchase of that product by
        that customer (at or before `until`, when given)."""
        mask = (self.type == _TYPE_CODE[EventType.purchase]) & (self.product >= 0)
        if until is not None:
            mask &= self.micros <= to_micros(until)
        stride = len(self.product_ids)
        keys = self.customer[mask].astype(np.int64) * stride + self.product[mask]
        times = self.micros[mask]
        order = np.lexsort((times, keys))
        keys, times = keys[order], times[order]
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]  # the latest of each key is its last in order
        return LastPurchases(self, stride, keys[last], times[last])


class LastPurchases(Mapping[tuple[str, str], datetime]):
    """(customer id, product id) → latest purchase time (UTC), as sorted numpy keys."""

    def __init__(
        self,
        table: EventTable,
        stride: int,
        keys: npt.NDArray[np.int64],
        times: npt.NDArray[np.int64],
    ) -> None:
        self._customers, self._products = table.customer_ids, table.product_ids
        self._stride, self._keys, self._times = stride, keys, times

    def __getitem__(self, key: tuple[str, str]) -> datetime:
        customer = self._customers.find(key[0])
        product = self._products.find(key[1])
        if customer is not None and product is not None and product < self._stride:
            code = customer * self._stride + product
            at = int(np.searchsorted(self._keys, code))
            if at < len(self._keys) and self._keys[at] == code:
                return from_micros(int(self._times[at]))
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        customers, products = self._customers.ids, self._products.ids
        for code in self._keys.tolist():
            yield customers[code // self._stride], products[code % self._stride]

    def __len__(self) -> int:
        return len(self._keys)


def _frozen(view: _Array) -> _Array:
    view.flags.writeable = False
    return view
