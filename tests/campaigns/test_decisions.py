"""The campaign's decisions as plain functions: no Prefect, real data, real stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import campaigns.checks as checks
from campaigns.audience import AudienceRules, choose_audience, selected
from campaigns.audit import exclusion_entries, pick_entries, render_entries, verdict_entries
from campaigns.checks import Checked, check_creatives, creative_allowlist
from campaigns.emails import Letterhead, due_times, queue_emails
from campaigns.plan import Job, assign_variant, may_show_first_names, plan_jobs
from campaigns.summary import CampaignSummary, fallback_reasons, picks_rows, summary_markdown
from compliance.audience import Exclusion, FrequencyCap, Selection
from compliance.claims import load_policy
from compliance.suppression import SuppressionList
from creative.render import Render
from creative.template import Template, load_template
from delivery.dispatch import DispatchReport
from delivery.links import Links
from delivery.outbox import Outbox
from retail.demo import DemoFiles
from retail.loaders import RetailData, load_retail
from retail.types import Pick

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(small_retailer: DemoFiles) -> RetailData:
    return load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)


@pytest.fixture(scope="module")
def hero() -> Template:
    return load_template(REPO / "templates", "hero", REPO / "assets")


def _picks(data: RetailData, customer_ids: list[str]) -> dict[str, Pick]:
    ids = [p.id for p in data.products]
    return {
        cid: Pick(
            customer_id=cid,
            product_ids=(ids[i % len(ids)], ids[(i + 1) % len(ids)]),
            scores=(0.9, 0.8),
            reasons=("viewed similar", "popular"),
            model_version="test-1",
        )
        for i, cid in enumerate(customer_ids)
    }


def _alias(cid: str) -> str:
    return f"ps-{abs(hash(cid)) % 16**8:08x}"


def _jobs(data: RetailData, hero: Template, n: int, *, first_names: bool = True) -> list[Job]:
    customers = data.customers[:n]
    return plan_jobs(
        customers,
        _picks(data, [c.id for c in customers]),
        {p.id: p for p in data.products},
        hero,
        pseudonym=_alias,
        images_root=data.catalog_dir,
        first_names=first_names,
        campaign="spring",
    )


def test_headline_variants_are_stable_per_campaign_and_use_every_headline(
    hero: Template,
) -> None:
    count = len(hero.spec.headlines)
    ids = [f"c-{i}" for i in range(600)]
    variants = [assign_variant(c, "spring", hero) for c in ids]
    assert set(variants) == set(range(count))
    assert variants == [assign_variant(c, "spring", hero) for c in ids]
    shares = [variants.count(v) / len(ids) for v in range(count)]
    assert all(abs(share - 1 / count) < 0.08 for share in shares), shares
    other = [assign_variant(c, "summer", hero) for c in ids]
    assert other != variants, "salted per campaign: another campaign splits otherwise"


def test_the_split_does_not_depend_on_the_workspace_secret(
    data: RetailData, hero: Template
) -> None:
    """Two workspaces (two pseudonym keys) give every customer the same headline."""
    customers = data.customers[:40]
    picks = _picks(data, [c.id for c in customers])
    products = {p.id: p for p in data.products}

    def plan(secret: str) -> list[str]:
        jobs = plan_jobs(
            customers, picks, products, hero, pseudonym=lambda cid: f"{secret}-{cid}",
            images_root=data.catalog_dir, first_names=True, campaign="spring",
        )  # fmt: skip
        return [job.variant for job in jobs]

    assert plan("one") == plan("two")
    assert len(set(plan("one"))) > 1


@pytest.mark.parametrize(
    ("personalize", "renderer", "vendor_first_names", "allowed"),
    [
        (True, "local", False, True),
        (False, "local", True, False),
        (True, "vendor", False, False),
        (True, "vendor", True, True),
    ],
)
def test_first_names_reach_videos_only_where_settings_and_vendor_allow(
    personalize: bool, renderer: str, vendor_first_names: bool, allowed: bool
) -> None:
    assert may_show_first_names(personalize, renderer, vendor_first_names) is allowed


def test_plan_skips_customers_without_a_pick_and_keeps_their_order(
    data: RetailData, hero: Template
) -> None:
    customers = data.customers[:6]
    picks = _picks(data, [c.id for c in customers[::2]])
    jobs = plan_jobs(
        customers,
        picks,
        {p.id: p for p in data.products},
        hero,
        pseudonym=_alias,
        images_root=data.catalog_dir,
        first_names=True,
        campaign="spring",
    )
    assert [j.customer.id for j in jobs] == [c.id for c in customers[::2]]
    for job in jobs:
        assert job.pseudonym == _alias(job.customer.id)
        assert job.variant == f"headline-{assign_variant(job.customer.id, 'spring', hero)}"
        assert job.pick is picks[job.customer.id]


def test_no_first_name_in_any_video_when_not_allowed_or_opted_out(
    data: RetailData, hero: Template
) -> None:
    def shows_name(job: Job) -> bool:
        return any(job.customer.first_name in t for t in job.storyboard.texts())

    # Every customer gets the greeting headline, so a name would show if allowed.
    import campaigns.plan as plan

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan, "assign_variant", lambda customer_id, campaign, template: 0)
        allowed = _jobs(data, hero, 20)
        refused = _jobs(data, hero, 20, first_names=False)
    opted_in = [j for j in allowed if j.customer.personalization]
    assert opted_in and all(shows_name(j) for j in opted_in)
    assert not any(shows_name(j) for j in allowed if not j.customer.personalization)
    assert not any(shows_name(j) for j in refused)


def _render(key: str, tmp: Path) -> Render:
    folder = tmp / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "poster.jpg").write_bytes(b"jpeg")
    return Render(
        video=folder / "video.mp4",
        poster=folder / "poster.jpg",
        key=key,
        duration_s=8.0,
        width=720,
        height=1280,
        reused=False,
    )


def test_a_shared_video_is_checked_once_and_its_problem_counts_for_each_customer(
    data: RetailData, hero: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = _jobs(data, hero, 3)
    shared, own = _render("a" * 64, tmp_path), _render("b" * 64, tmp_path)
    decoded: list[str] = []

    def video_problems(job: Job, render: Render) -> list[str]:
        decoded.append(render.key)
        return ["video: frozen 2.0 s"] if render.key == shared.key else []

    monkeypatch.setattr(checks, "video_problems", video_problems)
    checked = check_creatives(
        jobs,
        [shared, own, shared],
        {p.id: p for p in data.products},
        allow=creative_allowlist(data.products, hero),
        policy=load_policy(),
        workers=2,
    )
    assert sorted(decoded) == [shared.key, own.key]
    assert [c.ok for c in checked] == [False, True, False]
    assert checked[0].verdict == "video: frozen 2.0 s" and checked[1].verdict == "ok"
    summary = CampaignSummary("c1")
    summary.count_checks(checked)
    assert summary.failed_checks == {"video: frozen 2.0 s": 2}
    assert (summary.rendered, summary.reused_renders) == (3, 0)
    rows = picks_rows(checked)
    assert [r["customer"] for r in rows] == [j.pseudonym for j in jobs]
    assert rows[1]["check"] == "ok" and rows[0]["video"] == shared.key[:12]


def test_a_variant_with_the_same_title_at_another_price_is_not_the_one_on_screen(
    data: RetailData, hero: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Size and colour variants often share a title: the hero template shows the first
    product of the pick, so only its price is checked, not its namesake's (the load
    benchmark held back creatives over this)."""
    first, second = data.products[0], data.products[1]
    variant = second.model_copy(update={"title": first.title, "price": first.price + 7})
    customer = data.customers[0]
    pick = Pick(
        customer_id=customer.id,
        product_ids=(first.id, variant.id),
        scores=(0.9, 0.8),
        reasons=("viewed similar", "popular"),
        model_version="test-1",
    )
    products = {p.id: p for p in data.products} | {variant.id: variant}
    [job] = plan_jobs(
        [customer],
        {customer.id: pick},
        products,
        hero,
        pseudonym=_alias,
        images_root=data.catalog_dir,
        first_names=False,
        campaign="spring",
    )
    assert job.storyboard.shows == (first.id,)
    monkeypatch.setattr(checks, "video_problems", lambda job, render: [])
    [checked] = check_creatives(
        [job],
        [_render("d" * 64, tmp_path)],
        products,
        allow=creative_allowlist(list(products.values()), hero),
        policy=load_policy(),
        workers=1,
    )
    assert checked.verdict == "ok"


def test_a_customers_own_address_in_the_copy_fails_its_check(
    data: RetailData, hero: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _jobs(data, hero, 1)[0]
    monkeypatch.setattr(checks, "video_problems", lambda job, render: [])
    monkeypatch.setattr(type(job.storyboard), "texts", lambda self: [f"Hello {job.customer.email}"])
    checked = check_creatives(
        [job],
        [_render("c" * 64, tmp_path)],
        {p.id: p for p in data.products},
        allow=creative_allowlist(data.products, hero),
        policy=load_policy(),
        workers=1,
    )
    assert not checked[0].ok
    assert str(job.customer.email) not in checked[0].verdict  # the reason names no value


def test_audit_entries_name_pseudonyms_only(
    data: RetailData, hero: Template, tmp_path: Path
) -> None:
    jobs = _jobs(data, hero, 2)
    renders = [_render("d" * 64, tmp_path), _render("e" * 64, tmp_path)]
    checked = [Checked(jobs[0], renders[0], []), Checked(jobs[1], renders[1], ["poster: missing"])]
    local = {jobs[1].pseudonym: "VendorUnavailable: 503"}
    assert render_entries(checked, local) == [
        (jobs[0].pseudonym, {"key": "d" * 64, "reused": False}),
        (
            jobs[1].pseudonym,
            {"key": "e" * 64, "reused": False, "rendered_locally": "VendorUnavailable: 503"},
        ),
    ]
    assert verdict_entries(checked) == [
        (jobs[0].pseudonym, {"ok": True, "check": "ok"}),
        (jobs[1].pseudonym, {"ok": False, "check": "poster: missing"}),
    ]
    picks = pick_entries(jobs)
    assert [s for s, _ in picks] == [j.pseudonym for j in jobs]
    assert picks[0][1]["products"] == list(jobs[0].pick.product_ids)
    text = repr(picks) + repr(render_entries(checked, local))
    assert not any(j.customer.id in text or str(j.customer.email) in text for j in jobs)


def test_the_audience_leaves_out_the_suppressed_and_the_capped(
    data: RetailData, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    rules = AudienceRules(cap=FrequencyCap(max_emails=2, days=7))

    def audience_now():  # type: ignore[no-untyped-def]
        return choose_audience(
            data.customers,
            data.events,
            campaign="now",
            holdout_share=0.0,
            rules=rules,
            state_db=state,
            now=NOW,
        )

    first, second, third = audience_now().eligible[:3]
    SuppressionList(state).add([first.id], reason="complaint", source="test")
    with Outbox(state) as outbox:
        for campaign in ("earlier-1", "earlier-2"):
            outbox.enqueue(
                campaign_id=campaign,
                customer_id=second.id,
                recipient=str(second.email),
                message=_message(),
                due_at=NOW - timedelta(days=1),
            )
            item = outbox.claim_due(NOW, limit=1)[0]
            outbox.mark_sent(item.id, provider_id="x", now=NOW - timedelta(hours=1))
    audience = audience_now()
    assert audience.excluded[first.id] is Exclusion.suppressed
    assert audience.excluded[second.id] is Exclusion.frequency_cap
    assert third in audience.eligible
    assert selected(audience, Selection(1, "file"), data.customers) == audience.eligible[:1]
    assert selected(audience, Selection(), data.customers) == audience.eligible
    drawn = selected(audience, Selection(3, experiment="spring"), data.customers)
    assert len(drawn) == 3 and set(map(id, drawn)) <= set(map(id, audience.eligible))
    exclusions = exclusion_entries(audience, _alias)
    assert (_alias(first.id), {"reason": str(Exclusion.suppressed)}) in exclusions


def _message():  # type: ignore[no-untyped-def]
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "x"
    msg.set_content("x")
    return msg


def test_emails_are_queued_once_per_customer_and_campaign(
    data: RetailData, hero: Template, tmp_path: Path
) -> None:
    jobs = _jobs(data, hero, 3)
    renders = [_render(k * 64, tmp_path) for k in "fab"]
    letterhead = Letterhead(
        links=Links("https://shop.example", unsubscribe_address="unsubscribe@example.com"),
        sender="Shop <shop@example.com>",
        postal_address="1 Main St, Springfield",
        templates_dir=REPO / "templates",
        secret=b"k" * 32,
    )
    due = due_times(jobs, data.events, NOW, send_now=False, send_hour=10)
    assert set(due) == {j.customer.id for j in jobs} and all(t > NOW for t in due.values())
    assert due_times(jobs, [], NOW, send_now=True, send_hour=10) == dict.fromkeys(
        [j.customer.id for j in jobs], NOW
    )
    counted: list[int] = []
    queue: Callable[[], tuple[int, int]] = lambda: queue_emails(  # noqa: E731
        list(zip(jobs, renders, strict=True)),
        outbox=outbox,
        campaign="spring",
        subjects=["A", "B"],
        products={p.id: p for p in data.products},
        letterhead=letterhead,
        due=due,
        now=NOW,
        on_queued=lambda: counted.append(1),
    )
    with Outbox(tmp_path / "state.sqlite") as outbox:
        assert queue() == (3, 0)
        assert queue() == (0, 3)
        items = [outbox.get("spring", j.customer.id) for j in jobs]
    assert len(counted) == 3
    assert all(i is not None and i.variant in {"subject-A", "subject-B"} for i in items)
    assert [i.due_at for i in items if i is not None] == [due[j.customer.id] for j in jobs]


def test_summary_counts_sends_and_publishes_no_customer_data(
    data: RetailData, hero: Template
) -> None:
    jobs = _jobs(data, hero, 2)
    summary = CampaignSummary("spring")
    summary.count_sends(DispatchReport(sent=5, failed=1, unknown=2))
    assert summary.sent == 5
    assert summary.not_sent == {"failed": 1, "outcome unknown": 2}
    long_reason = "VendorUnavailable: " + "x|" * 200
    reasons = fallback_reasons({jobs[1].storyboard.key(): long_reason}, jobs)
    assert list(reasons) == [jobs[1].pseudonym]
    assert len(reasons[jobs[1].pseudonym]) == 200 and "|" not in reasons[jobs[1].pseudonym]
    summary.rendered_locally = reasons
    text = summary_markdown(summary)
    assert "| emails sent | 5 |" in text and jobs[1].pseudonym in text
    assert not any(j.customer.id in text or j.customer.first_name in text for j in jobs)


def test_render_batches_make_each_distinct_video_once_in_few_tasks(
    data: RetailData, hero: Template
) -> None:
    from campaigns.plan import render_batches

    jobs = _jobs(data, hero, 40)
    twice = jobs + jobs[:10]  # ten customers whose storyboards equal earlier ones
    batches = render_batches(twice, workers=2)
    keys = [j.storyboard.key() for b in batches for j in b.jobs]
    assert len(keys) == len(set(keys)) == len({j.storyboard.key() for j in jobs})
    assert len(batches) == 20 and {len(b.jobs) for b in batches} == {2}  # 16 per worker
    assert batches[0].name == f"{batches[0].jobs[0].pseudonym}+1"
    capped = render_batches(jobs, workers=1, most=2)  # 40 / 16 would be 3 a batch
    assert max(len(b.jobs) for b in capped) == 2
    one = render_batches(jobs[:1], workers=2)
    assert [b.name for b in one] == [jobs[0].pseudonym]
    assert render_batches([], workers=2) == []


def test_customers_sharing_a_storyboard_share_its_video_as_reused(
    data: RetailData, hero: Template, tmp_path: Path
) -> None:
    from campaigns.plan import share_renders

    jobs = _jobs(data, hero, 2)
    twice = [jobs[0], jobs[1], jobs[0]]
    failure = RuntimeError("disk full")
    made: dict[str, Render | BaseException] = {
        jobs[0].storyboard.key(): _render("f" * 64, tmp_path),
        jobs[1].storyboard.key(): failure,
    }
    out = share_renders(twice, made)
    assert isinstance(out[0], Render) and isinstance(out[2], Render)
    assert (out[0].reused, out[2].reused) == (False, True) and out[0].key == out[2].key
    assert out[1] is failure


def test_a_carousel_shows_three_products_and_a_hero_one(data: RetailData, hero: Template) -> None:
    carousel = load_template(REPO / "templates", "carousel", REPO / "assets")
    customer = data.customers[0]
    ids = tuple(p.id for p in data.products[:4])
    pick = Pick(
        customer_id=customer.id,
        product_ids=ids,
        scores=(0.9, 0.8, 0.7, 0.6),
        reasons=("a", "b", "c", "d"),
        model_version="test-1",
    )
    shows = {
        template.name: plan_jobs(
            [customer],
            {customer.id: pick},
            {p.id: p for p in data.products},
            template,
            pseudonym=_alias,
            images_root=data.catalog_dir,
            first_names=False,
            campaign="spring",
        )[0].storyboard.shows
        for template in (hero, carousel)
    }
    assert shows == {"hero": ids[:1], "carousel": ids[:3]}


def test_the_summary_says_how_many_slots_show_products_newer_than_the_model() -> None:
    summary = CampaignSummary("spring", model_version="rc3-abc")
    summary.reasons = {"ranked": 10, "new": 2}
    text = summary_markdown(summary)
    assert "| new | 2 |" in text
    assert "2 slot(s) show products added to the catalog after model `rc3-abc`" in text
    summary.reasons = {"ranked": 12}
    assert "added to the catalog after" not in summary_markdown(summary)
