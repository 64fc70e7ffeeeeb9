"""Person names and postal addresses, from cues that are rarely wrong.

No name dictionary and no NER model: a name is flagged only where the copy itself
says a name follows (a salutation, a title, a sign-off, a "Ship to:" label), and an
address only in a house-number + street-type shape. A first name alone ("Hi Ann") is
ordinary personalisation and is not flagged; catalog names that look like people
("Dr. Martens") belong on the allow list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from compliance.pii.finding import Finding, PiiType


def _any_of(*cues: str, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, cues)), re.IGNORECASE if ignore_case else 0)


_UP = "A-ZÀ-ÖØ-Þ"
_LO = "a-zß-öø-ÿ"
_WORD = re.compile(r"\S+")
_NAME = rf"(?:Mc|Mac|O'|D')?[{_UP}][{_LO}]+(?:-[{_UP}][{_LO}]+)?"
_PARTICLE = r"(?:(?:van|von|de|da|del|della|der|den|di|du|la|le|ten|ter|dos|das)\s+){0,2}"
_NAMES = rf"{_NAME}(?:[ \t]+{_PARTICLE}{_NAME}){{0,2}}"

_TITLED = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra)\.?[ \t]+({_NAMES})"
)
_GREETED = re.compile(
    rf"\b(?:Dear|Hi|Hello|Hey|Hallo|Liebe|Lieber|Bonjour|Hola|Ciao|Welcome back),?[ \t]+({_NAMES})"
)
_SIGNED = re.compile(
    rf"\b(?:[Rr]egards|[Ss]incerely|[Bb]est wishes|Cheers|Thanks|Thank you|Grüße|"
    rf"Cordialement|Saludos|Yours),?\s+({_NAMES})"
)
_REVIEWED = re.compile(rf"\b(?:[Rr]eviewed|[Ww]ritten|[Pp]osted|[Rr]ated) by[ \t]+({_NAMES})")
# Social proof and reviews name the person before the cue.
_NAMED_BEFORE = re.compile(
    rf"(?<![\w'])({_NAMES})(?:,? from [{_UP}][{_LO}]+)?[ \t]+(?:just (?:bought|ordered|purchased|"
    rf"reviewed|grabbed)|from (?:our|the) (?:[a-z]+ )?(?:team|store|shop))\b"
    rf"|[—–-][ \t]*({_NAMES}),[ \t]+verified (?:buyer|customer|purchase)"
)
_LABELLED = re.compile(
    rf"\b(?:[Nn]ame|[Ff]ull name|[Ss]hip to|[Dd]eliver to|[Rr]ecipient|Attn|[Aa]ttention|"
    rf"[Cc]ardholder|[Aa]ccount holder|[Bb]illed to|[Ss]old to):?[ \t]+({_NAMES})"
)
# Capitalised words that follow a salutation in marketing copy but are not names.
# fmt: off
_NOT_NAMES = frozenset("""
Your You We Our Us The This That These Those Here There Thanks Thank Welcome New Shop
Sale Save Get Free Now Today Team Customer Customers Friend Friends Valued Shopper
Shoppers Member Members Subscriber Subscribers Everyone All Sir Madam Care Service
Support Summer Spring Autumn Fall Winter Black Friday Cyber Monday Tuesday Wednesday
Thursday Saturday Sunday January February March April June July August September
October November December Holiday Holidays Christmas Collection Edition Store Club
Rewards Insider Insiders Happy Birthday Order Please It Just Last Final Big Flash Don
Dont Check Meet Discover Explore Treat Enjoy Look Love Hello Hi Dear Again Back Kunde
Kundin Kunden Équipe Cliente Clientes Amigo Amiga Guest Guests And Or For With From
Style Beauty Home Kids Men Women Deals Offer Offers Weekend Mr Mrs Ms Miss Mx Dr Prof
Herr Frau Mme Mlle Sr Sra Only Someone
""".split())  # noqa: SIM905
# fmt: on

_EN_TYPES = (
    r"Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Way|Terrace|Close|Crescent|"
    r"Square|Parkway|Highway|Circle|Trail|Row|Mews|Grove|Gardens|Walk"
)
_EN_ABBR = r"St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Sq|Pkwy|Hwy|Cir"
_CITY = (
    rf"{_NAME}(?:(?:[ \t]+|-)(?:(?:upon|on|am|an|der|sur|de|la|le|del)(?:[ \t]+|-))?{_NAME}){{0,2}}"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_EN_ADDRESS = re.compile(
    rf"(?:\b(?:Flat|Apartment|Apt\.?|Unit|Suite)[ \t]+\w{{1,5}},?[ \t]+)?"
    rf"\b\d{{1,5}}[A-Za-z]?[ \t]+(?:(?:[NSEW]|North|South|East|West)[ \t]+)?"
    rf"(?:(?:{_NAME}|\d{{1,3}}(?:st|nd|rd|th))[ \t]+){{1,3}}"
    rf"(?:(?:{_EN_TYPES})\b|(?:{_EN_ABBR})\b(?:\.(?![ \t]+[A-Z]|[ \t]*$))?)"
    rf"(?:[ \t]+(?:NE|NW|SE|SW|N|S|E|W)\b)?"
    rf"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor)\.?[ \t]*#?[A-Za-z0-9-]{{1,6}}\b)?"
    rf"(?:,[ \t]*{_CITY}(?:,?[ \t]+(?:[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?|{_UK_POSTCODE})\b))?"
)
_CONTINENTAL_SUFFIX = (
    r"straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|"
    r"straat|gracht|laan|plein|kade|singel|dijk"
)
_CONTINENTAL_WORD = r"Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee"
_POSTCODE_CITY = (
    rf",[ \t]*(?:(?:D|A|CH|NL|F|E|I)-)?(?:\d{{5}}|\d{{4}}[ \t]?[A-Z]{{2}}|\d{{4}})[ \t]+{_CITY}"
)
_DE_ADDRESS = re.compile(
    rf"\b(?:[{_UP}][{_LO}]*(?:-[{_UP}][{_LO}]*)*(?:{_CONTINENTAL_SUFFIX})"
    rf"|{_NAME}(?:[ \t-]{_NAME})?[ \t-](?:{_CONTINENTAL_WORD}))"
    rf"[ \t]+\d{{1,4}}[a-z]?(?:-\d{{1,4}})?\b(?:{_POSTCODE_CITY})?"
)
_FR_ARTICLE = r"(?:(?:de[ \t]+la|de[ \t]+l'|des|du|de|d'|la|le|les|l')[ \t]*)"
_FR_ADDRESS = re.compile(
    rf"\b\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+"
    rf"(?i:rue|avenue|boulevard|bd|place|allée|chemin|impasse|quai|cours|route)[ \t]+"
    rf"{_FR_ARTICLE}?{_NAME}(?:(?:[ \t]+|-){_FR_ARTICLE}?{_NAME}){{0,3}}"
    rf"(?:,[ \t]*\d{{5}}[ \t]+{_CITY})?"
)
_ES_ARTICLE = r"(?:(?:de[ \t]+la|de[ \t]+los|de[ \t]+las|del|de|della|delle|dei|di)[ \t]+)"
_ES_IT_ADDRESS = re.compile(
    rf"(?<!\w)(?:(?:Calle|C/|Avenida|Avda\.|Plaza|Paseo|Carrer|Via|Viale|Piazza|Corso|Largo)"
    rf"[ \t]+{_ES_ARTICLE}?{_NAME}(?:[ \t]+{_ES_ARTICLE}?{_NAME}){{0,3}}|Gran Vía)"
    rf",?[ \t]+(?:n\.?[ \t]*|nº[ \t]*)?"
    rf"\d{{1,4}}[A-Za-z]?\b(?:,[ \t]*\d{{5}}[ \t]+{_CITY})?"
)

# Any street name, then house number, postcode and city ("Damrak 335, 1069 TM Amsterdam"):
# the postcode + city tail is what makes a bare name + number an address.
_STREET_WITH_POSTCODE = re.compile(
    rf"\b{_NAME}(?:[ \t]+{_NAME}){{0,2}}[ \t]+\d{{1,4}}[a-z]?{_POSTCODE_CITY}"
)

_ADDRESS_PATTERNS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (_EN_ADDRESS, re.compile(r"\d[A-Za-z]?[ \t]+[A-Z0-9NSEW]")),
    (_DE_ADDRESS, _any_of("str", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer",
                          "chaussee", "steig", "gracht", "laan", "plein", "kade", "singel", "dijk",
                          ignore_case=True)),
    (_FR_ADDRESS, _any_of("rue", "avenue", "boulevard", "bd", "place", "allée", "chemin",
                          "impasse", "quai", "cours", "route", ignore_case=True)),
    (_ES_IT_ADDRESS, _any_of("calle", "c/", "avenida", "avda", "plaza", "paseo", "carrer",
                             "via", "vía", "piazza", "corso", "largo", ignore_case=True)),
    (_STREET_WITH_POSTCODE, re.compile(r",[ \t]*(?:[A-Z]{1,2}-)?\d{4}")),
)  # fmt: skip


# Each pattern with the words it needs (a cheap substring test before the regex runs)
# and how many name words it takes to flag.
# Each pattern with the words it needs (a cheap search before the full regex runs)
# and how many name words it takes to flag.
_PERSON_PATTERNS: tuple[tuple[re.Pattern[str], re.Pattern[str], int], ...] = (
    (_TITLED, _any_of("Mr", "Ms", "Miss", "Mx", "Dr", "Prof", "Herr", "Frau", "Mme", "Sr"), 1),
    (_GREETED, _any_of("Dear", "Hi", "Hello", "Hey", "Hallo", "Liebe", "Bonjour", "Hola",
                       "Ciao", "Welcome back"), 2),
    (_SIGNED, _any_of("egards", "incerely", "est wishes", "Cheers", "Thank", "Grüße",
                      "Cordialement", "Saludos", "Yours"), 2),
    (_LABELLED, _any_of("ame", "hip to", "eliver to", "ecipient", "Attn", "ttention",
                        "ardholder", "ccount holder", "illed to", "old to"), 2),
    (_REVIEWED, _any_of(" by "), 2),
    (_NAMED_BEFORE, _any_of("just ", "from our", "from the", "verified"), 2),
)  # fmt: skip


def find_people(text: str) -> Iterator[Finding]:
    """Yield names after a title (Ms Lee), or full names after a greeting, sign-off or label,
    or before a social-proof cue ("… just bought", "— Ann Lee, verified buyer")."""
    for pattern, cues, min_words in _PERSON_PATTERNS:
        if not cues.search(text):
            continue
        for m in pattern.finditer(text):
            group = m.lastindex or 1  # _NAMED_BEFORE has the name in group 1 or 2
            span = _name_span(m.group(group), m.start(group), min_words)
            if span:
                yield Finding(PiiType.PERSON, *span)


def _name_span(name: str, start: int, min_words: int) -> tuple[int, int] | None:
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(name)]
    # "Dear Ann Lee Your order…": the name ends at the first word that is not a name.
    kept: list[tuple[int, int, str]] = []
    for word in words:
        if word[2] in _NOT_NAMES:
            break
        kept.append(word)
    while kept and not kept[-1][2][0].isupper():
        kept.pop()  # never end on a particle ("Ann van")
    if sum(w[0].isupper() for _, _, w in kept) < min_words:
        return None
    return start + kept[0][0], start + kept[-1][1]


def find_addresses(text: str) -> Iterator[Finding]:
    """Yield street addresses (house number + street) with postcode and city when present."""
    for pattern, cues in _ADDRESS_PATTERNS:
        if not cues.search(text):
            continue
        for m in pattern.finditer(text):
            yield Finding(PiiType.ADDRESS, m.start(), m.end())
