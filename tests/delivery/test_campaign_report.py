"""The campaign report: published interval values, the SRM check, simulated campaigns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from compliance.audience import Holdout
from compliance.audit import AuditLog
from compliance.pseudonym import pseudonymize
from delivery.events_store import TrackingEvents
from delivery.outbox import Outbox
from delivery.report import (
    Population,
    Send,
    build_report,
    load_report,
    newcombe_interval,
    population_from_audit,
    sample_ratio_check,
    wilson_interval,
)
from delivery.report_chart import draw_chart
from retail.types import Event, EventType

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

# ------------------------------------------------------------- intervals: published values


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998) "Two-sided confidence intervals for the single proportion",
        # Stat Med 17:857-872, Table I, method 3 (Wilson score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998(x: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        # Newcombe (1998) "Interval estimation for the difference between independent
        # proportions", Stat Med 17:873-890, Table II, method 10 (hybrid score).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ],
)
def test_newcombe_interval_matches_newcombe_1998(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    assert newcombe_interval(x1, n1, x2, n2) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


# ------------------------------------------------------------------ sample-ratio mismatch


def test_sample_ratio_check_flags_a_skewed_split() -> None:
    skewed = sample_ratio_check(holdout=1100, population=10_000, expected_share=0.1)
    assert skewed.mismatch
    assert skewed.p_value < 1e-3
    assert skewed.observed_share == pytest.approx(0.11)


def test_sample_ratio_check_accepts_chance_variation() -> None:
    fine = sample_ratio_check(holdout=1020, population=10_000, expected_share=0.1)
    assert not fine.mismatch
    assert fine.p_value > 0.05
    # chi2 for (1020, 8980) against (1000, 9000): 20²/1000 + 20²/9000
    assert fine.chi2 == pytest.approx(400 / 1000 + 400 / 9000)


def test_a_report_with_a_broken_split_says_not_to_trust_the_lift() -> None:
    holdout = Holdout(0.2, "c", "salt")
    ids = [f"c{i}" for i in range(5000)]
    held = [c for c in ids if holdout.contains(c)]
    # Half the holdout "got lost" (e.g. exported from a filtered table).
    population = [c for c in ids if c not in set(held[: len(held) // 2])]
    sends = [Send(c, START) for c in population if not holdout.contains(c)]
    report = build_report(
        "c", sends=sends, tracking=[], purchases=[], population=population, holdout=holdout
    )
    assert report.sample_ratio is not None and report.sample_ratio.mismatch
    assert any("sample-ratio mismatch" in note for note in report.notes)
    assert "**MISMATCH**" in report.to_markdown()


# ------------------------------------------------------------------- simulated campaigns


@dataclass
class Simulation:
    sends: list[Send]
    tracking: list[Event]
    purchases: list[Event]
    population: list[str]
    holdout: Holdout


def simulate(*, email_works: bool, seed: int = 20260504, n: int = 30_000) -> Simulation:
    """A campaign on customers whose true tastes the recommender never saw.

    Every customer has hidden category preferences and a baseline chance to buy in any
    week. The email shows the category the (imperfect) recommender guessed; how well it
    matches the hidden taste drives opens and clicks. The holdout gets nothing: they buy
    at their baseline. Treated customers buy at their baseline too, plus — only when the
    email works — an extra chance after a click that grows with the match.
    """
    rng = np.random.default_rng(seed)
    holdout = Holdout(0.2, "sim", "sim-salt")
    ids = [f"sim-{i:06d}" for i in range(n)]
    tastes = rng.dirichlet(np.full(8, 0.4), size=n)  # the held-out preferences
    guessed = np.where(rng.random(n) < 0.6, tastes.argmax(axis=1), rng.integers(0, 8, n))
    match = tastes[np.arange(n), guessed]
    baseline = np.clip(rng.lognormal(np.log(0.04), 0.6, n), 0, 0.5)
    send_offset = rng.uniform(0, 3 * 3600, n)  # sends spread over three hours
    sends: list[Send] = []
    tracking: list[Event] = []
    purchases: list[Event] = []
    for i, cid in enumerate(ids):
        held = holdout.contains(cid)
        anchor = START if held else START + timedelta(seconds=float(send_offset[i]))
        p_buy = baseline[i]
        if not held:
            sends.append(Send(cid, anchor, "subject-a" if i % 2 else "subject-b"))
            opened = rng.random() < 0.2 + 0.4 * match[i]
            clicked = opened and rng.random() < 0.1 + 0.5 * match[i]
            if opened:
                tracking.append(_event(cid, EventType.open, anchor + timedelta(hours=2)))
            if clicked:
                tracking.append(_event(cid, EventType.click, anchor + timedelta(hours=3)))
                if email_works:
                    p_buy = min(1.0, p_buy + 0.5 * match[i])
        if rng.random() < p_buy:
            when = anchor + timedelta(days=float(rng.uniform(0.2, 6.9)))
            purchases.append(_event(cid, EventType.purchase, when))
        # Purchases outside the window must not count, for anybody.
        if rng.random() < 0.05:
            purchases.append(_event(cid, EventType.purchase, anchor - timedelta(days=2)))
        if rng.random() < 0.05:
            purchases.append(_event(cid, EventType.purchase, anchor + timedelta(days=9)))
    return Simulation(sends, tracking, purchases, ids, holdout)


def _event(customer: str, kind: EventType, at: datetime) -> Event:
    return Event(customer_id=customer, type=kind, timestamp=at)


def _report(sim: Simulation):  # type: ignore[no-untyped-def]
    return build_report(
        "sim",
        sends=sim.sends,
        tracking=sim.tracking,
        purchases=sim.purchases,
        population=sim.population,
        holdout=sim.holdout,
        attribution=timedelta(days=7),
    )


def test_a_campaign_that_works_shows_a_lift_whose_interval_excludes_zero() -> None:
    report = _report(simulate(email_works=True))
    assert report.sample_ratio is not None and not report.sample_ratio.mismatch
    comparison = report.holdout
    assert comparison is not None
    assert comparison.holdout.trials > 5000 and comparison.treated.trials > 20_000
    assert comparison.lift.low > 0
    assert comparison.lift.excludes_zero
    assert "the campaign changed conversion" in report.to_markdown()


def test_a_campaign_with_no_effect_shows_a_lift_whose_interval_includes_zero() -> None:
    report = _report(simulate(email_works=False))
    assert report.sample_ratio is not None and not report.sample_ratio.mismatch
    comparison = report.holdout
    assert comparison is not None
    assert comparison.lift.low < 0 < comparison.lift.high
    assert not comparison.lift.excludes_zero
    assert "includes zero" in report.to_markdown()
    # The funnel is still there: people opened and clicked, they just did not buy more.
    assert all(v.clicks.successes > 0 for v in report.variants)


# ------------------------------------------------------------------ report definitions


def test_variants_opens_clicks_and_attribution_window() -> None:
    sends = [
        Send("a", START, "subject-a"),
        Send("b", START, "subject-a"),
        Send("c", START + timedelta(hours=1), "subject-b"),
    ]
    tracking = [
        _event("a", EventType.open, START + timedelta(minutes=5)),
        _event("a", EventType.open, START + timedelta(minutes=9)),  # counted once
        _event("b", EventType.click, START + timedelta(minutes=7)),  # click implies open
        _event("c", EventType.unsubscribe, START + timedelta(hours=2)),
    ]
    purchases = [
        _event("a", EventType.purchase, START + timedelta(days=6, hours=23)),  # inside
        _event("b", EventType.purchase, START + timedelta(days=7)),  # window is half-open
        _event("c", EventType.purchase, START + timedelta(minutes=30)),  # before c's send
        _event("c", EventType.view, START + timedelta(hours=2)),  # not a purchase
    ]
    report = build_report("x", sends=sends, tracking=tracking, purchases=purchases)
    a, b = report.variants
    assert (a.variant, a.sends, a.opens.successes, a.clicks.successes) == ("subject-a", 2, 2, 1)
    assert a.conversions.successes == 1
    assert (b.variant, b.sends, b.opens.successes, b.conversions.successes) == (
        "subject-b",
        1,
        0,
        0,
    )
    assert b.unsubscribes == 1
    assert a.clicks.rate == 0.5
    assert a.clicks.low < 0.5 < a.clicks.high
    assert report.holdout is None
    assert any("no holdout comparison" in note for note in report.notes)


def test_emails_without_a_recorded_variant_are_one_variant_and_the_report_says_so() -> None:
    report = build_report(
        "x", sends=[Send("a", START), Send("b", START)], tracking=[], purchases=[]
    )
    (only,) = report.variants
    assert only.variant == "all" and only.sends == 2
    assert any("no variant was recorded" in note for note in report.notes)


def test_both_groups_are_counted_from_assignment_and_the_mailed_from_their_send() -> None:
    holdout = Holdout(0.5, "x", "s")
    ids = [f"k{i}" for i in range(40)]
    held = [c for c in ids if holdout.contains(c)]
    treated = [c for c in ids if not holdout.contains(c)]
    assigned = START - timedelta(hours=3)
    sends = [Send(treated[-1], START)] + [Send(c, START + timedelta(hours=2)) for c in treated[:-1]]
    purchases = [
        _event(held[0], EventType.purchase, START + timedelta(hours=1)),  # after assignment
        _event(held[1], EventType.purchase, assigned - timedelta(hours=1)),  # before: does not
        _event(treated[0], EventType.purchase, START + timedelta(hours=1)),  # before its send
    ]
    report = build_report(
        "x",
        sends=sends,
        tracking=[],
        purchases=purchases,
        population=ids,
        holdout=holdout,
        assigned_at=assigned,
    )
    assert report.holdout is not None and report.holdout.kind == "intent-to-treat"
    assert report.holdout.holdout.successes == 1
    # Intent to treat: the window opens at assignment for everyone, so the purchase made
    # after assignment, before this customer's own send, counts.
    assert report.holdout.treated.successes == 1
    assert report.holdout.holdout_anchor == assigned
    # Without a recorded assignment, the window opens at the first send, and a note says so.
    unanchored = build_report(
        "x", sends=sends, tracking=[], purchases=purchases, population=ids, holdout=holdout
    )
    assert unanchored.holdout is not None and unanchored.holdout.holdout_anchor == START
    assert any("assignment time unknown" in n for n in unanchored.notes)


def test_mailing_a_recomputed_holdout_member_is_reported() -> None:
    holdout = Holdout(0.3, "x", "s")
    ids = [f"k{i}" for i in range(200)]
    sends = [Send(c, START) for c in ids]  # everybody mailed: wrong share or salt given
    report = build_report(
        "x", sends=sends, tracking=[], purchases=[], population=ids, holdout=holdout
    )
    assert any("were mailed" in note for note in report.notes)


def test_report_json_and_chart(tmp_path: Path) -> None:
    report = _report(simulate(email_works=True, n=3000))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["holdout"]["lift"]["excludes_zero"] in (True, False)
    assert {v["variant"] for v in data["variants"]} == {"subject-a", "subject-b"}
    assert "sim-0" not in json.dumps(data)  # counts only, no customer ids
    png = draw_chart(report, tmp_path / "chart.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (960, 460)
        assert len(set(image.getdata())) > 5  # something was drawn
    empty = build_report("none", sends=[], tracking=[], purchases=[])
    draw_chart(empty, tmp_path / "empty.png")
    assert "(no emails sent)" in empty.to_markdown()


# ------------------------------------------------------------------- loader and outbox


SECRET = b"report-test-secret-of-enough-bytes"


def _seed_workspace(root: Path) -> tuple[Path, list[str], Holdout]:
    """An outbox, tracking events and an audit log as a campaign run would leave them."""
    state, audit_db = root / "state.sqlite", root / "audit.sqlite"
    holdout = Holdout(0.25, "spring", "salt")
    ids = [f"cust-{i:04d}" for i in range(160)]
    no_consent = set(ids[:16])
    held = [c for c in ids[16:] if holdout.contains(c)]
    treated = [c for c in ids[16:] if not holdout.contains(c)]
    with Outbox(state) as outbox, TrackingEvents(state) as events:
        for i, cid in enumerate(treated):
            outbox.enqueue(
                campaign_id="spring",
                customer_id=cid,
                recipient=f"{cid}@mail.example",
                message=b"Subject: hi\r\n\r\nbody\r\n",
                due_at=START,
                now=START,
                variant="subject-a" if i % 2 else "subject-b",
            )
        for item in outbox.claim_due(START, limit=1000):
            assert outbox.begin_send(item, now=START)
            outbox.mark_sent(item.id, f"provider-{item.id}", now=START)
        for cid in treated[:30]:
            events.record("spring", cid, EventType.open, at=START + timedelta(hours=1))
        for cid in treated[:10]:
            events.record("spring", cid, EventType.click, at=START + timedelta(hours=1))
        events.record("other-campaign", treated[0], EventType.click, at=START)
    with AuditLog(audit_db, key=b"audit-key-for-tests") as audit:
        audit.append(
            "exclusion",
            campaign="spring",
            entries=[(pseudonymize(SECRET, c), {"reason": "consent-unknown"}) for c in no_consent]
            + [(pseudonymize(SECRET, c), {"reason": "holdout"}) for c in held],
        )
        audit.record("holdout", campaign="spring", share=0.25)
    return root, ids, holdout


def test_load_report_reads_outbox_variants_tracking_events_and_audit(tmp_path: Path) -> None:
    root, ids, holdout = _seed_workspace(tmp_path)
    population = population_from_audit(
        ids, audit_db=root / "audit.sqlite", secret=SECRET, campaign="spring"
    )
    assert len(population.customer_ids) == 144  # the 16 without consent never entered the split
    purchases = [_event(ids[100], EventType.purchase, START + timedelta(days=1))]
    report = load_report(
        "spring",
        state_db=root / "state.sqlite",
        purchases=purchases,
        population=population,
        holdout=holdout,
    )
    assert [v.variant for v in report.variants] == ["subject-a", "subject-b"]
    assert sum(v.opens.successes for v in report.variants) == 30
    assert sum(v.clicks.successes for v in report.variants) == 10
    assert report.sample_ratio is not None
    assert report.sample_ratio.population == 144
    assert report.sample_ratio.holdout == population.audited_holdout
    assert report.holdout is not None
    assert report.holdout.treated.trials + report.holdout.holdout.trials == 144
    assert not any("audit log recorded" in note for note in report.notes)


def test_without_an_audit_every_given_customer_is_in_the_split(tmp_path: Path) -> None:
    population = population_from_audit(
        ["a", "b"], audit_db=tmp_path / "none.sqlite", secret=SECRET, campaign="c"
    )
    assert population == Population(["a", "b"], None, population.note)
    assert "no audit log" in population.note


def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.tracking import report

    root, ids, _ = _seed_workspace(tmp_path / "ws")
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "id,email,first_name\n" + "".join(f"{c},{c}@mail.example,Ann\n" for c in ids)
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_id,product_id,type,timestamp\n"
        f"{ids[100]},sku-1,purchase,{(START + timedelta(days=1)).isoformat()}\n"
    )
    monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", SECRET.decode())
    monkeypatch.setenv("REELCAST_HOLDOUT_SALT", "salt")
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.command()(report)
    args = ["spring", "--workspace", str(root), "--customers", str(customers)]
    args += ["--events", str(events), "--png", str(tmp_path / "r.png"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["sample_ratio"]["expected_share"] == 0.25  # read from the audit log
    assert data["holdout"]["treated"]["trials"] + data["holdout"]["holdout"]["trials"] == 144
    assert (tmp_path / "r.png").is_file()
    assert "cust-" not in result.output
    text = CliRunner().invoke(app, ["spring", "--workspace", str(root)])
    assert text.exit_code == 0, text.output
    assert "subject-a" in text.output


def test_the_reports_ctr_ignores_machine_hits(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from compliance.suppression import SuppressionList
    from delivery.links import make_token
    from delivery.tracking import create_app

    root, _, _ = _seed_workspace(tmp_path)  # 10 clickers among the treated
    with Outbox(root / "state.sqlite") as outbox:
        treated = sorted(i.customer_id for i in outbox.items(campaign_id="spring"))
    page = "https://shop.example.com/p/1"
    with TrackingEvents(root / "tracking.sqlite") as events:
        app = create_app(
            secret=SECRET,
            events=events,
            suppression=SuppressionList(root / "state.sqlite"),
            renders_dir=root / "renders",
            allowed_redirect_hosts=["shop.example.com"],
            clock=lambda: START + timedelta(hours=2),
        )
        browser = {"User-Agent": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"}
        with TestClient(app, follow_redirects=False) as client:
            for cid in treated[40:60]:  # a link scanner at the recipients' gateway
                token = make_token(SECRET, "spring", cid)
                scanner = {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}
                assert client.get(f"/c/{token}", params={"u": page}, headers=scanner)
                assert client.head(f"/o/{token}.gif")
            person = make_token(SECRET, "spring", treated[70])
            assert client.get(f"/c/{person}", params={"u": page}, headers=browser)
    report = load_report("spring", state_db=root / "state.sqlite")
    assert sum(v.clicks.successes for v in report.variants) == 11  # the 10 seeded, 1 person
    assert sum(v.opens.successes for v in report.variants) == 31
    assert sum(report.machine_hits.values()) == 40
    assert any("40 machine hits are not counted" in note for note in report.notes)
