"""The PII scanner: every type found at exact offsets, look-alikes and allowed terms not."""

from __future__ import annotations

from itertools import pairwise

import pytest

from compliance.pii import AllowList, Finding, PiiType, scan_text


def _found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [(f.type.value, text[f.start : f.end]) for f in scan_text(text, **kwargs)]


@pytest.mark.parametrize(
    ("text", "pii_type", "value"),
    [
        ("Write to ann.lee+shop@example.co.uk today", "EMAIL", "ann.lee+shop@example.co.uk"),
        ("Call us at (415) 555-2671, 9-5", "PHONE", "(415) 555-2671"),
        ("Hotline +49 30 12345678 (Mo-Fr)", "PHONE", "+49 30 12345678"),
        ("Ruf an: 030/12345678", "PHONE", "030/12345678"),
        ("Tel. 01 42 68 53 00", "PHONE", "01 42 68 53 00"),
        ("mobile 07912 345678", "PHONE", "07912 345678"),
        ("Visa 4111 1111 1111 1111 on file", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("MC 5555-5555-5555-4444 on file", "CREDIT_CARD", "5555-5555-5555-4444"),
        ("2-series 2223003122003222 ok", "CREDIT_CARD", "2223003122003222"),
        ("Amex 3782 822463 10005 ok", "CREDIT_CARD", "3782 822463 10005"),
        ("IBAN DE89 3704 0044 0532 0130 00 gespeichert", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("GB82WEST12345698765432 is saved", "IBAN", "GB82WEST12345698765432"),
        ("login from 192.168.1.10 blocked", "IP", "192.168.1.10"),
        ("login from 2001:db8:85a3::8a2e:370:7334 blocked", "IP", "2001:db8:85a3::8a2e:370:7334"),
        ("SSN 123-45-6780 on file", "NATIONAL_ID", "123-45-6780"),
        ("NINO AB 12 34 56 C invalid?", "NATIONAL_ID", "AB 12 34 56 C"),
        ("Steuer-ID 86095742719 hinterlegt", "NATIONAL_ID", "86095742719"),
        ("DNI 12345678Z no coincide", "NATIONAL_ID", "12345678Z"),
        ("NIE X1234567L no coincide", "NATIONAL_ID", "X1234567L"),
        ("Dear Ms O'Brien, thanks", "PERSON", "O'Brien"),
        ("Hello Ann van der Berg, welcome", "PERSON", "Ann van der Berg"),
        ("Kind regards, Maria Lopez", "PERSON", "Maria Lopez"),
        ("Ship to: Ann Lee, please", "PERSON", "Ann Lee"),
        ("Send it to 221B Baker Street, London NW1 6XE today", "ADDRESS",
         "221B Baker Street, London NW1 6XE"),
        ("Lieferung an Hauptstraße 12a, 10115 Berlin morgen", "ADDRESS",
         "Hauptstraße 12a, 10115 Berlin"),
        ("Livré au 12 rue de la Paix, 75002 Paris", "ADDRESS", "12 rue de la Paix, 75002 Paris"),
        ("Enviado a Calle Mayor 12, 28013 Madrid", "ADDRESS", "Calle Mayor 12, 28013 Madrid"),
        ("to 1600 Pennsylvania Ave NW, Washington, DC 20500 now", "ADDRESS",
         "1600 Pennsylvania Ave NW, Washington, DC 20500"),
    ],
)  # fmt: skip
def test_each_type_is_found_at_exact_offsets(text: str, pii_type: str, value: str) -> None:
    assert _found(text) == [(pii_type, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Your order #100234567 has shipped",
        "Order ORD-2026-004512 is on its way",
        "Order 112-4567890-1234567 confirmed",
        "SKU 4012-BLK-M back in stock",
        "Style 5313-6775-01 and 392050.136 restocked",
        "Track it: 1Z999AA10123456784",
        "USPS 9400 1000 0000 0000 0000 00 delivered",
        "EAN 4006381333931 on the box",
        "Now $1,299.99 (was €1.499,00), 25% off",
        "Offer valid until 31.12.2026 or 2026-05-14 or 05/14/2026",
        "Firmware v2.4.1 and version 10.0.19.45",
        "Card 4111 1111 1111 1112 is not valid",
        "IBAN DE88 3704 0044 0532 0130 00 looks mistyped",
        "Card ending in 4242, **** **** **** 4242",
        "Free delivery to 10115 Berlin and ZIP 94103",
        "Hi Ann, 20% off the Merino Crew Sweater",
        "Dear Valued Customer, Summer Sale starts now",
        "Since 1998: 250 pieces, 4K Action Cam X3",
        "Open Mon-Fri 9:00-18:00, 24/7 chat",
        "Meet us at 10:30:45 sharp",
        "SSN 000-12-3456 and 123-00-4567 are never issued",
    ],
)
def test_look_alikes_are_not_flagged(text: str) -> None:
    assert scan_text(text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Sorry for the wait. Luciano Cuzzocrea will call you tomorrow.", "Luciano Cuzzocrea"),
        ("Olaf Momberg-van Laarhoven added 3 items to your wishlist", "Olaf Momberg-van Laarhoven"),
        ("Managing director: Rodrigo Brito Costa.", "Rodrigo Brito Costa"),
        ("“Love it.” Mikołaj Drywa", "Mikołaj Drywa"),
        ("Styled by Anna Schmidt: five looks", "Anna Schmidt"),
        ("Ignatz Wulff, your order is confirmed", "Ignatz Wulff"),
    ],
)
def test_full_names_without_a_salutation_are_found(text: str, name: str) -> None:
    assert _found(text) == [("PERSON", name)]


@pytest.mark.parametrize(
    "text",
    [
        "Still thinking about the Olivia Tote?",
        "New In: Stella Chelsea Boot in Rose Gold",
        "Our Madrid Store Is Now Open",
        "May Sale: Forest Green and Ruby Red are back",
        "Invoice from Nelson Ltd, VAT included",
        "Made by Martin & Sons in small batches",
        "Our stores close early on Martin Luther King Jr. Day",
        "Sale ends on Assumption of Mary Day",
        "Now shipping to Costa Rica and Puerto Rico",
    ],
)
def test_products_colours_companies_days_and_places_are_not_people(text: str) -> None:
    assert [t for t, _ in _found(text)] == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Ship to 66181 Lonnie Dam Apt. 750 now", "66181 Lonnie Dam Apt. 750"),
        ("to Studio 58, Bradley Spur, Lake Elizabeth L30 2EB.",
         "Studio 58, Bradley Spur, Lake Elizabeth L30 2EB"),
        ("at 47966 Chandler Ports Suite 251, Nashfort, GA 43281.",
         "47966 Chandler Ports Suite 251, Nashfort, GA 43281"),
        ("an Kati-Girschner-Weg 6/2, 42770 Augsburg", "Kati-Girschner-Weg 6/2, 42770 Augsburg"),
        ("à 705, boulevard Victoire Teixeira, 15819 Guyot",
         "705, boulevard Victoire Teixeira, 15819 Guyot"),
        ("a Pasaje de Lucio Diéguez 92 Piso 7, 13374 Salamanca",
         "Pasaje de Lucio Diéguez 92 Piso 7, 13374 Salamanca"),
        ("a Via Hugo, 76 Appartamento 2, 74017 Scagnello",
         "Via Hugo, 76 Appartamento 2, 74017 Scagnello"),
        ("naar Samweg 3, 4428 OZ Retranchement", "Samweg 3, 4428 OZ Retranchement"),
    ],
)  # fmt: skip
def test_addresses_of_several_countries_are_found_whole(text: str, value: str) -> None:
    assert _found(text) == [("ADDRESS", value)]


def test_less_common_street_suffixes_need_more_than_a_number() -> None:
    assert _found("Buy 2 Black Ridge Wallets, Spring 2026 is here") == []


def test_allowed_terms_are_never_flagged() -> None:
    text = "Dr. Martens by Mr Porter. Nordlicht GmbH, Torstraße 109, 10119 Berlin, +49 30 2025 1190"
    assert {t for t, _ in _found(text)} == {"PERSON", "ADDRESS", "PHONE"}
    allow = ["Dr. Martens", "mr porter", "Torstraße 109, 10119 Berlin", "+49 30 2025 1190"]
    assert scan_text(text, allow=allow) == []
    assert scan_text(text, allow=AllowList(allow)) == []


def test_person_like_brands_on_the_allow_list_are_not_flagged() -> None:
    text = "As seen on Stella McCartney's runway. The Mr Porter Edit. Calvin Klein x Tom Ford."
    assert _found(text, allow=["Stella McCartney", "Mr Porter", "Calvin Klein", "Tom Ford"]) == []


def test_allow_list_does_not_hide_personal_data_around_a_brand() -> None:
    text = "Ted Baker fan? Write to ann@tedbaker-fans.example"
    assert _found(text, allow=["Ted Baker"]) == [("EMAIL", "ann@tedbaker-fans.example")]


def test_findings_are_sorted_disjoint_and_carry_no_text() -> None:
    text = "Dear Mr Smith, card 4111111111111111, call 020 7946 0958 or mail a.smith@example.com"
    findings = scan_text(text)
    assert [f.type for f in findings] == [
        PiiType.PERSON, PiiType.CREDIT_CARD, PiiType.PHONE, PiiType.EMAIL
    ]  # fmt: skip
    assert all(a.end <= b.start for a, b in pairwise(findings))
    for f in findings:
        assert text[f.start : f.end] not in repr(f) + str(f)
    assert findings[1] == Finding(PiiType.CREDIT_CARD, 20, 36)
    assert findings[1].as_dict() == {"type": "CREDIT_CARD", "start": 20, "end": 36}


def test_offsets_are_python_string_indices_with_non_ascii_text() -> None:
    text = "Grüße aus Köln 🎉 — Karte 4111 1111 1111 1111"
    [finding] = scan_text(text)
    assert text[finding.start : finding.end] == "4111 1111 1111 1111"
