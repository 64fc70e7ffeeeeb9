"""A campaign whose disk fills up while it renders: the customers whose video could not be
written are recorded (summary by reason, audit by pseudonym) and sent nothing; the others
are sent, each once; the audit chain holds."""

from __future__ import annotations

import errno
import mailbox
import threading
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_a_disk_that_fills_up_mid_render_holds_back_exactly_the_customers_without_a_video(
    prefect_api, campaign_params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.audit import AuditLog
    from delivery.outbox import Outbox
    from flows.campaign import campaign_flow

    renders = tmp_path / "renders"
    real_save = Image.Image.save
    lock = threading.Lock()
    written: list[str] = []

    def save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        # The OS boundary of the renderer's own writes: two posters fit, then the disk is full.
        if str(fp).startswith(str(renders)):
            with lock:
                if len(written) >= 2:
                    raise OSError(errno.ENOSPC, "No space left on device", str(fp))
                written.append(str(fp))
        real_save(self, fp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", save)
    summary = campaign_flow(campaign_params(tmp_path, campaign="full", limit=4))

    assert len(written) == 2
    [(reason, count)] = summary.render_failures.items()
    assert count == 2 and reason.startswith("disk full (no space left on device)")
    assert str(renders) in reason
    assert summary.queued == summary.sent == 2

    from runtime.settings import Settings

    key = Settings(workspace=tmp_path).audit_log_key()
    with AuditLog(tmp_path / "audit.sqlite", key=key) as log:
        assert log.verify().ok
        verdicts = {r.subject: r.data for r in log.records(campaign="full") if r.kind == "verdict"}
        sends = {r.subject for r in log.records(campaign="full") if r.kind == "send"}
    failed = {s for s, data in verdicts.items() if not data["ok"]}
    assert len(verdicts) == 4 and len(failed) == 2
    assert all(str(verdicts[s]["check"]).startswith("render: disk full") for s in failed)
    assert sends.isdisjoint(failed) and len(sends) == 2
    for data in verdicts.values():
        assert "@" not in str(data)

    with Outbox(tmp_path / "state.sqlite") as outbox:
        items = outbox.items(campaign_id="full")
    assert sorted(str(i.state) for i in items) == ["sent", "sent"]  # nothing for the others
    assert len(mailbox.Maildir(tmp_path / "mail", create=False)) == 2
    assert list(renders.glob("*/.tmp-*")) == []  # no half-written render left behind
