"""Generators of personal values and look-alikes for the PII evaluation set.

People's names come from Mimesis (Danish, Dutch, French, German, Italian, Polish,
Portuguese, Spanish, Swedish) and Faker (American, British); postal addresses, email
addresses, company and city names and some card numbers and IBANs from Faker's locale
providers (en_US, en_GB, de_DE, fr_FR, es_ES, it_IT, nl_NL, …). Both are seeded from the
set's seed. `bench.evalkit.pii_eval_sources` lists every source and its role, and why
none of them is one the scanner's word lists are built from. The other identifiers are
generated from their published rules (scheme IIN tables and Luhn, ISO 13616 IBAN
structures and MOD 97-10, national numbering plans, §139b AO for the German tax id, the
Spanish DNI letter table), in the generating direction. Nothing here imports the
scanner: a scanner bug cannot hide in its own test data.
"""

from __future__ import annotations

import random
import string

from faker import Faker
from mimesis import Person
from mimesis.enums import Gender
from mimesis.locales import Locale

from bench.evalkit.pii_eval_sources import FAKER_NAME_LOCALES, MIMESIS_LOCALES

# -- check digits, computed in the generating direction ------------------------------


def luhn_check_digit(payload: str) -> str:
    """The digit that, appended to `payload`, makes a Luhn-valid number."""
    total = 0
    for position, ch in enumerate(reversed(payload)):
        value = int(ch)
        if position % 2 == 0:  # these positions are doubled once the check digit is added
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 7064 MOD 97-10 check digits for `country` + `bban` (ECBS TR201 procedure)."""
    moved = bban + country + "00"
    remainder = 0
    for ch in moved:  # piecewise, one character at a time
        value = ord(ch) - 55 if ch.isalpha() else int(ch)
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return f"{98 - remainder:02d}"


def de_tax_id_check_digit(first_ten: str) -> str:
    """ISO 7064 MOD 11,10 check digit of a German Steuer-ID (BZSt specification)."""
    product = 10
    for ch in first_ten:
        subtotal = (int(ch) + product) % 10
        if subtotal == 0:
            subtotal = 10
        product = (2 * subtotal) % 11
    check = 11 - product
    return "0" if check == 10 else str(check)


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"  # Ministerio del Interior, number mod 23


# -- value generators ------------------------------------------------------------------

# fmt: off
CARD_BRANDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "visa": (("4",), (16, 16, 16, 13, 19)),
    "mastercard": (("51", "52", "53", "54", "55"), (16,)),
    "mastercard-2": (tuple(str(p) for p in range(2221, 2721)), (16,)),
    "amex": (("34", "37"), (15,)),
    "discover": (("6011", "644", "645", "649", "65"), (16,)),
    "jcb": (tuple(str(p) for p in range(3528, 3590)), (16,)),
    "diners": (("36", "38", "300", "305"), (14,)),
    "unionpay": (("62",), (16, 19)),
    "maestro": (("6759", "5018", "6304"), (16, 18, 19)),
    "mir": (("2200", "2201", "2202", "2204"), (16,)),
}

# IBAN structure per country (ISO 13616 registry): (kind, length) parts of the BBAN,
# n = digits, a = upper-case letters, c = letters or digits.
IBAN_FORMATS: dict[str, tuple[tuple[str, int], ...]] = {
    "DE": (("n", 8), ("n", 10)),
    "GB": (("a", 4), ("n", 6), ("n", 8)),
    "FR": (("n", 5), ("n", 5), ("c", 11), ("n", 2)),
    "ES": (("n", 4), ("n", 4), ("n", 1), ("n", 1), ("n", 10)),
    "IT": (("a", 1), ("n", 5), ("n", 5), ("c", 12)),
    "NL": (("a", 4), ("n", 10)),
    "BE": (("n", 3), ("n", 7), ("n", 2)),
    "AT": (("n", 5), ("n", 11)),
    "CH": (("n", 5), ("c", 12)),
    "PL": (("n", 8), ("n", 16)),
    "IE": (("a", 4), ("n", 6), ("n", 8)),
    "PT": (("n", 4), ("n", 4), ("n", 11), ("n", 2)),
    "SE": (("n", 3), ("n", 16), ("n", 1)),
    "DK": (("n", 4), ("n", 9), ("n", 1)),
    "NO": (("n", 4), ("n", 6), ("n", 1)),
    "LU": (("n", 3), ("c", 13)),
}

# Phone numbering plans: (national trunk prefix, country code, [(leading digits of an
# allocated block of national significant numbers, digits after them, national
# grouping)]). Within a block the next digit is 2-8: local numbers start neither with
# 0/1 (trunk and service prefixes) nor, in these blocks, with 9.
US_AREA_CODES = (
    "212", "213", "305", "312", "415", "503", "512", "602", "617", "646", "702", "713", "206",
    "303", "404", "919", "971",
)
PHONE_PLANS: dict[str, tuple[str, str, tuple[tuple[str, int, tuple[int, ...]], ...]]] = {
    "GB": ("0", "44", (
        ("207", 7, (2, 4, 4)), ("203", 7, (2, 4, 4)), ("208", 7, (2, 4, 4)),
        ("161", 7, (3, 3, 4)), ("121", 7, (3, 3, 4)), ("131", 7, (3, 3, 4)),
        ("7712", 6, (4, 6)), ("7826", 6, (4, 6)), ("7956", 6, (4, 6)), ("800", 7, (3, 3, 4)),
    )),
    "DE": ("0", "49", (
        ("30", 8, (2, 8)), ("40", 7, (2, 7)), ("89", 8, (2, 8)), ("69", 7, (2, 7)),
        ("221", 7, (3, 7)), ("711", 6, (3, 6)),
        ("151", 8, (3, 8)), ("160", 7, (3, 7)), ("171", 7, (3, 7)), ("176", 8, (3, 8)),
    )),
    "FR": ("0", "33", (
        ("1", 8, (1, 2, 2, 2, 2)), ("4", 8, (1, 2, 2, 2, 2)), ("61", 7, (1, 2, 2, 2, 2)),
        ("67", 7, (1, 2, 2, 2, 2)), ("75", 7, (1, 2, 2, 2, 2)), ("78", 7, (1, 2, 2, 2, 2)),
    )),
    "ES": ("", "34", (("91", 7, (3, 3, 3)), ("93", 7, (3, 3, 3)), ("6", 8, (3, 3, 3)))),
    "IT": ("", "39", (("06", 8, (2, 4, 4)), ("02", 8, (2, 4, 4)), ("34", 8, (3, 3, 4)))),
    "NL": ("0", "31", (
        ("20", 7, (2, 3, 4)), ("10", 7, (2, 3, 4)), ("61", 7, (1, 8)), ("64", 7, (1, 8)),
    )),
}

# fmt: on


# Where a person's name comes from: (generator, locale), drawn uniformly; American names
# twice, as the shop's largest market. Faker locales for e-mail addresses (built from
# Faker's own names) and for postal addresses (the shop ships to these).
NAME_SOURCES: tuple[tuple[str, str], ...] = (
    *(("faker", locale) for locale in (*FAKER_NAME_LOCALES, "en_US")),
    *(("mimesis", locale) for locale in MIMESIS_LOCALES),
)
EMAIL_LOCALES = (
    "en_US", "en_US", "en_GB", "en_IE", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL",
    "pl_PL", "pt_PT", "sv_SE",
)  # fmt: skip
ADDRESS_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
TITLES = ("Mr", "Mrs", "Ms", "Dr", "Mr.", "Mrs.", "Ms.", "Dr.", "Miss", "Herr", "Frau", "Mme")


class Values:
    """Random personal values and look-alikes, each from its own generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._fakers: dict[str, Faker] = {}
        self._people: dict[str, Person] = {}
        self._faker_seed = rng.randrange(2**32)

    def faker(self, locale: str) -> Faker:
        """Faker for `locale`, seeded from this generator's seed (deterministic)."""
        if locale not in self._fakers:
            fake = Faker(locale)
            fake.seed_instance(self._faker_seed + sum(map(ord, locale)))
            # it_IT builds its city list from a set: its order, and so every draw after
            # it, changed with PYTHONHASHSEED. Sorted, the set is the same in every process.
            addresses = fake.provider("faker.providers.address")
            if addresses is not None and isinstance(getattr(addresses, "cities", None), list):
                addresses.cities = sorted(addresses.cities)  # type: ignore[attr-defined]
            self._fakers[locale] = fake
        return self._fakers[locale]

    def mimesis(self, locale: str) -> Person:
        """Mimesis person generator for `locale`, seeded from this generator's seed."""
        if locale not in self._people:
            seed = self._faker_seed + sum(map(ord, locale))
            self._people[locale] = Person(Locale(locale), seed=seed)
        return self._people[locale]

    def _any_faker(self, locales: tuple[str, ...] = EMAIL_LOCALES) -> Faker:
        return self.faker(self.rng.choice(locales))

    def _name_parts(self, surnames: int) -> tuple[str, str, list[str]]:
        # (generator, given name, surnames) from one source, one gender.
        generator, locale = self.rng.choice(NAME_SOURCES)
        if generator == "faker":
            fake = self.faker(locale)
            return locale, fake.first_name(), [fake.last_name() for _ in range(surnames)]
        person = self.mimesis(locale)
        gender = self.rng.choice((Gender.FEMALE, Gender.MALE))
        given = person.first_name(gender)
        return locale, given, [person.last_name(gender) for _ in range(surnames)]

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    # personal data

    def card_digits(self, brand: str | None = None) -> str:
        """A Luhn-valid card number in `brand`'s IIN range and length."""
        brand = brand or self.rng.choice(list(CARD_BRANDS))
        prefixes, lengths = CARD_BRANDS[brand]
        prefix, length = self.rng.choice(prefixes), self.rng.choice(lengths)
        payload = prefix + self._digits(length - len(prefix) - 1)
        return payload + luhn_check_digit(payload)

    def card(self) -> str:
        if (
            self.rng.random() < 0.4
        ):  # Faker's brands (Visa, MC, Amex, Discover, JCB, Diners, Maestro)
            digits = self.faker("en_US").credit_card_number()
        else:
            digits = self.card_digits()
        return self._group_card(digits)

    def _group_card(self, digits: str) -> str:
        style = self.rng.choice(("solid", "space", "space", "dash"))
        if style == "solid":
            return digits
        sep = " " if style == "space" else "-"
        if len(digits) == 15 or len(digits) == 14:
            groups = [digits[:4], digits[4:10], digits[10:]]
        else:
            groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
        return sep.join(groups)

    def iban_compact(self, country: str | None = None) -> str:
        country = country or self.rng.choice(list(IBAN_FORMATS))
        parts = []
        for kind, length in IBAN_FORMATS[country]:
            alphabet = {
                "n": string.digits,
                "a": string.ascii_uppercase,
                "c": string.digits + string.ascii_uppercase,
            }[kind]
            parts.append("".join(self.rng.choice(alphabet) for _ in range(length)))
        bban = "".join(parts)
        return country + iban_check_digits(country, bban) + bban

    def iban(self) -> str:
        if self.rng.random() < 0.4:
            compact = self._any_faker(ADDRESS_LOCALES).iban()
        else:
            compact = self.iban_compact()
        if self.rng.random() < 0.5:
            return compact
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    def phone(self) -> str:
        if self.rng.random() < 0.3:
            return self._us_phone()
        country = self.rng.choice(list(PHONE_PLANS))
        trunk, code, ranges = PHONE_PLANS[country]
        lead, rest, grouping = self.rng.choice(ranges)
        nsn = lead + str(self.rng.randint(2, 8)) + self._digits(rest - 1)
        groups, i = [], 0
        for size in grouping:
            groups.append(nsn[i : i + size])
            i += size
        if self.rng.random() < 0.5:  # national format
            national = [trunk + groups[0], *groups[1:]]
            if country == "DE" and self.rng.random() < 0.3:
                return f"{national[0]}/{''.join(national[1:])}"
            if country == "FR" and self.rng.random() < 0.3:
                return ".".join(national)
            return " ".join(national)
        if country == "DE" and self.rng.random() < 0.2:
            return f"+49 (0){groups[0]} {''.join(groups[1:])}"
        if self.rng.random() < 0.15:
            return f"00{code} {' '.join(groups)}"
        return f"+{code} {' '.join(groups)}"

    def _us_phone(self) -> str:
        area = self.rng.choice((*US_AREA_CODES, "800", "888"))
        exchange = str(self.rng.randint(2, 9)) + self._digits(2)
        if exchange[1:] == "11" or exchange == "555":
            exchange = "234"
        line = self._digits(4)
        return self.rng.choice(
            (
                f"({area}) {exchange}-{line}",
                f"{area}-{exchange}-{line}",
                f"{area}.{exchange}.{line}",
                f"+1 {area} {exchange} {line}",
                f"+1-{area}-{exchange}-{line}",
                f"1-{area}-{exchange}-{line}",
            )
        )

    def email(self) -> str:
        fake = self._any_faker()
        address = self.rng.choice(
            (fake.free_email, fake.email, fake.company_email, fake.ascii_free_email)
        )()
        return address.upper() if self.rng.random() < 0.05 else address

    def ipv4(self) -> str:
        first = self.rng.choice((10, 172, 192, 81, 94, 203, 62, 185, 31))
        return ".".join(str(x) for x in (first, *(self.rng.randint(0, 255) for _ in range(3))))

    def ipv6(self) -> str:
        groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        groups[0] = self.rng.choice(("2001", "2a02", "2a00", "fe80", "2607"))
        if self.rng.random() < 0.5:
            return ":".join(groups)
        cut = self.rng.randint(2, 5)  # replace a zero run by "::"
        return ":".join(groups[:cut]) + "::" + ":".join(groups[cut + 2 :])

    def ip(self) -> str:
        return self.ipv4() if self.rng.random() < 0.65 else self.ipv6()

    def ssn(self) -> str:
        area = self.rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"

    def nino(self) -> str:
        first = self.rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = self.rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            first, second = "A", "B"
        digits = self._digits(6)
        suffix = self.rng.choice("ABCD")
        if self.rng.random() < 0.5:
            return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{first}{second}{digits}{suffix}"

    def de_tax_id(self) -> str:
        # §139b AO: ten digits, the first not 0, exactly one digit used twice.
        pool = list(string.digits)
        self.rng.shuffle(pool)
        chosen = pool[:9]
        doubled = self.rng.choice(chosen)
        body = [*chosen, doubled]
        self.rng.shuffle(body)
        if body[0] == "0":
            swap = next(i for i, d in enumerate(body) if d != "0")
            body[0], body[swap] = body[swap], body[0]
        first_ten = "".join(body)
        number = first_ten + de_tax_id_check_digit(first_ten)
        if self.rng.random() < 0.5:
            return number
        return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}"

    def es_dni(self) -> str:
        if self.rng.random() < 0.25:
            prefix = self.rng.choice("XYZ")
            digits = self._digits(7)
            letter = DNI_LETTERS[int(str("XYZ".index(prefix)) + digits) % 23]
            return f"{prefix}{digits}{letter}"
        digits = self._digits(8)
        letter = DNI_LETTERS[int(digits) % 23]
        return f"{digits}{'-' if self.rng.random() < 0.3 else ''}{letter}"

    def national_id(self) -> str:
        return self.rng.choice((self.ssn, self.nino, self.de_tax_id, self.es_dni))()

    def first(self) -> str:
        """A given name alone (not personal data on its own)."""
        return self._name_parts(0)[1]

    def last(self) -> str:
        """A surname alone (after a title: "Dear Ms Lee")."""
        return self._name_parts(1)[2][0]

    def full_name(self) -> str:
        """Given name and surname of one person; Spanish and Portuguese often two surnames."""
        locale, given, surnames = self._name_parts(2)
        if locale in ("es", "pt") and self.rng.random() < 0.4:
            return " ".join((given, *surnames))
        return f"{given} {surnames[0]}"

    def title(self) -> str:
        return self.rng.choice(TITLES)

    def address(self) -> str:
        """A street address of one locale, with postcode and city most of the time."""
        locale = self.rng.choice(ADDRESS_LOCALES)
        fake = self.faker(locale)
        # One line: Faker's "Flat 3\nKing Road" is written "Flat 3, King Road" in copy.
        street = ", ".join(" ".join(line.split()) for line in fake.street_address().splitlines())
        if locale == "en_US":
            if self.rng.random() < 0.3:
                return street
            return f"{street}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        if locale == "en_GB":
            if self.rng.random() < 0.2:
                return street
            return f"{street}, {fake.city()} {fake.postcode()}"
        return f"{street}, {fake.postcode()} {fake.city()}"

    def company(self) -> str:
        """A company name (often built from surnames: not a person)."""
        return self._any_faker(ADDRESS_LOCALES).company()

    def city(self) -> str:
        """A city name alone (not an address)."""
        return self._any_faker(ADDRESS_LOCALES).city()

    # look-alikes (never personal data)

    def bad_card(self) -> str:
        digits = self.card_digits()
        wrong = str((int(digits[-1]) + self.rng.randint(1, 9)) % 10)
        return self._group_card(digits[:-1] + wrong)

    def bad_iban(self) -> str:
        compact = self.iban_compact()
        wrong = f"{(int(compact[2:4]) + self.rng.randint(1, 40)) % 97 + 2:02d}"
        if wrong == compact[2:4]:
            wrong = f"{(int(wrong) + 1) % 97 + 2:02d}"
        compact = compact[:2] + wrong + compact[4:]
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    def order(self) -> str:
        return self.rng.choice(
            (
                f"#{self.rng.randint(1000, 99999)}",
                f"#{self._digits(9)}",
                f"ORD-{self.rng.randint(2023, 2026)}-{self._digits(6)}",
                f"{self._digits(3)}-{self._digits(7)}-{self._digits(7)}",
                f"#{self._digits(10)}",
                f"A{self._digits(8)}",
            )
        )

    def sku(self) -> str:
        return self.rng.choice(
            (
                f"SKU {self._digits(4)}-{self.rng.choice(('BLK', 'NVY', 'RED'))}-"
                f"{self.rng.choice('SML')}",
                f"{self._digits(4)}-{self._digits(4)}-{self._digits(2)}",
                f"MX{self._digits(5)}",
                f"{self._digits(6)}.{self._digits(3)}",
            )
        )

    def ean(self) -> str:
        body = self.rng.choice(("400", "401", "500", "761", "890")) + self._digits(9)
        odd = sum(int(d) for d in body[::2])
        even = sum(int(d) for d in body[1::2])
        return body + str((10 - (odd + 3 * even) % 10) % 10)

    def tracking(self) -> str:
        return self.rng.choice(
            (
                f"1Z{self.rng.choice(('999AA1', '4E2F95', 'A12B34'))}{self._digits(10)}",
                " ".join(["9400", *(self._digits(4) for _ in range(4)), self._digits(2)]),
                f"JJD{self._digits(18)}",
                f"{self._digits(2)}{self.rng.choice(('DE', 'GB'))}{self._digits(9)}",
            )
        )

    def price(self) -> str:
        whole = self.rng.choice((9, 19, 49, 129, 1299, 24999))
        return self.rng.choice(
            (
                f"${whole:,}.99",
                f"€{whole},95",
                f"£{whole}.00",
                f"{whole:,}.00 €".replace(",", "."),
                f"CHF {whole}.–",
            )
        )

    def date(self) -> str:
        d, m, y = self.rng.randint(1, 28), self.rng.randint(1, 12), self.rng.randint(2024, 2027)
        return self.rng.choice(
            (f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}",
             f"{d} {('Jan', 'Mar', 'May', 'Aug', 'Nov')[m % 5]} {y}")
        )  # fmt: skip

    def percent(self) -> str:
        return f"{self.rng.choice((10, 15, 20, 25, 30, 40, 50, 70))}%"

    def version(self) -> str:
        return self.rng.choice(
            (
                f"v{self.rng.randint(1, 12)}.{self.rng.randint(0, 9)}.{self.rng.randint(0, 30)}",
                f"version {self.rng.randint(1, 20)}.{self.rng.randint(0, 9)}."
                f"{self.rng.randint(0, 9)}.{self.rng.randint(0, 99)}",
                f"iOS {self.rng.randint(15, 18)}.{self.rng.randint(0, 6)}",
            )
        )

    def masked_card(self) -> str:
        return self.rng.choice(
            (f"**** **** **** {self._digits(4)}", f"ending in {self._digits(4)}",
             f"XXXX-XXXX-XXXX-{self._digits(4)}")
        )  # fmt: skip

    def postcode_alone(self) -> str:
        return self.rng.choice(
            (f"ZIP {self._digits(5)}", f"{self._digits(5)} {self.faker('de_DE').city()}",
             f"all {self.rng.choice(('SW', 'EC', 'M', 'LS'))}{self.rng.randint(1, 20)} postcodes",
             f"postcode {self._digits(4)}")
        )  # fmt: skip

    def hours(self) -> str:
        return self.rng.choice(("Mon–Fri 9:00–18:00", "24/7", "8am–8pm ET", "10:00-16:00 CET"))
