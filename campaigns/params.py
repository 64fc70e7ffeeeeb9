"""What one campaign run is asked to do: the parameters a marketer fills in.

One flat model with defaults, descriptions and bounds: the Prefect UI draws its form from
it, `reelcast campaign run` generates its options from it, and both share its checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from compliance.audience import Selection
from recs.rules import BOOST, Rules, catalog_spelling, fold_name
from retail.loaders import CatalogSource
from retail.types import Product


class CampaignParams(BaseModel):
    """What one campaign run needs. Flat, with defaults, so the Prefect UI shows a clean form."""

    campaign: str = Field(
        "demo",
        description="Campaign id; keys the outbox (one email per customer per campaign). "
        "Empty: campaign-<date of the run>, for scheduled runs.",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
    )
    catalog: str = Field(
        description="Path to the catalog: our CSV, a Merchant Center feed, a Shopify export"
    )
    customers: str = Field(description="Path to the customers: our CSV or a Shopify export")
    events: str = Field(description="Path to the events: CSV, gzipped CSV (.gz) or Parquet")
    catalog_format: Literal[
        "auto", "reelcast", "merchant_text", "merchant_xml", "shopify", "mapped"
    ] = Field(
        "auto",
        description="The catalog's format: auto (detected), reelcast (our CSV), "
        "merchant_text / merchant_xml (a Google Merchant Center feed), shopify (a Shopify "
        "products export), mapped (any CSV, with --mapping)",
    )
    mapping: str = Field(
        "", description="A mapping file (YAML) for a catalog CSV in no known format"
    )
    shop_url: str = Field(
        "", description="The shop's address, for a Shopify export (https://shop.example)"
    )
    currency: str = Field("", description="The prices' currency, for a Shopify export (EUR)")
    customers_format: Literal["auto", "reelcast", "shopify"] = Field(
        "auto",
        description="The customers file's format: auto (detected), reelcast (our CSV) or "
        "shopify (a Shopify customers export)",
    )
    template: str = Field("greeting", description="Video template folder name in templates/")
    limit: int | None = Field(
        None,
        ge=1,
        description="Take only N eligible customers, drawn at random (the same N on a "
        "re-run); the holdout is drawn from the same customers",
    )
    limit_order: Literal["random", "file"] = Field(
        "random",
        description="How --limit draws: random (a fair sample, so the lift holds) or file "
        "(the first N of the customers file)",
    )
    encoding: Literal["utf-8", "cp1252", "latin-1"] = Field(
        "utf-8",
        description="Text encoding of the three files: utf-8 (also with a BOM), or cp1252 / "
        "latin-1 for spreadsheet 'CSV' exports (valid UTF-8 text stays UTF-8)",
    )
    on_bad_rows: Literal["fail", "skip"] = Field(
        "fail", description="Stop on bad rows, or skip and count them"
    )
    dry_run: bool = Field(False, description="Render and check, but queue and send nothing")
    workspace: str | None = Field(None, description="Workspace folder (default from settings)")
    products_per_pick: int = Field(3, ge=1, le=10, description="Products chosen per customer")
    explore_rate: float = Field(
        0.05, ge=0, le=0.5, description="Chance that the last slot explores (logged propensity)"
    )
    boost_categories: str = Field("", description="Categories to favour, comma-separated")
    block_categories: str = Field("", description="Categories never to show, comma-separated")
    boost_brands: str = Field("", description="Brands to favour, comma-separated")
    block_brands: str = Field("", description="Brands never to show, comma-separated")
    diversity: Literal["cap", "mmr"] = Field(
        "cap",
        description="How picks stay varied: cap (at most max_per_category products of one "
        "category) or mmr (maximal marginal relevance, weighted by mmr_lambda)",
    )
    max_per_category: int = Field(
        2, ge=1, le=10, description="With diversity=cap: products of one category per customer"
    )
    mmr_lambda: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="With diversity=mmr: 1 ranks by relevance only, 0 by new categories only",
    )
    repurchase_days: int = Field(
        0, ge=0, description="Days after which consumables may be recommended again (0: never)"
    )
    repurchase_categories: str = Field(
        "", description="Categories that may be bought again (consumables), comma-separated"
    )
    subject: str = Field("Picked for you this week", description="Email subject line")
    auto_approve: bool = Field(
        False, description="Send without waiting for a person to approve (scheduled runs)"
    )
    approval_timeout_s: int = Field(
        86_400, ge=60, description="How long a paused run waits for approval (seconds)"
    )
    subject_b: str = Field(
        "", description="Second subject line for an A/B test (empty: one subject for all)"
    )
    send_now: bool = Field(
        False, description="Send at once; otherwise at each customer's best local hour"
    )
    send_hour: int = Field(
        10, ge=8, le=20, description="Local hour for customers without activity history"
    )
    holdout_share: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="Share of eligible customers held out (get nothing) to measure lift, e.g. 0.1",
    )

    @model_validator(mode="after")
    def _boosts_and_blocks_do_not_overlap(self) -> CampaignParams:
        for kind, boost, block in (
            ("category", self.boost_categories, self.block_categories),
            ("brand", self.boost_brands, self.block_brands),
        ):
            blocked = {fold_name(n) for n in names(block)}
            both = sorted(n for n in names(boost) if fold_name(n) in blocked)
            if both:
                raise ValueError(
                    f"{kind} {', '.join(repr(x) for x in both)} is both boosted and blocked: "
                    f"remove it from boost_{'categories' if kind == 'category' else 'brands'} "
                    f"or from block_{'categories' if kind == 'category' else 'brands'}"
                )
        return self

    def dated(self, now: datetime) -> CampaignParams:
        """These parameters with a campaign id: an empty one (scheduled runs) becomes
        campaign-<date of `now`>."""
        if self.campaign:
            return self
        return self.model_copy(update={"campaign": f"campaign-{now:%Y-%m-%d}"})

    def catalog_source(self) -> CatalogSource:
        """How to read the catalog file (`catalog_format`, `mapping`, Shopify's extras)."""
        return CatalogSource(
            format=None if self.catalog_format == "auto" else self.catalog_format,
            mapping=Path(self.mapping) if self.mapping else None,
            shop_url=self.shop_url or None,
            currency=self.currency or None,
        )

    def selection(self) -> Selection:
        """Which customers of the audience this run takes (`limit`, `limit_order`)."""
        return Selection(self.limit, self.limit_order, experiment=self.campaign)

    def rules(self) -> Rules:
        """The business rules these parameters ask for (boosted names get `BOOST`)."""
        return Rules(
            epsilon=self.explore_rate,
            boost_categories={c: BOOST for c in names(self.boost_categories)},
            boost_brands={b: BOOST for b in names(self.boost_brands)},
            block_categories=names(self.block_categories),
            block_brands=names(self.block_brands),
            diversity=self.diversity,
            max_per_category=self.max_per_category,
            mmr_lambda=self.mmr_lambda,
            repurchase_days=self.repurchase_days or None,
            repurchase_categories=names(self.repurchase_categories),
        )

    def spelt_as_in(self, products: Iterable[Product]) -> tuple[CampaignParams, list[str]]:
        """These parameters with rule names spelt as in the catalog ("lumen" → "Lumen"),
        and one warning per name the catalog lacks, with the closest names it has.

        Unknown names are kept: a standing block list may name brands not sold right now.
        """
        products = list(products)
        known = {
            "category": {p.category for p in products},
            "brand": {p.brand for p in products},
        }
        updates: dict[str, str] = {}
        warnings: list[str] = []
        for name, kind in RULE_NAME_FIELDS:
            spelt, unknown = catalog_spelling(sorted(names(getattr(self, name))), known[kind])
            updates[name] = ",".join(spelt)
            for given, close in unknown.items():
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                warnings.append(
                    f"{name}: no {kind} named {given!r} in the catalog, so it changes nothing"
                    + hint
                )
        return self.model_copy(update=updates), warnings


#: the parameters that name categories or brands, and which of the two they name
RULE_NAME_FIELDS: tuple[tuple[str, str], ...] = (
    ("boost_categories", "category"),
    ("block_categories", "category"),
    ("repurchase_categories", "category"),
    ("boost_brands", "brand"),
    ("block_brands", "brand"),
)


def names(text: str) -> frozenset[str]:
    """The names of a comma-separated parameter, stripped, empty ones dropped."""
    return frozenset(x.strip() for x in text.split(",") if x.strip())
