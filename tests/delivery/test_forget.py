"""`reelcast forget` erases one customer: their exact address, their own videos, nobody else's."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from compliance.audit import AuditLog
from compliance.pseudonym import pseudonymize
from delivery.outbox import Outbox
from runtime.settings import Settings


def _mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = "Picked for you"
    msg.set_content("hello")
    return msg


def _video(renders: Path, key: str) -> Path:
    folder = renders / key[:2] / key
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"video")
    return folder


def test_forget_matches_exact_addresses_and_keeps_videos_others_received(
    tmp_path: Path, monkeypatch
) -> None:
    from cli.main import app

    monkeypatch.delenv("REELCAST_PSEUDONYM_SECRET", raising=False)
    ws = tmp_path / "ws"
    secret = Settings(workspace=ws).secret()
    people = {"c-ann": "ann@shop.example", "c-joann": "joann@shop.example", "c-bo": "bo@x.example"}
    alias = {cid: pseudonymize(secret, cid) for cid in people}
    now = datetime.now(UTC)
    with Outbox(ws / "state.sqlite") as outbox:
        for cid, address in people.items():
            outbox.enqueue(
                campaign_id="spring", customer_id=cid, recipient=address,
                message=_mail(address), due_at=now,
            )  # fmt: skip
    box = mailbox.Maildir(ws / "mail", create=True)
    for address in people.values():
        box.add(mailbox.MaildirMessage(_mail(f"Someone <{address.upper()}>")))
    shared, own = "a" * 64, "b" * 64
    renders = ws / "renders"
    shared_folder, own_folder = _video(renders, shared), _video(renders, own)
    with AuditLog(ws / "audit.sqlite", key=Settings(workspace=ws).audit_log_key()) as log:
        log.append(
            "render",
            campaign="spring",
            entries=[
                (alias["c-ann"], {"key": own, "reused": False}),
                (alias["c-joann"], {"key": shared, "reused": False}),
                (alias["c-bo"], {"key": shared, "reused": True}),
            ],
        )

    runner = CliRunner()
    result = runner.invoke(app, ["forget", "c-ann", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    left = sorted(str(m["To"]).lower() for m in mailbox.Maildir(ws / "mail", create=False))
    assert left == ["someone <bo@x.example>", "someone <joann@shop.example>"]
    assert not own_folder.exists() and shared_folder.exists()

    # joann shares her video with bo: erasing her keeps it for him; erasing him then frees it.
    result = runner.invoke(app, ["forget", "c-joann", "--workspace", str(ws)])
    assert result.exit_code == 0 and "1 video(s) kept" in result.output
    assert shared_folder.exists()
    result = runner.invoke(app, ["forget", "c-bo", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert not shared_folder.exists()
    assert list(mailbox.Maildir(ws / "mail", create=False)) == []
    assert "@" not in result.output  # counts and the pseudonym only


def test_forget_deletes_the_customers_own_video_from_a_shared_render_store(
    tmp_path: Path, monkeypatch
) -> None:
    from cli.main import app
    from creative.store import RenderStore
    from tests.s3 import moto_s3

    for name in ("REELCAST_PSEUDONYM_SECRET", "REELCAST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    ws = tmp_path / "ws"
    secret = Settings(workspace=ws).secret()
    shared, own = "c" * 64, "d" * 64
    with moto_s3() as s3:
        for name, value in s3.settings_env("forget").items():
            monkeypatch.setenv(name, value)
        store = RenderStore(s3.url("forget"), **s3.options())
        for key in (shared, own):  # made on another worker: in the store, not in this cache
            folder = _video(tmp_path / "elsewhere", key)
            (folder / "render.json").write_text(f'{{"key": "{key}"}}')
            store.publish(key, folder)
        with AuditLog(ws / "audit.sqlite", key=Settings(workspace=ws).audit_log_key()) as log:
            log.append(
                "render",
                campaign="spring",
                entries=[
                    (pseudonymize(secret, "c-ann"), {"key": own, "reused": False}),
                    (pseudonymize(secret, "c-ann"), {"key": shared, "reused": False}),
                    (pseudonymize(secret, "c-bo"), {"key": shared, "reused": True}),
                ],
            )

        result = CliRunner().invoke(app, ["forget", "c-ann", "--workspace", str(ws)])
        assert result.exit_code == 0, result.output
        assert "1 video(s) deleted" in " ".join(result.output.split()), result.output
        assert not store.has(own) and not store.fs.exists(store.path(own, "video.mp4"))
        assert store.has(shared), "bo received the same video: it stays"


def test_forget_deletes_the_scene_pieces_that_show_the_name(tmp_path: Path, monkeypatch) -> None:
    """A video joined from scene segments: its segments that show the name go with it,
    here and in a shared store; segments without the name stay for other customers."""
    import json

    from cli.main import app
    from creative.store import PIECE_FILES, PIECE_MARKER, RenderStore

    for name in ("REELCAST_PSEUDONYM_SECRET", "REELCAST_DATABASE_URL", "REELCAST_RENDER_STORE"):
        monkeypatch.delenv(name, raising=False)
    ws = tmp_path / "ws"
    settings = Settings(workspace=ws)
    video, named, product = "e" * 64, "f" * 64, "0" * 64
    monkeypatch.setenv("REELCAST_RENDER_STORE", str(tmp_path / "store"))
    store = RenderStore(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    for key in (named, product):  # pieces: in this machine's cache and in the store
        for root in (ws / "renders", elsewhere):
            folder = root / key[:2] / key
            folder.mkdir(parents=True)
            (folder / "segment.mp4").write_bytes(b"segment")
            (folder / PIECE_MARKER).write_text(json.dumps({"key": key}))
        store.publish(key, elsewhere / key[:2] / key, files=PIECE_FILES)
    folder = _video(elsewhere, video)  # the video itself: only in the store
    pieces = [{"key": named, "personal": True}, {"key": product, "personal": False}]
    (folder / "render.json").write_text(json.dumps({"key": video, "pieces": pieces}))
    store.publish(video, folder)
    with AuditLog(ws / "audit.sqlite", key=settings.audit_log_key()) as log:
        subject = pseudonymize(settings.secret(), "c-ann")
        log.append("render", campaign="spring", entries=[(subject, {"key": video})])

    result = CliRunner().invoke(app, ["forget", "c-ann", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "1 video(s) deleted" in " ".join(result.output.split()), result.output
    assert not store.has(video)
    assert not store.has(named, PIECE_MARKER) and not (ws / "renders" / named[:2] / named).exists()
    assert store.has(product, PIECE_MARKER) and (ws / "renders" / product[:2] / product).exists()
