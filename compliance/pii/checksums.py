"""Check digits and number-range rules that separate real identifiers from look-alikes.

Pure functions over digit strings (separators already removed). A pattern alone flags
every order number; these are what keep the scanner's precision high.
"""

from __future__ import annotations

# (first IIN digits as an inclusive range over a fixed prefix length, allowed lengths).
# Sources: ISO/IEC 7812 issuer tables as published by the schemes (2024). Overlaps are
# harmless: a number only has to fit one brand.
_CARD_RANGES: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    # prefix length, low, high, lengths
    (1, 4, 4, frozenset({13, 16, 19})),  # Visa (incl. Electron)
    (2, 51, 55, frozenset({16})),  # Mastercard
    (4, 2221, 2720, frozenset({16})),  # Mastercard 2-series
    (2, 34, 34, frozenset({15})),  # American Express
    (2, 37, 37, frozenset({15})),  # American Express
    (4, 6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (3, 644, 649, frozenset({16, 17, 18, 19})),  # Discover
    (2, 65, 65, frozenset({16, 17, 18, 19})),  # Discover / RuPay
    (6, 622126, 622925, frozenset({16, 17, 18, 19})),  # Discover co-brand (UnionPay)
    (2, 62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (2, 81, 82, frozenset({16})),  # UnionPay / RuPay
    # JCB: 3528-3589 issued; the whole 35 block is reserved to JCB, and generators
    # (and some issuers' test ranges) use it. 2131 and 1800 are JCB's old 15-digit IINs.
    (2, 35, 35, frozenset({16, 17, 18, 19})),  # JCB
    (4, 2131, 2131, frozenset({15})),  # JCB (15 digits)
    (4, 1800, 1800, frozenset({15})),  # JCB (15 digits)
    (3, 300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club International
    (2, 36, 36, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club International
    (2, 38, 39, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (4, 3095, 3095, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (2, 50, 50, frozenset(range(12, 20))),  # Maestro
    (2, 56, 58, frozenset(range(12, 20))),  # Maestro
    (4, 6304, 6304, frozenset(range(12, 20))),  # Maestro (UK)
    (4, 6759, 6759, frozenset(range(12, 20))),  # Maestro (UK)
    (4, 6761, 6763, frozenset(range(12, 20))),  # Maestro
    (4, 604, 604, frozenset(range(12, 20))),  # Maestro (UK, "0604")
    (4, 6390, 6390, frozenset(range(12, 20))),  # Maestro
    (4, 2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (2, 60, 60, frozenset({16})),  # RuPay
    (3, 508, 508, frozenset({16})),  # RuPay
    (3, 636, 639, frozenset({16, 17, 18, 19})),  # InterPayment / InstaPayment
    (4, 9792, 9792, frozenset({16})),  # Troy
    (1, 1, 1, frozenset({15})),  # UATP
    (6, 506099, 506198, frozenset({16, 18, 19})),  # Verve
    (6, 650002, 650027, frozenset({16, 18, 19})),  # Verve
    (4, 5019, 5019, frozenset({16})),  # Dankort
    (4, 4571, 4571, frozenset({16})),  # Visa/Dankort
)


def luhn_valid(digits: str) -> bool:
    """True when `digits` (0-9 only) passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """True for a Luhn-valid number of a length some brand issues under its IIN."""
    n = len(digits)
    if n < 12 or n > 19 or len(set(digits)) < 2:
        return False
    if not any(
        n in lengths and low <= int(digits[:width]) <= high
        for width, low, high, lengths in _CARD_RANGES
    ):
        return False
    return luhn_valid(digits)


# ISO 13616 registry: country code -> total IBAN length.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """True for an upper-case, separator-free IBAN of its country's length with mod-97 == 1."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    if not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


# Numbers the SSA never issues or published as examples (wallet-card 078-05-1120 etc.).
_SSN_EXAMPLES = frozenset({"078051120", "219099999", "123456789"})


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """True for a US SSN outside the never-issued ranges (000, 666, 9xx, 00, 0000)."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_EXAMPLES


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_valid(nino: str) -> bool:
    """True for a UK National Insurance number (2 letters, 6 digits, A-D) HMRC can issue."""
    first, second = nino[0], nino[1]
    if first in "DFIQUV" or second in "DFIOQUV" or nino[:2] in _NINO_BAD_PREFIXES:
        return False
    return nino[2:8].isdigit() and nino[8] in "ABCD"


def de_tax_id_valid(digits: str) -> bool:
    """True for a German Steuer-ID: 11 digits, digit rule of §139b AO, ISO 7064 MOD 11,10."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    # One digit twice or three times, the others once (so one or two digits are missing).
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] != 1):
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(digits[10])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni_valid(number: str, letter: str) -> bool:
    """True for a Spanish DNI (8 digits) or NIE (X/Y/Z + 7 digits) with its check letter."""
    if number[0] in "XYZ":
        number = str("XYZ".index(number[0])) + number[1:]
    return _DNI_LETTERS[int(number) % 23] == letter
