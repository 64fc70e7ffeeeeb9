"""Run metrics come out in Prometheus text format with quantiles per stage."""

from __future__ import annotations

from pathlib import Path

from runtime.metrics import Metrics


def test_quantiles_counts_and_counters_in_prometheus_format(tmp_path: Path) -> None:
    with Metrics(tmp_path / "m.sqlite") as metrics:
        for i in range(1, 101):
            metrics.observe("render", i / 100)
        metrics.incr("emails_sent_total", 3)
        metrics.incr("emails_sent_total", 2)
        text = metrics.prometheus_text()
        q = metrics.quantiles("render")
    assert abs(q[0.5] - 0.505) < 1e-9 and abs(q[0.99] - 0.9901) < 1e-9
    assert 'reelcast_stage_seconds{stage="render",quantile="0.95"} 0.950500' in text
    assert 'reelcast_stage_seconds_count{stage="render"} 100' in text
    assert "# TYPE reelcast_emails_sent_total counter\nreelcast_emails_sent_total 5" in text


def test_timed_block_is_observed_even_when_it_raises(tmp_path: Path) -> None:
    with Metrics(tmp_path / "m.sqlite") as metrics:
        try:
            with metrics.timed("send"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert metrics.quantiles("send")
