"""Where every word of the PII evaluation set comes from, and the role it plays there.

The scanner (`compliance.pii`) reads two kinds of word lists: name lexicons (the Census
1990 files of the `names` package plus a hand list of European given names) and hand
lists of capitalised words that are not names (copy words, product nouns and materials,
colours, salutation stops, legal forms, street suffixes). The evaluation reads none of
them and none of the sources they are built from, so the set measures the scanner on
words nobody fitted it to. Each source, and what the set uses it for:

Personal data (gold PERSON spans; a given name alone is an unlabeled look-alike):
- Mimesis (`mimesis.Person`, MIT): given names and surnames of Danish, Dutch, French,
  German, Italian, Polish, Portuguese, Spanish and Swedish people (`MIMESIS_LOCALES`).
  Not its English locales: their given names are the Census 1990 list the scanner reads.
- Faker (`faker.providers.person`, MIT): American names (given names from the Social
  Security Administration's birth tables, surnames from the 2000 Census top 1,000) and
  British ones (ONS birth tables). These share an agency with the scanner's Census 1990
  files but are other tables; they stand for the shop's English-speaking customers.
  Faker also gives the e-mail addresses, street addresses, company names (look-alikes
  built from surnames) and city names of the set, and some cards and IBANs.

Look-alikes (never labeled), each pool in `LOOK_ALIKE_POOLS`:
- `product_nouns`: the Unicode Character Database's names of clothing, accessory and
  household pictographs (`unicodedata`, Python's standard library), those of two or more
  words ("Hiking Boot", "Ballet Shoes", "Couch And Lamp").
- `colour_names`: the CSS named colours (as Faker's `color` provider lists them) written
  in two or more words ("Dodger Blue", "Alice Blue", "Misty Rose").
- `model_places`: one-word city names of the IANA time zone database (`zone1970.tab`
  of the `tzdata` package; Africa, America, Asia, Australia and Europe), used as
  product model names ("the Lisbon Hiking Boot") and as store cities.
- `holiday_names`: public holidays of the US, UK, Ireland, Germany, France, Spain,
  Italy and the Netherlands in English, from the `holidays` package, those of two or
  more words ("Saint Patrick's Day", "Martin Luther King Jr. Day").
- `territory_names`: CLDR's English names of countries and territories (Babel) of two or
  more words ("Marshall Islands", "Sierra Leone", "Isle of Man").
- Given names from the sources above in a product's model-name slot ("the Milena
  Hiking Boot"): the same generators as the people, in a role that is not a person.

Why two or more words: the scanner flags names as runs of two or more capitalised words,
so single common words ("Navy", "Dress", "Jersey") would only test its word lists, and
those are the lists the evaluation must stay apart from. A test
(tests/compliance/test_pii_eval.py) fails, naming the words, if any pool entry is one of
the scanner's not-a-name words (copy words, product and colour words, salutation stops,
legal forms, street suffixes), and so does a sample of Faker's cities and companies (a
sample: Faker's 8,000 Italian towns include a "Bra" and a "Rose"). The name pools are
exempt (a person called Rose is the ambiguity being measured) and are checked by source
instead: nothing of the evaluation imports `names`, and no Mimesis locale whose names
are mostly the scanner's is used.

Ambiguous words are labeled by the slot they fill, not by what they could also be:
"Adelaide" as a store's city, "Regina" as a product's model name or "Diego Garcia" as
a shipping destination is not personal data; the same words in a full-name slot are. A
holiday named after a person ("Washington's Birthday") is not personal data.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

import holidays
from babel import Locale
from faker.providers.color.en_US import Provider as CssColours

# Mimesis locales for people's names; Faker locales for English-speaking ones.
MIMESIS_LOCALES = ("da", "de", "es", "fr", "it", "nl", "pl", "pt", "sv")
FAKER_NAME_LOCALES = ("en_US", "en_GB")

# Clothing, accessories and household goods among the Unicode pictographs.
_GOODS_CODE_POINTS = (
    *range(0x1F451, 0x1F463),  # crown … womans boots
    *range(0x1F97B, 0x1F980),  # sari … flat shoe
    *range(0x1F9E2, 0x1F9E7),  # billed cap … socks
    *range(0x1FA70, 0x1FA75),  # ballet shoes … thong sandal
    *range(0x1F9F4, 0x1F9FE),  # lotion bottle … sponge
    0x1F392, 0x1F393, 0x1F3A9, 0x1F576, 0x1F6CB, 0x1F6CD, 0x1F6CF, 0x1FA91, 0x1FA9E,
    0x1F4BB, 0x1F4F1, 0x1F4F7, 0x1F4FB, 0x1F3A7, 0x1F56F, 0x1F4A1, 0x2602, 0x231A,
)  # fmt: skip
_HOLIDAY_COUNTRIES = ("US", "GB", "IE", "DE", "FR", "ES", "IT", "NL")
_TZ_AREAS = ("Africa", "America", "Asia", "Australia", "Europe")
# CLDR region codes that name no place one ships to (EU, UN, unknown, outlying Oceania).
_NOT_PLACES = frozenset({"EU", "EZ", "UN", "ZZ", "QO"})


def _several_words(entries: set[str]) -> tuple[str, ...]:
    return tuple(sorted(e for e in entries if len(e.split()) >= 2))


@cache
def product_nouns() -> tuple[str, ...]:
    """Unicode names of goods pictographs of two or more words, in title case."""
    found = set()
    for code_point in _GOODS_CODE_POINTS:
        name = unicodedata.name(chr(code_point), "").title()
        # The character names drop the apostrophe: "WOMANS HAT" is "Woman's Hat".
        found.add(re.sub(r"\b(Wom|M)ans\b", r"\1an's", name))
    return _several_words(found - {""})


@cache
def colour_names() -> tuple[str, ...]:
    """CSS named colours of two or more words ("Dodger Blue")."""
    split = {re.sub(r"(?<=[a-z])(?=[A-Z])", " ", c) for c in CssColours.all_colors}
    return _several_words(split)


@cache
def model_places() -> tuple[str, ...]:
    """One-word city names of the time zone database's continental areas ("Lisbon")."""
    table = resources.files("tzdata").joinpath("zoneinfo/zone1970.tab").read_text("utf-8")
    cities = set()
    for line in table.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")[2].split("/")
        if len(parts) == 2 and parts[0] in _TZ_AREAS and "_" not in parts[1]:
            cities.add(parts[1])
    return tuple(sorted(c for c in cities if "-" not in c))


@cache
def holiday_names() -> tuple[str, ...]:
    """English names of public holidays of two or more words, without "(observed)"."""
    found = set()
    for country in _HOLIDAY_COUNTRIES:
        days = holidays.country_holidays(country, years=range(2024, 2028), language="en_US")
        for value in days.values():
            for name in value.split(";"):
                name = re.sub(r"\s*\(.*?\)", "", name).strip()
                if "," not in name:
                    found.add(name)
    return _several_words(found)


@cache
def territory_names() -> tuple[str, ...]:
    """CLDR's English names of countries and territories of two or more words."""
    territories = Locale("en").territories
    places = {k: v for k, v in territories.items() if len(k) == 2 and k.isalpha()}
    return _several_words({v for k, v in places.items() if k not in _NOT_PLACES})


LOOK_ALIKE_POOLS = {
    "product_nouns": product_nouns,
    "colour_names": colour_names,
    "model_places": model_places,
    "holiday_names": holiday_names,
    "territory_names": territory_names,
}
"""Every look-alike word list of the evaluation, by name (the overlap test reads it)."""
