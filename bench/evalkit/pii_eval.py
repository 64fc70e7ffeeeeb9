"""A labeled evaluation set for the PII scanner, generated from a seed at run time.

Texts are templates of real marketing and customer-service copy (subject lines,
preheaders, headlines, product blurbs, reviews and social proof, transactional
mails, SMS, footers, service replies, a few in German, French and Spanish), written
from how shops write, not from the scanner's cue words. Personal values come from
independent generators (`bench.evalkit.pii_eval_values`): people's names from Mimesis
and Faker, street addresses and email addresses from Faker's locale providers,
identifiers from their published rules. Look-alikes carry no label: order numbers,
SKUs, EANs, tracking numbers, prices, dates, versions, invalid-checksum cards and IBANs,
masked cards, postcodes, cities, countries and holidays alone, company names made of
surnames, product names (model names that are cities or given names: "the Lisbon
Hiking Boot"), first-name-only greetings and person-like brand names on the allow list.
`bench.evalkit.pii_eval_sources` says where every word comes from; no word list here is
one of the scanner's (tests/compliance/test_pii_eval.py checks it).

Gold span conventions: a PERSON span is the full name without title or greeting
("Dear Ms [Lee]", "Hi [Ann Lee]"); a first name alone is not labeled. An ADDRESS span
is the whole inserted address, postcode and city included. A word is labeled by the
slot it fills: "Florence" as a store's city or "Victoria" as a model name is not a
person, the same word in a full name is.

    from bench.evalkit.pii_eval import build_eval_set
    texts = build_eval_set(seed=5, size=1000)
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from bench.evalkit.pii_eval_sources import (
    colour_names,
    holiday_names,
    model_places,
    product_nouns,
    territory_names,
)
from bench.evalkit.pii_eval_values import Values

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


# Catalog brands named like people: on the allow list, never flagged.
PERSON_BRANDS = (
    "Dr. Martens",
    "Mr Porter",
    "Mrs. Meyer's",
    "Ted Baker",
    "Calvin Klein",
    "Tommy Hilfiger",
    "Ralph Lauren",
    "Kate Spade",
    "Marc Jacobs",
    "Tory Burch",
    "Hugo Boss",
    "Paul Smith",
    "Karl Lagerfeld",
    "Dr. Hauschka",
    "Vera Wang",
    "Michael Kors",
    "Stella McCartney",
    "Charlotte Tilbury",
    "Jo Malone",
    "Bobbi Brown",
    "Victoria Beckham",
    "Anya Hindmarch",
    "Laura Mercier",
    "Isabel Marant",
    "Jimmy Choo",
    "Tom Ford",
    "Oscar de la Renta",
)
# Brands that do not look like people (also on the allow list, as a shop would have them).
OTHER_BRANDS = (
    "Patagonia",
    "Nordlicht",
    "Fjällräven",
    "Arc'teryx",
    "Le Creuset",
    "North Face",
    "Birkenstock",
    "Salomon",
    "Bose",
    "Rituals",
    "Muji",
    "Le Labo",
    "Canada Goose",
    "Saint Laurent",
)
BRANDS = (*PERSON_BRANDS, *OTHER_BRANDS)
SHOP = {
    "name": "Nordlicht Outfitters GmbH",
    "address": "Torstraße 109, 10119 Berlin",
    "email": "service@nordlicht-outfitters.de",
    "phone": "+49 30 2025 1190",
}
ALLOW: tuple[str, ...] = (*BRANDS, SHOP["name"], SHOP["address"], SHOP["email"], SHOP["phone"])

# Product names as catalogs write them: a model name (a city or a given name), a noun,
# a colour or a model number. Every word comes from `pii_eval_sources`: none from a list
# the scanner holds.
MODEL_NUMBERS = ("2", "Pro", "X3", "700")


def model_name(v: Values) -> str:
    """A product's model name: a city ("Lisbon") or a given name ("Milena")."""
    return v.rng.choice(model_places()) if v.rng.random() < 0.5 else v.first()


def product(v: Values) -> str:
    """A product name: model + noun, noun + colour, noun + model number."""
    rng = v.rng
    noun = rng.choice(product_nouns())
    shape = rng.randrange(4)
    if shape == 0:
        return f"{model_name(v)} {noun}"
    if shape == 1:
        return f"{noun} in {rng.choice(colour_names())}"
    if shape == 2:
        return f"{model_name(v)} {noun} {rng.choice(MODEL_NUMBERS)}"
    return f"{model_name(v)} {noun} in {rng.choice(colour_names())}"


def city(v: Values) -> str:
    """A city alone: one of Faker's, or one of the time zone database's."""
    return v.city() if v.rng.random() < 0.5 else v.rng.choice(model_places())


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
    "PBRAND": lambda v: v.rng.choice(PERSON_BRANDS),
    "PRODUCT": product,
    "COMPANY": Values.company,
    "CITY": city,
    "HOLIDAY": lambda v: v.rng.choice(holiday_names()),
    "TERRITORY": lambda v: v.rng.choice(territory_names()),
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
        "{FIRST}, your {PRODUCT} ships today",
        "{FULLNAME}, your order {ORDER} is confirmed",
        "Dear {TITLE} {LAST}, your refund to {IBAN} is on its way",
        "{FIRST}, {PERCENT} off {BRAND} ends {DATE}",
        "Your order {ORDER} has shipped – track it: {TRACKING}",
        "Last Chance: The {PRODUCT} Is Back For {PRICE}",
        "Happy birthday, {FULLNAME}! A gift from us inside",
        "{FULLNAME} sent you a gift card",
        "New sign-in to your account from {IP}",
        "{HOLIDAY} Starts Now: Up To {PERCENT} Off {PBRAND}",
        "Still thinking about the {PRODUCT}, {FIRST}?",
        "Congratulations {FULLNAME}, you've reached Gold status",
        "Your appointment with {FULLNAME} is confirmed for {DATE}",
    ),
    "preheader": (
        "Free returns until {DATE} · Members save an extra {PERCENT}",
        "Picked for {FIRST}: {PRODUCT}, {PRODUCT} and more",
        "{FULLNAME} added 3 items to your shared wishlist",
        "New from {PBRAND} and {BRAND} – only at {SHOP}",
        "Order {ORDER} for {FULLNAME} is ready for pickup at our {CITY} store",
        "Now shipping to {TERRITORY} · Free returns until {DATE}",
    ),
    "headline": (
        "Meet The {PRODUCT}",
        "Dear {TITLE} {FULLNAME}, meet the new {PRODUCT}",
        "The {PBRAND} Edit: {QTY} New Arrivals",
        "{PBRAND} x {BRAND}: new drops, {PRICE} and up",
        "Free delivery to {POSTCODE} on orders over {PRICE}",
        "Hi {FIRST} – {QTY} picks we think you'll love",
        "New In: {PRODUCT} – {PRICE}",
        "Styled by {FULLNAME}: five looks for the long weekend",
        "Text STOP to opt out. Questions? Call {PHONE}.",
        "Welcome to the club, {FULLNAME}!",
        "Our {CITY} Store Is Now Open",
        "{HOLIDAY} Hours: {CITY} Store Open {HOURS}",
    ),
    "blurb": (
        "The {PRODUCT} by {BRAND} ({SKU}) – now {PRICE}, {PERCENT} off until {DATE}.",
        "{FULLNAME} in {CITY} just bought the {PRODUCT}. Only {QTY} left!",
        "Built to last since {YEAR}: the {PRODUCT}, item {SKU}, EAN {EAN}.",
        "“Warm, light and packs small.” — {FULLNAME}, verified buyer",
        "★★★★★ “Fits true to size and the colour is perfect.” {FULLNAME}",
        "Designed in {CITY} by {FULLNAME}, our head of product.",
        "Our {PRODUCT} comes with firmware {VERSION} and a {YEAR} warranty card.",
        "Gift card {BAD_CARD} is not valid for {BRAND} items.",
        "Made by {COMPANY} in small batches – {PRICE}.",
        "Meet {FULLNAME}, who has run the {CITY} workshop for {QTY} years.",
        "“I wear it every day.” {FULLNAME}, {CITY}",
        "As seen on {PBRAND}'s runway: the {PRODUCT}.",
        "Made in {TERRITORY} from recycled yarn: the {PRODUCT}, {PRICE}.",
        "Reviewed by {FULLNAME}: five stars for the {PRODUCT} from {BRAND}.",
    ),
    "sms": (
        "{SHOP}: your parcel {TRACKING} arrives {DATE}. Reply STOP to opt out.",
        "Hi {FIRST}! {PERCENT} off everything today. Shop now, T&Cs apply.",
        "{FULLNAME}, your code for {PRICE} off is SPRING{YEAR}.",
        "Your courier {FIRST} will deliver to {ADDRESS} between {HOURS}.",
        "Your verification code is 482913. Never share it, not even with us.",
    ),
    "transactional": (
        "Order {ORDER} · Delivery address: {FULLNAME}, {ADDRESS}",
        "Billing address: {ADDRESS}. Payment: card {MASKED_CARD}.",
        "Your parcel to {ADDRESS} left our warehouse on {DATE}.",
        "We'll send the replacement to {ADDRESS} and notify {EMAIL} when it ships.",
        "Signed for by {FULLNAME} at {HOURS} on {DATE}.",
        "Order {ORDER} was paid with {CARD} on {DATE}.",
        "Invoice {ORDER} · {COMPANY} · VAT included · {PRICE}",
        "Gift message from {FULLNAME}: Happy birthday, enjoy it!",
        "Your return of the {PRODUCT} ({SKU}) was received at {SHOP_ADDRESS}.",
        "Collection point: {ADDRESS}. Bring your ID and the code 7741.",
    ),
    "footer": (
        "This email was sent to {EMAIL}. Unsubscribe · {SHOP}, {SHOP_ADDRESS}",
        "Questions? Call {SHOP_PHONE} ({HOURS}) or write to {SHOP_EMAIL}.",
        "{SHOP} · {SHOP_ADDRESS} · {SHOP_EMAIL} · You signed up in {YEAR}.",
        "Sent to {EMAIL} by {SHOP}, {SHOP_ADDRESS}. Manage preferences or unsubscribe.",
        "Prices incl. VAT. Offer valid until {DATE}. © {YEAR} {SHOP}",
        "Your personal stylist: {FULLNAME} · {PHONE} · {EMAIL}",
        "{SHOP} is a registered trademark. Managing director: {FULLNAME}.",
    ),
    "service": (
        "Hi {FIRST}, thanks for reaching out. We've updated the email on your account to {EMAIL}.",
        "Dear {TITLE} {LAST}, we received your request. Card {CARD} on file was charged {PRICE}.",
        "We refunded {PRICE} to the account {IBAN} today. Kind regards, {FULLNAME}",
        "Your IBAN {IBAN} is saved for future refunds (order {ORDER}).",
        "Please call us back on {PHONE} about order {ORDER}. Best, {FULLNAME}",
        "My name is {FULLNAME} and I'll be looking after your return.",
        "I've asked {FULLNAME} from our warehouse team to check the parcel.",
        "{FULLNAME} (Customer Care) replied to your ticket about order {ORDER}.",
        "Account holder: {FULLNAME} · IBAN: {IBAN}",
        "We blocked a login attempt from {IP} on {DATE}. If this was you, reply to this email.",
        "For the export declaration we hold your SSN {SSN}; it is never shared.",
        "We could not verify the National Insurance number {NINO} you entered.",
        "Ihre Steuer-ID {STEUERID} wurde für die Rechnung hinterlegt.",
        "Tu DNI {DNI} no coincide con el titular de la tarjeta.",
        "Your tax identifier {NATID} is on file for order {ORDER}.",
        "The card {MASKED_CARD} was declined. Please use a different card, {FIRST}.",
        "Your payment of {PRICE} from the card {CARD} was declined; your bank may call you.",
        "The IBAN {BAD_IBAN} looks mistyped, please check it and reply.",
        "Hi {FIRST}, you can reach {TITLE} {LAST} from our styling team at {PHONE}.",
        "Your return label for order {ORDER} is attached. Questions? {SHOP_PHONE}.",
        "We're closed on {HOLIDAY}; orders placed then ship the next working day.",
        "Account {IBAN} was debited {PRICE} on {DATE}. Thanks, {FULLNAME}",
        "Your router {IP} reported the {PRODUCT} offline since {DATE} ({VERSION}).",
        "Payment of {PRICE} received from card {MASKED_CARD} for order {ORDER}.",
        "We could not charge the card {CARD}; it may have expired. Update it by {DATE}.",
        "Your new card {CARD} was added to your wallet – {PERCENT} off your next order!",
        "Your stylist will call you on {PHONE} on {DATE} between {HOURS}.",
        "Your device {IP} is now linked to your account.",
        "Your order was placed by {FULLNAME} using {EMAIL}.",
        "We've passed your complaint to {FULLNAME}, our store manager in {CITY}.",
        "Sorry for the wait, {FIRST}. {FULLNAME} will call you tomorrow.",
        "Sehr geehrte/r {FULLNAME}, Ihre Bestellung {ORDER} wurde versandt.",
        "Lieferadresse: {ADDRESS}. Mit freundlichen Grüßen, {FULLNAME}",
        "Bonjour {FULLNAME}, votre colis {TRACKING} sera livré le {DATE}.",
        "Hola {FIRST}, tu pedido {ORDER} llegará a {ADDRESS} mañana.",
        "Cordialement, {FULLNAME}, service client {SHOP}",
        "Thanks for your patience! — {FULLNAME}, {SHOP} support",
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
