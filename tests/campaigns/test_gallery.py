"""The approval gallery: a page of sample creatives by pseudonym, saying what to do next."""

from __future__ import annotations

from pathlib import Path


def test_the_gallery_asks_for_approval_only_when_the_run_waits(tmp_path: Path) -> None:
    from campaigns.gallery import GalleryItem, write_gallery

    renders = tmp_path / "renders" / "ab"
    renders.mkdir(parents=True)
    for name in ("video.mp4", "poster.jpg"):
        (renders / name).write_bytes(b"x")
    item = GalleryItem(
        "cu_123", ("P1", "<P2>"), renders / "video.mp4", renders / "poster.jpg", None, "ok"
    )
    common = {"items": [item], "stages": {"selected": 1}, "excluded": {"suppressed": 2}}

    waiting = write_gallery(tmp_path / "g" / "a.html", campaign="spring", **common).read_text()
    auto = write_gallery(
        tmp_path / "g" / "b.html", campaign="spring", asks_approval=False, **common
    ).read_text()

    assert "Approve or reject the run" in waiting and "did not wait" not in waiting
    assert "Approve or reject" not in auto and "did not wait for approval" in auto
    assert "cu_123" in auto and "&lt;P2&gt;" in auto and "<P2>" not in auto
    assert 'src="../renders/ab/video.mp4"' in auto  # relative: the folder can be copied
