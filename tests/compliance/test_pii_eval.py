"""The PII evaluation set: big enough, spans exact, generators valid on their own."""

from __future__ import annotations

import ast
import ipaddress
import random
from collections import Counter
from pathlib import Path

import pytest

from bench.evalkit.pii_eval import build_eval_set
from bench.evalkit.pii_eval_sources import LOOK_ALIKE_POOLS, MIMESIS_LOCALES
from bench.evalkit.pii_eval_values import (
    NAME_SOURCES,
    Values,
    de_tax_id_check_digit,
    iban_check_digits,
    luhn_check_digit,
)


def _luhn_ok(digits: str) -> bool:
    # Textbook validator, written here so neither the scanner nor the generator vouches
    # for itself.
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


@pytest.fixture(scope="module")
def values() -> Values:
    return Values(random.Random(1))


def test_set_has_at_least_500_texts_and_every_type() -> None:
    texts = build_eval_set(seed=5, size=600)
    assert len(texts) == 600
    counts = Counter(s.type for t in texts for s in t.spans)
    assert set(counts) == {
        "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP", "NATIONAL_ID", "PERSON", "ADDRESS"
    }  # fmt: skip
    assert min(counts.values()) >= 20
    assert sum(1 for t in texts if not t.spans) >= 100  # look-alike-only texts
    assert build_eval_set(seed=5, size=600) == texts  # deterministic in the seed


def test_gold_spans_point_at_clean_values() -> None:
    for item in build_eval_set(seed=7, size=500):
        for span in item.spans:
            value = item.text[span.start : span.end]
            assert value and value == value.strip()


def test_check_digit_generators_match_published_examples() -> None:
    assert luhn_check_digit("411111111111111") == "1"
    assert luhn_check_digit("7992739871") == "3"
    assert iban_check_digits("DE", "370400440532013000") == "89"
    assert iban_check_digits("GB", "WEST12345698765432") == "82"
    assert de_tax_id_check_digit("8609574271") == "9"


def test_generated_cards_and_ibans_pass_independent_checks(values: Values) -> None:
    for _ in range(300):
        card = values.card_digits()
        assert 12 <= len(card) <= 19 and _luhn_ok(card)
        iban = values.iban_compact()
        assert _iban_ok(iban)
        assert not _luhn_ok("".join(c for c in values.bad_card() if c.isdigit()))
        assert not _iban_ok(values.bad_iban().replace(" ", ""))
    for prefix in ("2221", "2720", "2500"):  # Mastercard 2-series is generated
        assert any(values.card_digits("mastercard-2").startswith(prefix[:2]) for _ in range(50))


def test_generated_ids_follow_their_rules(values: Values) -> None:
    letters = "TRWAGMYFPDXBNJZSQVHLCKE"
    for _ in range(200):
        dni = values.es_dni().replace("-", "")
        number = dni[:-1].replace("X", "0").replace("Y", "1").replace("Z", "2")
        assert letters[int(number) % 23] == dni[-1]
        tax = values.de_tax_id().replace(" ", "")
        assert tax[0] != "0" and sorted(Counter(tax[:10]).values())[-2:] == [1, 2]
        area, group, serial = values.ssn().split("-")
        assert area not in ("000", "666") and area[0] != "9" and group != "00"
        assert serial != "0000"
        ip = values.ip()
        ipaddress.ip_address(ip)


def _imports(module: object) -> set[str]:
    tree = ast.parse(Path(str(getattr(module, "__file__", ""))).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    return imported | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def _scanner_not_name_lists() -> dict[str, set[str]]:
    # Every hand list of the scanner's that says "this capitalised word is not a name".
    from compliance.pii import addresses, lexicon, people

    return {
        "lexicon.COPY_WORDS": set(lexicon.COPY_WORDS),
        "lexicon.PRODUCT_WORDS": set(lexicon.PRODUCT_WORDS),
        "lexicon.COLOUR_WORDS": set(lexicon.COLOUR_WORDS),
        "people._NOT_NAMES": {lexicon.fold(w) for w in people._NOT_NAMES},
        "people._COMPANY": set(people._COMPANY),
        "addresses street suffixes": {
            lexicon.fold(w)
            for w in (
                *addresses._CORE_SUFFIXES,
                *addresses._MORE_SUFFIXES,
                *addresses._ABBREVIATIONS,
            )
        },
    }


def test_no_look_alike_of_the_evaluation_is_a_word_of_the_scanners_lists() -> None:
    # The evaluation measures the scanner on look-alikes nobody fitted it to: a word in
    # both would be one the scanner was told about (or the set was written from).
    from compliance.pii.lexicon import fold

    values = Values(random.Random(3))
    pools = {name: set(pool()) for name, pool in LOOK_ALIKE_POOLS.items()}
    pools["faker cities"] = {values.city() for _ in range(2000)}
    pools["faker companies"] = {values.company() for _ in range(2000)}
    overlaps = [
        f"{pool} ∩ {listed}: {', '.join(sorted(shared))}"
        for pool, entries in pools.items()
        for listed, words in _scanner_not_name_lists().items()
        if (shared := {e for e in entries if fold(e).rstrip(".") in words})
    ]
    assert not overlaps, "evaluation look-alikes the scanner lists:\n" + "\n".join(overlaps)


def test_look_alike_pools_are_varied_and_documented() -> None:
    import bench.evalkit.pii_eval_sources as sources

    for name, pool in LOOK_ALIKE_POOLS.items():
        entries = pool()
        assert len(entries) >= 30 and len(set(entries)) == len(entries), name
        assert f"`{name}`" in str(sources.__doc__), f"{name} is not in the sources docstring"


def test_names_come_from_sources_the_scanner_lexicons_are_not_built_from() -> None:
    import bench.evalkit.pii_eval as evaluation
    import bench.evalkit.pii_eval_sources as sources
    import bench.evalkit.pii_eval_values as generators
    from compliance.pii.lexicon import first_names, fold

    for module in (evaluation, sources, generators):
        assert "names" not in _imports(module)  # the scanner's Census name files
    assert {"faker", "mimesis"} <= _imports(generators)
    # Mimesis's English given names are the Census 1990 list itself (all 3,323 of them
    # are in the scanner's lexicon): never used. Its other locales are not copies of it.
    assert not any(locale.startswith("en") for locale in MIMESIS_LOCALES)
    assert {generator for generator, _ in NAME_SOURCES} == {"faker", "mimesis"}
    values = Values(random.Random(2))
    for locale in MIMESIS_LOCALES:
        given = {fold(values.mimesis(locale).first_name()) for _ in range(300)}
        share = len(given & first_names()) / len(given)
        assert share < 0.8, f"mimesis {locale}: {share:.0%} of its names are the scanner's"
    texts = build_eval_set(seed=5, size=600)
    people = {t.text[s.start : s.end] for t in texts for s in t.spans if s.type == "PERSON"}
    assert len(people) > 200  # varied, not a short list


def test_look_alikes_include_products_companies_and_allowed_brands() -> None:
    texts = build_eval_set(seed=5, size=600)
    clean = [t.text for t in texts if not t.spans]
    assert any(
        brand in text for text in clean for brand in ("Calvin Klein", "Tom Ford", "Ted Baker")
    )
    assert any("GmbH" in text or "Ltd" in text or "S.A." in text or "Inc" in text for text in clean)


def test_generators_do_not_import_the_scanner() -> None:
    import ast
    import inspect

    import bench.evalkit.pii_eval as evaluation
    import bench.evalkit.pii_eval_sources as sources
    import bench.evalkit.pii_eval_values as generators

    for module in (evaluation, sources, generators):
        tree = ast.parse(inspect.getsource(module))
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not any(name.startswith("compliance.pii.") or name == "compliance.pii"
                       for name in imported)  # fmt: skip
