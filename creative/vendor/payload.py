"""What may leave the house for the video vendor: an allowlist, enforced in code.

A payload carries exactly: the template id (name and size); one text per text layer (the
product's title, brand and formatted price as the template shows them, constant copy, the
headline); the images (product photos, brand logo) as URLs of files uploaded to the
vendor; the output format; our webhook URL; and metadata holding the storyboard key, the
campaign id, the template version and the *pseudonymous* customer id (keyed HMAC, made
by the caller). The customer's first name reaches the vendor only inside the texts and
only when `allow_first_name` is set (off by default: build the storyboard with
`personalize=False` and every text that would greet the customer shows the template's
fallback). Email, last name, phone, the raw customer id, or any address never do;
`Customer` holds no postal address at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from creative.storyboard import ImagePart, Storyboard, TextPart
from creative.vendor.errors import PayloadError
from retail.types import Customer

ALLOWED_FIELDS = frozenset(
    {"template_id", "modifications", "output_format", "webhook_url", "metadata"}
)
ALLOWED_METADATA = frozenset({"key", "campaign", "subject", "template_version"})
OUTPUT_FORMAT = "mp4"

# `<template>-<width>x<height>`: at a vendor every size of a design is its own template.
TEMPLATE_ID = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63})-([0-9]{2,4})x([0-9]{2,4})$")
_MODIFICATION = re.compile(r"^[a-z][a-z0-9_]{0,39}\.(?:text|source)$")
# compliance.pseudonym.pseudonymize's format: anything else may be a raw id.
_PSEUDONYM = re.compile(r"^cu_[0-9a-f]{16}$")
_CAMPAIGN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MIN_PHONE_DIGITS = 7
_MIN_ID_CHARS = 4


def build_payload(
    storyboard: Storyboard,
    *,
    image_urls: Mapping[str, str],
    key: str,
    campaign: str | None = None,
    subject: str | None = None,
    webhook_url: str | None = None,
    customer: Customer | None = None,
    allow_first_name: bool = False,
) -> dict[str, Any]:
    """The POST /v2/renders body for `storyboard`, checked against the allowlist.

    `image_urls` maps an image's sha256 to its uploaded URL at the vendor. `key` is the
    storyboard key the client files the render under. `subject` must be a pseudonymous
    id (`cu_` + 16 hex digits). With `customer` given, every value is also scanned for that
    customer's email, last name, phone, raw id and (unless allowed) first name. Raises
    PayloadError naming the field, never the value.
    """
    modifications: dict[str, str] = {}
    for part in storyboard.layers:
        if isinstance(part, TextPart):
            modifications[f"{part.id}.text"] = part.text
        elif isinstance(part, ImagePart):
            try:
                modifications[f"{part.id}.source"] = image_urls[part.sha256]
            except KeyError:
                raise PayloadError(f"layer {part.id!r}: its image was not uploaded") from None
    metadata = {"key": key, "template_version": storyboard.template_version}
    if campaign is not None:
        metadata["campaign"] = campaign
    if subject is not None:
        metadata["subject"] = subject
    payload: dict[str, Any] = {
        "template_id": template_id(storyboard),
        "modifications": modifications,
        "output_format": OUTPUT_FORMAT,
        "metadata": metadata,
    }
    if webhook_url is not None:
        payload["webhook_url"] = webhook_url
    check_payload(payload)
    if customer is not None:
        check_customer_values(payload, customer, allow_first_name=allow_first_name)
    return payload


def template_id(storyboard: Storyboard) -> str:
    """The vendor's name for the template variant of `storyboard`, e.g. `hero-720x1280`."""
    return f"{storyboard.template}-{storyboard.format.width}x{storyboard.format.height}"


def check_payload(payload: Mapping[str, Any]) -> None:
    """Raise PayloadError unless `payload` has only allowlisted fields of allowed shapes.

    Also refuses anything that looks like an email address anywhere in it.
    """
    extra = sorted(set(payload) - ALLOWED_FIELDS)
    if extra:
        raise PayloadError(f"payload field {extra[0]!r} is not on the vendor allowlist")
    if not isinstance(payload.get("template_id"), str) or not TEMPLATE_ID.fullmatch(
        payload["template_id"]
    ):
        raise PayloadError("payload field 'template_id' must look like <template>-<w>x<h>")
    modifications = payload.get("modifications")
    if not isinstance(modifications, Mapping):
        raise PayloadError("payload field 'modifications' must be an object")
    for name, value in modifications.items():
        if not isinstance(name, str) or not _MODIFICATION.fullmatch(name):
            raise PayloadError(
                f"modification {name!r} is not on the vendor allowlist"
                " (only <layer>.text and <layer>.source)"
            )
        if not isinstance(value, str):
            raise PayloadError(f"modification {name!r} must be a string")
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise PayloadError("payload field 'metadata' must be an object")
    extra = sorted(set(metadata) - ALLOWED_METADATA)
    if extra:
        raise PayloadError(f"metadata field {extra[0]!r} is not on the vendor allowlist")
    checks = {
        "key": _HEX64,
        "template_version": _HEX64,
        "subject": _PSEUDONYM,
        "campaign": _CAMPAIGN,
    }
    for name, value in metadata.items():
        if not isinstance(value, str) or not checks[name].fullmatch(value):
            what = "a pseudonymous id (cu_ + 16 hex)" if name == "subject" else "well-formed"
            raise PayloadError(f"metadata field {name!r} must be {what}")
    for where, value in _strings(payload):
        if _EMAIL.search(value):
            raise PayloadError(f"payload field {where} carries an email address")


def check_customer_values(
    payload: Mapping[str, Any], customer: Customer, *, allow_first_name: bool = False
) -> None:
    """Raise PayloadError if any value of `payload` carries this customer's personal data.

    Looks for the email (and its local part), last name, phone digits, raw customer id (of
    4+ characters) and, unless `allow_first_name`, the first name; names and ids on word
    boundaries. A product text that happens to hold the value is refused too: privacy
    wins over the vendor (FallbackRenderer then renders that video locally).
    """
    patterns: list[tuple[str, re.Pattern[str]]] = [
        ("email", re.compile(re.escape(str(customer.email)), re.IGNORECASE))
    ]
    if len(customer.id) >= _MIN_ID_CHARS:  # "7" would match every price with a 7
        patterns.append(("customer id", _word(customer.id, flags=0)))
    local_part = str(customer.email).split("@", 1)[0]
    if len(local_part) >= 4:
        patterns.append(("email", re.compile(re.escape(local_part), re.IGNORECASE)))
    if customer.last_name:
        patterns.append(("last name", _word(customer.last_name)))
    if not allow_first_name and customer.first_name:
        patterns.append(("first name", _word(customer.first_name)))
    phone = re.sub(r"\D", "", customer.phone or "")[-_MIN_PHONE_DIGITS - 1 :]
    for where, value in _strings(payload):
        for field, pattern in patterns:
            if pattern.search(value):
                raise PayloadError(
                    f"payload field {where} carries the customer's {field}, which may not"
                    " reach the vendor"
                    + (
                        " (build the storyboard with personalize=False, or allow first"
                        " names for the vendor in the settings)"
                        if field == "first name"
                        else ""
                    )
                )
        if len(phone) >= _MIN_PHONE_DIGITS and phone in re.sub(r"\D", "", value):
            raise PayloadError(f"payload field {where} carries the customer's phone number")


def _word(value: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])", flags)


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON-like value with where it sits, e.g. `metadata['campaign']`."""
    if isinstance(value, str):
        yield where or "(top level)", value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            here = f"{where}[{name!r}]" if where else repr(name)
            yield from _strings(name, f"{here} (its name)")
            yield from _strings(item, here)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")
