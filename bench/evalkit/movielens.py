"""MovieLens-100K as an InteractionLog, read from the `recbole` wheel's bundled files.

The wheel is installed only to carry the data (`pip install --no-deps recbole==1.2.1`);
recbole itself is never imported, since its dependencies (torch, …) are not installed.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from recs.dataset import KIND_CODES, InteractionLog
from recs.errors import RecsError
from retail.types import EventType

_INSTALL_HINT = (
    "MovieLens-100K is read from the recbole wheel, which is not installed; "
    "install the data with: pip install --no-deps recbole==1.2.1"
)


def movielens_100k_dir() -> Path:
    """The folder holding `ml-100k.inter` and `ml-100k.item`; RecsError says how to install it."""
    spec = importlib.util.find_spec("recbole")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "dataset_example" / "ml-100k"
        if (folder / "ml-100k.inter").is_file() and (folder / "ml-100k.item").is_file():
            return folder
    raise RecsError(_INSTALL_HINT)


def load_movielens_100k(folder: Path | None = None) -> InteractionLog:
    """Every rating as one purchase (implicit feedback), sorted by time.

    Ties in time keep the file's order (a stable sort, as RecBole's). Users and items are
    the ids seen in the files, in numeric order; an item's category is its first genre;
    there are no prices, stock, brands or views. Titles go to `item_text`.
    """
    folder = folder or movielens_100k_dir()
    with open(folder / "ml-100k.item", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    item_genre = {r[0]: (r[3].split() or ["unknown"])[0] for r in rows}
    item_title = {r[0]: r[1] for r in rows}
    raw = np.loadtxt(folder / "ml-100k.inter", delimiter="\t", skiprows=1, dtype=np.int64)
    users, user_codes = np.unique(raw[:, 0], return_inverse=True)
    # Items named only in ratings still get a column (none in the shipped files).
    all_items = np.union1d(np.unique(raw[:, 1]), np.array(sorted(int(i) for i in item_genre)))
    item_codes = np.searchsorted(all_items, raw[:, 1])
    order = np.argsort(raw[:, 3], kind="stable")
    categories = tuple(sorted(set(item_genre.values()) | {"unknown"}))
    cat_index = {c: i for i, c in enumerate(categories)}
    item_ids = tuple(str(i) for i in all_items)
    return InteractionLog(
        user_ids=tuple(str(u) for u in users),
        item_ids=item_ids,
        user=user_codes[order].astype(np.int32),
        item=item_codes[order].astype(np.int32),
        kind=np.full(len(order), KIND_CODES[EventType.purchase], dtype=np.int8),
        time=raw[order, 3].astype(np.float64),
        item_category=np.array(
            [cat_index[item_genre.get(i, "unknown")] for i in item_ids], dtype=np.int32
        ),
        categories=categories,
        item_text=tuple(item_title.get(i, "") for i in item_ids),
        extra={"dataset": "ml-100k"},
    )
