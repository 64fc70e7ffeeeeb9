"""Postal addresses: street + house number shapes per country, postcode and city tails.

- English: house number, street name, a street suffix from USPS Publication 28
  (Appendix C1) or the British ones (Close, Mews, …), then an optional unit ("Apt 4B",
  "Suite 251") and city + state + ZIP or city + UK postcode. The common suffixes
  (Street, Road, Avenue, …) flag on their own; the rest of the USPS list ("Lights",
  "Ridge", "Pass") only with a unit, a city tail or an address word shortly before
  ("ship to", "deliver", "address"), as they also name products.
  A British unit line may come first ("Flat 3, King Road").
- German and Dutch: compound street words (…straße, …weg, …gracht, …laan) or two
  words ("Berliner Straße", "Am Anger") + number (12, 12a, 5-7, 8/2).
- French: number, street type (rue, avenue, …), name; Spanish and Italian: street type
  (Calle, Paseo, Via, Piazza, …), name, number, floor/door.
- Any street name + number followed by ", postcode City".

The span covers the whole address: unit, street, number, postcode and city.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from compliance.pii.finding import Finding, PiiType

_UP = "A-ZÀ-ÖØ-Þ"
_LO = "a-zß-öø-ÿ"
_NAME = (
    rf"(?:Mc|Mac|O['’]|D['’])?[{_UP}][{_LO}]+(?:['’][{_UP}{_LO}][{_LO}]+)?"
    rf"(?:-[{_UP}{_LO}][{_LO}]+)*"
)
_B = r"[ \t]+"  # a blank inside an address line

# USPS Publication 28, Appendix C1 (primary street suffix names), plus British ones.
# fmt: off
_CORE_SUFFIXES = """
Street Avenue Road Boulevard Lane Drive Court Place Terrace Close Crescent Square Parkway
Highway Circle Way Mews Gardens Grove Row
""".split()  # noqa: SIM905
_MORE_SUFFIXES = """
Alley Anex Annex Arcade Bayou Beach Bend Bluff Bluffs Bottom Branch Bridge Brook Brooks
Burg Burgs Bypass Camp Canyon Cape Causeway Center Centers Centre Circles Cliff Cliffs
Club Common Commons Corner Corners Course Courts Cove Coves Creek Crest Crossing Crossroad
Curve Dale Dam Divide Drives Estate Estates Expressway Extension Extensions Fall Falls
Ferry Field Fields Flat Flats Ford Fords Forest Forge Forges Fork Forks Fort Freeway
Garden Gateway Glen Glens Green Greens Groves Harbor Harbors Haven Heights Hill Hills
Hollow Inlet Island Islands Isle Junction Junctions Key Keys Knoll Knolls Lake Lakes Land
Landing Light Lights Loaf Lock Locks Lodge Loop Mall Manor Manors Meadow Meadows Mill
Mills Mission Motorway Mount Mountain Mountains Neck Orchard Oval Overpass Park Parks
Parkways Pass Passage Path Pike Pine Pines Plain Plains Plaza Point Points Port Ports
Prairie Radial Ramp Ranch Rapid Rapids Rest Ridge Ridges River Roads Route Run Shoal
Shoals Shore Shores Skyway Spring Springs Spur Spurs Squares Station Stravenue Stream
Streets Summit Throughway Trace Track Trafficway Trail Trailer Tunnel Turnpike Underpass
Union Unions Valley Valleys Viaduct View Views Village Villages Ville Vista Walk Walks
Wall Ways Well Wells Rise Drove Wynd Parade Quay Yard Chase Croft Approach Embankment Hey
Fold Gate Side
""".split()  # noqa: SIM905
_ABBREVIATIONS = """
St Ave Av Rd Blvd Ln Dr Ct Pl Sq Pkwy Hwy Cir Ter Terr Trl Cres Cl Gdns
""".split()  # noqa: SIM905
# fmt: on
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building|Studio|#)"
_SECONDARY = rf"(?:,?{_B}{_UNIT}\.?[ \t]*#?[A-Za-z0-9-]{{1,6}}\b)"
# "McAllen", "LaSalle", "Carru'", "Ca' Zuliani"
_CITY_WORD = rf"(?:{_NAME}(?:[{_UP}][{_LO}]+)?(?:['’](?![\w]))?|Ca['’])"
_CITY = (
    rf"(?:['’]s-|['’]t{_B}|(?:St|Ste|S)\.{_B})?{_CITY_WORD}(?:(?:{_B}|-|/)(?:(?i:upon|on|am|an|der|im|sur|de|la|le|les|del|"
    rf"di|sul|al|en|aan|op|bei|e|y|et|und|in)(?:{_B}|-))?{_CITY_WORD}){{0,3}}"
)
_US_TAIL = rf"(?:,{_B}{_CITY},?{_B}[A-Z]{{2}}{_B}\d{{5}}(?:-\d{{4}})?)"
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_UK_TAIL = rf"(?:,{_B}{_CITY},?{_B}{_UK_POSTCODE})"
_EN_STREET = (
    rf"(?:(?:[NSEW]|North|South|East|West|Old|Upper|Lower){_B})?"
    rf"(?:(?:{_NAME}|\d{{1,3}}(?:st|nd|rd|th)){_B}){{1,3}}"
)
_EN_SUFFIX = (
    rf"(?:(?P<core>(?:{'|'.join(_CORE_SUFFIXES)})\b|(?:{'|'.join(_ABBREVIATIONS)})\b"
    rf"(?:\.(?![ \t]+[{_UP}]|[ \t]*$))?)|(?:{'|'.join(_MORE_SUFFIXES)})\b)"
)
_EN_ADDRESS = re.compile(
    rf"(?:\b(?P<unit>{_UNIT})\.?[ \t]*\w{{1,5}},?{_B})?"
    rf"(?:\b\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?,?{_B}(?P<numbered>)|(?(unit)|(?!)))"
    rf"{_EN_STREET}{_EN_SUFFIX}"
    rf"(?:{_B}(?:NE|NW|SE|SW|N|S|E|W)\b)?"
    rf"(?P<secondary>{_SECONDARY})?"
    rf"(?P<tail>{_US_TAIL}|{_UK_TAIL})?"
)
# An address word shortly before a street whose suffix is not a common one.
_ADDRESS_CUE = re.compile(
    r"(?:\bto|\bat|\bin|address|ship|deliver|send|sent|live|lives|moved|located|visit|"
    r"billing|shipping|collection point|pickup|pick-up|adresse|dirección|indirizzo|"
    r"llegará a|entrega|envío|livraison|livré|consegna|lieferung|geliefert|bezorgd)"
    r"\b[^.!?]{0,40}$",
    re.IGNORECASE,
)

_CONTINENTAL_STRONG = (
    r"straße|strasse|str\.|gasse|allee|platz|chaussee|stieg|straat|gracht|laan|plein|"
    r"kade|singel|dijk|steeg|dreef|weg|pad|boulevard|markt|kai"
)
_CONTINENTAL_WORD = (
    r"Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Markt|Steig|Pfad"
)
_HOUSE_NUMBER = r"\d{1,5}[a-zA-Z]?(?:[ \t]?[-/][ \t]?\d{1,4}[a-z]?)?"
_POSTCODE_CITY = (
    rf"(?:(?:D|A|CH|NL|F|E|I|B|L)-)?(?:\d{{5}}|\d{{4}}[ \t]?[A-Z]{{2}}|\d{{4}}|\d{{2}}-\d{{3}})"
    rf"{_B}{_CITY}"
)
_PARTICLE_PREFIX = r"(?:(?:van|von|de|der|den|ten|ter|op|in|aan|het|'t)[ \t]+){0,2}"
_DE_NL_ADDRESS = re.compile(
    rf"(?<![\w-])(?:{_PARTICLE_PREFIX}[{_UP}{_LO}][{_LO}]*(?:-[{_UP}{_LO}][{_LO}]*)*"
    rf"(?:{_CONTINENTAL_STRONG})"
    rf"|(?:{_NAME}|Am|Im|An|Auf|Zum|Zur|Unter|Vor|Hinter|Alte|Alter|Neue|Neuer)"
    rf"(?:[ \t-]{_NAME})?[ \t-](?:{_CONTINENTAL_WORD}))"
    rf"{_B}{_HOUSE_NUMBER}\b(?:,{_B}{_POSTCODE_CITY})?"
)
_FR_ARTICLE = r"(?:(?:de[ \t]+la|de[ \t]+l['’]|des|du|de|d['’]|la|le|les|l['’]|aux|au)[ \t]*)"
_FR_TYPES = (
    r"rue|avenue|av\.|boulevard|bd|place|allée|chemin|impasse|quai|cours|route|square|"
    r"passage|voie|sentier|esplanade|promenade|faubourg|rond-point|cité|villa|hameau|"
    r"résidence|parvis"
)
_FR_STREET = (
    rf"(?i:{_FR_TYPES})[ \t]+{_FR_ARTICLE}?{_NAME}"
    rf"(?:(?:[ \t]+|-){_FR_ARTICLE}?{_NAME}){{0,4}}"
)
_FR_ADDRESS = re.compile(
    rf"\b\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+{_FR_STREET}(?:,{_B}\d{{5}}{_B}{_CITY})?"
    rf"|(?<!\w){_FR_STREET},{_B}\d{{5}}{_B}{_CITY}"
)
_ES_IT_ARTICLE = (
    r"(?:(?:de[ \t]+la|de[ \t]+los|de[ \t]+las|del|de|della|delle|dei|degli|di|da|dal|"
    r"dello|d['’])[ \t]*)"
)
_ES_IT_TYPES = (
    r"Calle|C/|C\.|Avenida|Avda\.|Av\.|Paseo|Plaza|Camino|Carretera|Ctra\.|Ronda|Travesía|"
    r"Pasaje|Cuesta|Cañada|Acceso|Vial|Glorieta|Alameda|Rambla|Urbanización|Callejón|"
    r"Pasadizo|Bajada|Subida|Carrer|Passeig|Plaça|Rúa|Via|Viale|Piazza|Piazzale|Corso|"
    r"Largo|Vicolo|Strada|Contrada|Borgo|Rotonda|Stretto|Incrocio|Canale|Lungomare|"
    r"Lungotevere|Galleria|Salita|Traversa|Vico|Piazzetta|Località"
)
_ES_IT_UNIT = (
    r"(?:,?[ \t]+(?:Piso|Puerta|Planta|Escalera|Esc\.|Bajo|Apt\.|Apto\.|Appartamento|"
    r"Piano|Interno|Int\.|Scala)[ \t]*\w{1,4})"
)
_ES_IT_ADDRESS = re.compile(
    rf"(?<!\w)(?:(?:{_ES_IT_TYPES})[ \t]+{_ES_IT_ARTICLE}?{_NAME}"
    rf"(?:[ \t]+{_ES_IT_ARTICLE}?{_NAME}){{0,4}}|Gran Vía)"
    rf",?[ \t]+(?:n\.?[ \t]*|nº[ \t]*|núm\.[ \t]*)?\d{{1,4}}[A-Za-z]?\b(?:º|ª)?"
    rf"{_ES_IT_UNIT}{{0,2}}(?:,{_B}\d{{5}}{_B}{_CITY})?"
)
# Any street name, then house number, postcode and city ("Damrak 335, 1069 TM Amsterdam"):
# the postcode + city tail is what makes a bare name + number an address.
_STREET_WITH_POSTCODE = re.compile(
    rf"\b{_NAME}(?:[ \t]+{_NAME}){{0,2}}[ \t]+{_HOUSE_NUMBER},{_B}{_POSTCODE_CITY}"
)


def _any_of(*cues: str, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, cues)), re.IGNORECASE if ignore_case else 0)


# Each pattern with the lower-case words one of which it needs (plain substring tests on
# the lower-cased text: much cheaper than a case-insensitive alternation on every text).
_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (_DE_NL_ADDRESS, (
        "straße", "strasse", "str.", "gasse", "allee", "platz", "chaussee", "stieg", "straat",
        "gracht", "laan", "plein", "kade", "singel", "dijk", "steeg", "dreef", "weg", "pad",
        "boulevard", "markt", "kai", "ring", "damm", "ufer", "steig", "pfad")),
    (_FR_ADDRESS, tuple(t.replace("\\", "") + " " for t in _FR_TYPES.split("|"))),
    (_ES_IT_ADDRESS, (*(t.replace("\\", "").lower() + " " for t in _ES_IT_TYPES.split("|")),
                      "gran vía")),
)  # fmt: skip
_POSTCODE_AFTER_COMMA = re.compile(r",[ \t]*(?:[A-Z]{1,2}-)?\d{2}")
_EN_CUE = re.compile(r"\d[A-Za-z]?,?[ \t]+[A-Z0-9NSEW]|(?:Flat|Studio|Apartment|Unit|Suite) ")


def find_addresses(text: str) -> Iterator[Finding]:
    """Yield street addresses (house number + street) with unit, postcode and city."""
    if _EN_CUE.search(text):
        for m in _EN_ADDRESS.finditer(text):
            if m.group("core") is None and not (
                m.group("secondary")
                or m.group("tail")
                or m.group("unit")
                or _ADDRESS_CUE.search(text, max(0, m.start() - 50), m.start())
            ):
                continue  # "2 Black Ridge": a less common suffix needs more evidence
            yield Finding(PiiType.ADDRESS, m.start(), m.end())
    lowered = text.lower()
    for pattern, words in _PATTERNS:
        if any(w in lowered for w in words):
            for m in pattern.finditer(text):
                yield Finding(PiiType.ADDRESS, m.start(), m.end())
    if _POSTCODE_AFTER_COMMA.search(text):
        for m in _STREET_WITH_POSTCODE.finditer(text):
            yield Finding(PiiType.ADDRESS, m.start(), m.end())
