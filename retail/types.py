"""The retailer's nouns as validated, immutable values.

Every loader, recommender, renderer and transport speaks in these types; nothing
downstream has to re-check a field that was validated here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# The words pydantic reads as booleans (as for `in_stock`), so every yes/no column of the
# retail files takes the same ones.
_YES = frozenset({"true", "yes", "1", "on", "t", "y"})
_NO = frozenset({"false", "no", "0", "off", "f", "n"})


def _shown(code: str) -> str:
    """A code (locale, time zone) as an error message quotes it: a long one is not repeated."""
    return repr(code) if len(code) <= 40 else f"of {len(code)} characters"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Product(_Value):
    """One sellable item of the catalog."""

    id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=300)
    brand: str = Field(min_length=1, max_length=120)
    category: str = Field(min_length=1, max_length=120)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    sale_price: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=12,
        decimal_places=2,
        description="the price now, below `price` (which is then the price it was); empty: no sale",
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")
    image: str = Field(
        min_length=1, description="path (relative to the catalog file) or http(s) URL"
    )
    url: str = Field(pattern=r"^https?://\S+$", description="the product page on the shop")
    in_stock: bool = True
    description: str = ""

    @field_validator("price", "sale_price")
    @classmethod
    def _no_negative_zero(cls, value: Decimal | None) -> Decimal | None:
        # "-0" passes ge=0, and Babel writes it "-€0.00" in the video and the email.
        return abs(value) if value is not None and value.is_zero() else value

    @field_validator("sale_price", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sale_price")
    @classmethod
    def _below_price(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        # A "sale" at or above the price would be a false discount claim in the video.
        price = info.data.get("price")  # absent when the price itself is invalid
        if value is not None and price is not None and value >= price:
            raise ValueError("must be below price")
        return value

    @property
    def price_now(self) -> Decimal:
        """What the customer pays today: the `sale_price` when there is one, else `price`.
        The video, the email and the claims check all show and hold this price."""
        return self.price if self.sale_price is None else self.sale_price


class Consent(StrEnum):
    """Marketing consent as recorded by the retailer."""

    granted = "granted"
    denied = "denied"
    unknown = "unknown"


# The words a consent cell may hold, read conservatively: a word that is not listed is a
# bad row, never a guess. Spaces and hyphens count as underscores ("opt-in" is "opt_in").
CONSENT_WORDS: dict[Consent, frozenset[str]] = {
    Consent.granted: frozenset(
        {"granted", "true", "yes", "y", "1", "subscribed", "opted_in", "opt_in"}
    ),
    Consent.denied: frozenset(
        {"denied", "false", "no", "n", "0", "unsubscribed", "opted_out", "opt_out"}
        | {"not_subscribed"}
    ),
    Consent.unknown: frozenset({"unknown", "", "pending", "null"}),
}


def consent_from_word(word: str) -> Consent | None:
    """The consent a cell's word means (see CONSENT_WORDS), or None if it is not one."""
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    return next((c for c, words in CONSENT_WORDS.items() if key in words), None)


class Customer(_Value):
    """A shopper. Fields other than `id` are personal data: never log them."""

    id: str = Field(min_length=1, max_length=128)
    email: EmailStr
    first_name: str = Field(
        default="",
        max_length=100,
        description="empty: unknown (shop exports often lack it); such a customer is never "
        "personalized",
    )
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    locale: str = "en_US"
    timezone: str = "UTC"
    country: str = Field(default="US", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    marketing_consent: Consent = Consent.unknown
    consent_timestamp: datetime | None = None
    consent_source: str | None = None
    personalization: bool = Field(
        default=True,
        description="May the customer's first name appear in their videos? (The settings "
        "must allow it too.) In a file: true/false, yes/no, 1/0 or on/off; empty means true.",
    )

    @model_validator(mode="after")
    def _no_name_no_personalization(self) -> Customer:
        # Without a first name there is nothing to personalize with: the texts that would
        # use it show their fallbacks, the greeting is the neutral one.
        if not self.first_name and self.personalization:
            object.__setattr__(self, "personalization", False)
        return self

    @field_validator("marketing_consent", mode="before")
    @classmethod
    def _consent_word(cls, value: object) -> object:
        if isinstance(value, str):
            consent = consent_from_word(value)
            if consent is None:
                # The cell's value is not echoed: cells may hold personal data.
                raise ValueError(
                    "must be granted, denied or unknown (also true/false, yes/no, 1/0, "
                    "subscribed/unsubscribed, opted_in/opted_out; empty, pending or null "
                    "mean unknown)"
                )
            return consent
        return value

    @field_validator("personalization", mode="before")
    @classmethod
    def _yes_or_no(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _YES:
                return True
            if word in _NO:
                return False
            # The cell's value is not echoed: cells may hold personal data.
            raise ValueError("must be true or false (also yes/no, 1/0, on/off)")
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            hint = "use a code such as en_US or de_DE"
            raise ValueError(f"unknown locale {_shown(value)} ({hint})") from None
        return value.replace("-", "_")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # OSError: a name longer than the file system allows (ZoneInfo looks for a file)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {_shown(value)} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @field_validator("last_name", "phone", "consent_source", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("consent_timestamp", mode="before")
    @classmethod
    def _empty_timestamp_is_none(cls, value: object) -> object:
        return None if value == "" else value


class EventType(StrEnum):
    """What a customer did. The feedback loop adds exposure, open, click and unsubscribe."""

    view = "view"
    cart = "cart"
    purchase = "purchase"
    exposure = "exposure"
    open = "open"
    click = "click"
    unsubscribe = "unsubscribe"


class Event(_Value):
    """One behaviour event. `product_id` is empty for events about no product (unsubscribe)."""

    customer_id: str = Field(min_length=1)
    product_id: str | None = None
    type: EventType
    timestamp: datetime

    @field_validator("product_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-05-01T10:00:00+00:00")
        return value


class Pick(_Value):
    """The products chosen for one customer, best first, with why and by which model."""

    customer_id: str
    product_ids: tuple[str, ...] = Field(min_length=1)
    scores: tuple[float, ...]
    reasons: tuple[str, ...]
    model_version: str
