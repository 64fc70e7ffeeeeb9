"""Rule names (categories, brands) are matched to the catalog's spelling."""

from __future__ import annotations

from recs.rules import catalog_spelling, fold_name


def test_names_take_the_catalogs_spelling_and_unknown_ones_get_suggestions() -> None:
    known = ["Lumen", "Kestrel & Co", "Aurelia"]
    spelt, unknown = catalog_spelling(["lumen", " kestrel  & CO", "Lumn", "Zzz"], known)
    assert spelt == ["Lumen", "Kestrel & Co", "Lumn", "Zzz"]
    assert unknown == {"Lumn": ["Lumen"], "Zzz": []}
    assert fold_name("  Kestrel \t& co ") == fold_name("kestrel & Co") == "kestrel & co"
