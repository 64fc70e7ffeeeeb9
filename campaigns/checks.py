"""Every creative checked before it may be sent: the video file, and the words it shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from campaigns.plan import Job, Recipient
from compliance.claims import ClaimsPolicy, PricePoint
from compliance.copy_checks import copy_problems
from compliance.pii import AllowList
from creative.errors import CreativeError
from creative.qc import Expect, qc_video
from creative.render import Render
from creative.template import Template
from retail.types import Product


def creative_allowlist(products: Iterable[Product], template: Template) -> AllowList:
    """Brand and store names are not personal data, even when they look like names."""
    return AllowList([p.brand for p in products] + [template.spec.brand.name])


def video_problems(job: Job, render: Render) -> list[str]:
    """Video QC in one pass over the file (duration, size, codec, faststart, black or frozen
    stretches outside intended stills, loudness) and the poster."""
    verdict = qc_video(render.video, Expect.from_storyboard(job.storyboard), render.content)
    problems = [f"video: {p}" for p in verdict.problems]
    if not render.poster.is_file():
        problems.append("poster: missing")
    return problems


@dataclass(frozen=True)
class Checked:
    """One customer's creative and what is wrong with it (empty: it may be sent). It keeps
    the Recipient, not the Job: the storyboard is not needed past the checks."""

    job: Recipient
    render: Render
    problems: list[str]

    @property
    def ok(self) -> bool:
        """Nothing wrong: it may be sent."""
        return not self.problems

    @property
    def verdict(self) -> str:
        """ "ok", or the problems in one line."""
        return "ok" if self.ok else "; ".join(self.problems)


def check_creatives(
    jobs: Sequence[Job],
    renders: Sequence[Render],
    products: Mapping[str, Product],
    *,
    allow: AllowList,
    policy: ClaimsPolicy,
    workers: int,
    price_history: Sequence[PricePoint] = (),
) -> list[Checked]:
    """Each job's video and copy checked, in the jobs' order.

    A video shared by several customers (same render key) is decoded once; decodes run on
    `workers` threads (each is an ffmpeg process). Copy checks look for the recipient's own
    values, other personal data and untrue claims about the products shown: prices as in
    `products` (the sale price where the feed has one), and a struck "was" price (the
    storyboard's `struck_prices`) equal to the feed's regular price and, for a product
    `price_history` knows, to its lowest price in the lookback window before the
    reduction.
    """
    video_checks: dict[str, Future[list[str]]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for job, render in zip(jobs, renders, strict=True):
            if render.key not in video_checks:
                video_checks[render.key] = pool.submit(video_problems, job, render)
        return [
            Checked(
                job.recipient(),
                render,
                sorted(
                    set(
                        video_checks[render.key].result()
                        + copy_problems(
                            job.storyboard.texts(),
                            customer=job.customer,
                            shown=[products[pid] for pid in job.storyboard.shows],
                            allow=allow,
                            policy=policy,
                            generated_media=job.storyboard.generated_media,
                            struck_prices=job.storyboard.struck_prices,
                            price_history=price_history,
                        )
                    )
                ),
            )
            for job, render in zip(jobs, renders, strict=True)
        ]


def split_renders(
    jobs: Sequence[Job], outcomes: Sequence[Render | BaseException]
) -> tuple[list[Job], list[Render], dict[str, str]]:
    """(jobs whose video was made, their renders, pseudonym → why it could not be made).

    A CreativeError (a full disk, ffmpeg failing on one storyboard) is one customer's
    failure: recorded, and nothing is sent to them. Anything else is a bug and is raised.
    """
    made: list[Job] = []
    renders: list[Render] = []
    failed: dict[str, str] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, Render):
            made.append(job)
            renders.append(outcome)
        elif isinstance(outcome, CreativeError):
            failed[job.pseudonym] = str(outcome)
        else:
            raise outcome
    return made, renders, failed
