"""From picks to jobs: one storyboard per customer, with its headline variant and pseudonym."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from creative.render import Render
from creative.storyboard import Storyboard, build_storyboard
from creative.template import Template
from retail.image_files import ImageFiles
from retail.types import Customer, Pick, Product

T = TypeVar("T")


@dataclass(frozen=True)
class Recipient:
    """Who is mailed which products, under which pseudonym and variant: what is kept of a
    Job once its video is made and checked, for the approval, the emails and the audit."""

    customer: Customer
    pick: Pick
    pseudonym: str
    variant: str = ""


@dataclass(frozen=True)
class Job(Recipient):
    """One customer's way through render and checks: a Recipient with the storyboard of
    their video. A storyboard holds tens of kB, so jobs live one chunk of customers at a
    time (`chunks`); `recipient()` is what stays."""

    storyboard: Storyboard = field(kw_only=True)

    def recipient(self) -> Recipient:
        """The job without its storyboard."""
        return Recipient(self.customer, self.pick, self.pseudonym, self.variant)


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` (customers, creatives) cut into runs of `size`, in order: the campaign works
    one chunk at a time, so what it holds grows with the chunk, not with the list."""
    size = max(size, 1)
    return [items[i : i + size] for i in range(0, len(items), size)]


def assign_variant(customer_id: str, campaign: str, template: Template) -> int:
    """The customer's headline variant in `campaign`: a hash of the campaign and the
    customer id alone (salted per campaign, as the holdout is), so the same campaign splits
    its customers the same way in every workspace, whatever its secret; spread evenly over
    the template's headlines."""
    count = max(len(template.spec.headlines), 1)
    digest = hashlib.sha256(f"{campaign}/headline\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def may_show_first_names(personalize: bool, renderer: str, vendor_first_names: bool) -> bool:
    """Whether first names may appear in videos at all: the settings allow personalization,
    and when an outside vendor renders, its allowlist lets first names reach it."""
    return personalize and (renderer != "vendor" or vendor_first_names)


def plan_jobs(
    customers: Sequence[Customer],
    picks: Mapping[str, Pick],
    products: Mapping[str, Product],
    template: Template,
    *,
    pseudonym: Callable[[str], str],
    images_root: Path | ImageFiles,
    first_names: bool,
    campaign: str,
) -> list[Job]:
    """A job per customer who has a pick, in the customers' order.

    A first name reaches a video only when `first_names` allows it and the customer has not
    opted out of personalization. A product on sale in `products` (the feed's
    `sale_price`) shows its sale price, and in a price-drop template its regular price
    struck through (`build_storyboard`); the storyboard keeps that "was" price
    (`struck_prices`) for the claims check (`campaigns.checks.check_creatives`).
    """
    jobs = []
    for customer in customers:
        pick = picks.get(customer.id)
        if pick is None:
            continue
        alias = pseudonym(customer.id)
        variant = assign_variant(customer.id, campaign, template)
        storyboard = build_storyboard(
            template,
            pick,
            products,
            customer,
            images_root=images_root,
            personalize=first_names and customer.personalization,
            headline_variant=variant,
        )
        jobs.append(Job(customer, pick, alias, f"headline-{variant}", storyboard=storyboard))
    return jobs


@dataclass(frozen=True)
class RenderBatch:
    """Distinct storyboards one render task makes, in order. Each comes with the first job
    that needs it: its customer's pseudonym is the only name an outside renderer sees."""

    jobs: tuple[Job, ...]

    @property
    def name(self) -> str:
        """The task's name: the first pseudonym, and how many more videos it makes."""
        more = len(self.jobs) - 1
        return self.jobs[0].pseudonym + (f"+{more}" if more else "")


def render_batches(jobs: Sequence[Job], *, workers: int, most: int = 25) -> list[RenderBatch]:
    """The jobs' distinct storyboards (customers with the same storyboard share one video)
    cut into batches for render tasks: about sixteen batches per worker, so the last
    batches are short and the workers stay busy to the end (with four, one worker idled
    for the whole last batch: 6 % of a 300-customer render stage), and at most `most`
    videos per batch, so task runs grow with batches and not with customers (100,000
    customers are a few thousand task runs, not 100,000).
    """
    distinct: dict[str, Job] = {}
    for job in jobs:
        distinct.setdefault(job.storyboard.key(), job)
    todo = list(distinct.values())
    if not todo:
        return []
    size = min(max(math.ceil(len(todo) / (max(workers, 1) * 16)), 1), most)
    return [RenderBatch(tuple(todo[i : i + size])) for i in range(0, len(todo), size)]


def share_renders(
    jobs: Sequence[Job], made: Mapping[str, Render | BaseException]
) -> list[Render | BaseException]:
    """Each job's video (or why it could not be made), in the jobs' order, from `made`
    (storyboard key → outcome). Customers with the same storyboard share one video, which
    counts as reused for all but the first of them."""
    out: list[Render | BaseException] = []
    seen: set[str] = set()
    for job in jobs:
        key = job.storyboard.key()
        outcome = made[key]
        if isinstance(outcome, Render) and key in seen:
            outcome = outcome.model_copy(update={"reused": True})
        out.append(outcome)
        seen.add(key)
    return out
