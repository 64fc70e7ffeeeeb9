"""A labeled evaluation set for the PII scanner, generated from a seed at run time.

Texts are templates of real marketing copy (subject lines, product blurbs, headlines,
footers, customer-service replies). Personal values come from generators written for
this evaluation, from the published rules of each identifier, not from the scanner's
patterns: card numbers per brand with a Luhn check digit, IBANs per country with their
mod-97 check digits, phone numbers from each country's numbering plan in national and
international formats, names, streets and postcodes per country. Look-alikes (order
numbers, SKUs, tracking numbers, prices, dates, versions, invalid-checksum cards and
IBANs, masked numbers, postcodes alone, first-name greetings, person-like brand names
on the allow list) carry no label.

Gold span conventions: a PERSON span is the name without title or greeting ("Dear
Ms [Lee]"); an ADDRESS span is the whole inserted address, postcode and city included.

    from compliance.pii_eval import build_eval_set
    texts = build_eval_set(seed=5, size=1000)
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from compliance.pii_eval_values import Values

# -- what the set holds --------------------------------------------------------------


@dataclass(frozen=True)
class GoldSpan:
    """Personal data of `type` at `text[start:end]` in a labeled text."""

    type: str
    start: int
    end: int


@dataclass(frozen=True)
class LabeledText:
    """One evaluation text, its gold spans and the allow list it is scanned with."""

    text: str
    spans: tuple[GoldSpan, ...]
    allow: tuple[str, ...]
    kind: str


BRANDS = (
    "Dr. Martens", "Mr Porter", "Mrs. Meyer's", "Ted Baker", "Calvin Klein", "Tommy Hilfiger",
    "Ralph Lauren", "Kate Spade", "Marc Jacobs", "Tory Burch", "Hugo Boss", "Paul Smith",
    "Karl Lagerfeld", "Dr. Hauschka", "Vera Wang", "Patagonia", "Nordlicht", "Fjällräven",
)  # fmt: skip
SHOP = {
    "name": "Nordlicht Outfitters GmbH",
    "address": "Torstraße 109, 10119 Berlin",
    "email": "service@nordlicht-outfitters.de",
    "phone": "+49 30 2025 1190",
}
ALLOW: tuple[str, ...] = (*BRANDS, SHOP["name"], SHOP["address"], SHOP["email"], SHOP["phone"])

PRODUCTS = (
    "Merino Crew Sweater", "Trail Runner 2", "Canvas Weekender", "Linen Shirt Dress",
    "Down Parka 700", "Air Cushion 270", "Ceramic Pour-Over Set", "4K Action Cam X3",
    "Wool Beanie", "Leather Chelsea Boot", "Rain Shell Pro", "Cashmere Scarf",
)  # fmt: skip

# Card brands: IIN ranges and lengths from the schemes' published tables.


# -- templates of real marketing copy ------------------------------------------------

# Placeholders: labeled ones become gold spans of their type; the rest are look-alikes.
LABELED: dict[str, tuple[str, Callable[[Values], str]]] = {
    "EMAIL": ("EMAIL", Values.email),
    "PHONE": ("PHONE", Values.phone),
    "CARD": ("CREDIT_CARD", Values.card),
    "IBAN": ("IBAN", Values.iban),
    "IP": ("IP", Values.ip),
    "NATID": ("NATIONAL_ID", Values.national_id),
    "SSN": ("NATIONAL_ID", Values.ssn),
    "NINO": ("NATIONAL_ID", Values.nino),
    "STEUERID": ("NATIONAL_ID", Values.de_tax_id),
    "DNI": ("NATIONAL_ID", Values.es_dni),
    "FULLNAME": ("PERSON", Values.full_name),
    "LAST": ("PERSON", Values.last),
    "ADDRESS": ("ADDRESS", Values.address),
}
UNLABELED: dict[str, Callable[[Values], str]] = {
    "FIRST": Values.first,
    "TITLE": Values.title,
    "BRAND": lambda v: v.rng.choice(BRANDS),
    "PRODUCT": lambda v: v.rng.choice(PRODUCTS),
    "SHOP": lambda v: SHOP["name"],
    "SHOP_ADDRESS": lambda v: SHOP["address"],
    "SHOP_EMAIL": lambda v: SHOP["email"],
    "SHOP_PHONE": lambda v: SHOP["phone"],
    "ORDER": Values.order,
    "SKU": Values.sku,
    "EAN": Values.ean,
    "TRACKING": Values.tracking,
    "PRICE": Values.price,
    "DATE": Values.date,
    "PERCENT": Values.percent,
    "VERSION": Values.version,
    "BAD_CARD": Values.bad_card,
    "BAD_IBAN": Values.bad_iban,
    "MASKED_CARD": Values.masked_card,
    "POSTCODE": Values.postcode_alone,
    "HOURS": Values.hours,
    "YEAR": lambda v: str(v.rng.randint(1998, 2027)),
    "QTY": lambda v: str(v.rng.choice((2, 3, 5, 12, 250, 1000))),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "subject": (
        "{FIRST}, your {PRODUCT} ships today to {ADDRESS}",
        "Dear {TITLE} {LAST}, your refund to {IBAN} is on its way",
        "{FIRST}, {PERCENT} off {BRAND} ends {DATE}",
        "Your order {ORDER} has shipped – track it: {TRACKING}",
        "Last chance: {PRODUCT} for {PRICE} (was {PRICE})",
        "Re: your question about order {ORDER} – {FULLNAME} from our team replied",
        "Welcome back, {FULLNAME}! Here is {PERCENT} off",
        "New sign-in to your account from {IP}",
        "Hi {FIRST}, the {BRAND} edit is here",
        "Flash sale {DATE}: {QTY} pieces from {BRAND} under {PRICE}",
    ),
    "blurb": (
        "The {PRODUCT} by {BRAND} ({SKU}) – now {PRICE}, {PERCENT} off until {DATE}.",
        "{FULLNAME} from Portland just bought the {PRODUCT}. Only {QTY} left!",
        "Built to last since {YEAR}: the {PRODUCT}, item {SKU}, EAN {EAN}.",
        "“Warm, light and packs small.” — {FULLNAME}, verified buyer",
        "Pair it with {BRAND} boots – {PERCENT} off with code SPRING{YEAR}.",
        "Reviewed by {FULLNAME}: five stars for the {PRODUCT} from {BRAND}.",
        "Our {PRODUCT} comes with firmware {VERSION} and a {YEAR} warranty card.",
        "Gift card {BAD_CARD} is not valid for {BRAND} items.",
    ),
    "headline": (
        "Summer Sale: up to {PERCENT} off {BRAND}",
        "Dear {TITLE} {FULLNAME}, meet the new {PRODUCT}",
        "Hello {BRAND} fans – the {YEAR} collection has landed",
        "Dr. Martens and {BRAND}: new drops, {PRICE} and up",
        "Free delivery to {POSTCODE} on orders over {PRICE}",
        "Hi {FIRST} – {QTY} picks we think you'll love",
        "New in: {PRODUCT} – {PRICE}",
        "Text STOP to opt out. Questions? Call {PHONE}.",
    ),
    "footer": (
        "This email was sent to {EMAIL}. Unsubscribe · {SHOP}, {SHOP_ADDRESS}",
        "Questions? Call {SHOP_PHONE} ({HOURS}) or write to {SHOP_EMAIL}.",
        "{SHOP} · {SHOP_ADDRESS} · {SHOP_EMAIL} · You signed up in {YEAR}.",
        "Sent to {EMAIL} by {SHOP}, {SHOP_ADDRESS}. Manage preferences or unsubscribe.",
        "Prices incl. VAT. Offer valid until {DATE}. © {YEAR} {SHOP}",
        "Your contact for this order: {FULLNAME}, phone {PHONE}.",
    ),
    "service": (
        "Hi {FIRST}, thanks for reaching out. We've updated the email on your account to {EMAIL}.",
        "Dear {TITLE} {LAST}, we received your request. Card {CARD} on file was charged {PRICE}.",
        "We refunded {PRICE} to the account {IBAN} today. Kind regards, {FULLNAME}",
        "Your IBAN {IBAN} is saved for future refunds (order {ORDER}).",
        "Please call us back on {PHONE} about order {ORDER}. Best regards, {FULLNAME}",
        "Ship to: {FULLNAME}, {ADDRESS}. Tracking number {TRACKING}.",
        "Name: {FULLNAME} · Phone: {PHONE} · Email: {EMAIL}",
        "We blocked a login attempt from {IP} on {DATE}. If this was you, reply to this email.",
        "For the export declaration we hold your SSN {SSN}; it is never shared.",
        "We could not verify the National Insurance number {NINO} you entered.",
        "Ihre Steuer-ID {STEUERID} wurde für die Rechnung hinterlegt.",
        "Tu DNI {DNI} no coincide con el titular de la tarjeta.",
        "Your tax identifier {NATID} is on file for order {ORDER}.",
        "The card {MASKED_CARD} was declined. Please use a different card, {FIRST}.",
        "Your payment of {PRICE} from the card {CARD} was declined; your bank may call you.",
        "The IBAN {BAD_IBAN} looks mistyped, please check it and reply.",
        "Your parcel to {ADDRESS} left our warehouse on {DATE}.",
        "Hi {FIRST}, you can reach {TITLE} {LAST} from our styling team at {PHONE}.",
        "Your return label for order {ORDER} is attached. Questions? {SHOP_PHONE}.",
        "We'll send the replacement to {ADDRESS} and notify {EMAIL} when it ships.",
        "Account {IBAN} was debited {PRICE} on {DATE}. Thanks, {FULLNAME}",
        "Your router {IP} reported the {PRODUCT} offline since {DATE} ({VERSION}).",
        "Payment of {PRICE} received from card {MASKED_CARD} for order {ORDER}.",
        "We could not charge the card {CARD}; it may have expired. Update it by {DATE}.",
        "Your new card {CARD} was added to your wallet – {PERCENT} off your next order!",
        "Order {ORDER} was paid with {CARD} on {DATE}.",
        "Your stylist will call you on {PHONE} on {DATE} between {HOURS}.",
        "Your device {IP} is now linked to your account.",
    ),
}

_PLACEHOLDER = re.compile(r"\{([A-Z_]+)\}")


def render(template: str, values: Values) -> tuple[str, tuple[GoldSpan, ...]]:
    """Fill `template`; return the text and the gold spans of its labeled values."""
    out: list[str] = []
    spans: list[GoldSpan] = []
    length, last = 0, 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[last : m.start()]
        out.append(literal)
        length += len(literal)
        key = m.group(1)
        if key in LABELED:
            pii_type, make = LABELED[key]
            value = make(values)
            spans.append(GoldSpan(pii_type, length, length + len(value)))
        else:
            value = UNLABELED[key](values)
        out.append(value)
        length += len(value)
        last = m.end()
    out.append(template[last:])
    return "".join(out), tuple(spans)


def build_eval_set(seed: int = 5, size: int = 1000) -> list[LabeledText]:
    """`size` labeled texts drawn evenly from every template, deterministic in `seed`."""
    rng = random.Random(seed)
    values = Values(rng)
    pool = [(kind, t) for kind, templates in TEMPLATES.items() for t in templates]
    texts: list[LabeledText] = []
    while len(texts) < size:
        rng.shuffle(pool)  # every template once per round, in a seeded order
        for kind, template in pool[: size - len(texts)]:
            text, spans = render(template, values)
            texts.append(LabeledText(text, spans, ALLOW, kind))
    return texts
