"""Property: for any text, fit_text's lines fit the box, or it says it had to cut."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from creative.textfit import ELLIPSIS, fit_text, load_font

FONT = Path(__file__).resolve().parents[2] / "assets" / "fonts" / "DejaVuSansCondensed-Bold.ttf"

BOXES = st.tuples(
    st.integers(min_value=120, max_value=900),  # width
    st.integers(min_value=60, max_value=400),  # height
    st.integers(min_value=1, max_value=4),  # max_lines
)


@settings(max_examples=120, deadline=None)
@given(text=st.text(max_size=160), box=BOXES, sizes=st.sampled_from([(51, 32), (40, 18), (24, 12)]))
def test_fitted_lines_always_fit_the_box_or_the_text_is_cut_with_an_ellipsis(
    text: str, box: tuple[int, int, int], sizes: tuple[int, int]
) -> None:
    width, height, max_lines = box
    max_size, min_size = sizes
    fitted = fit_text(
        text, FONT, width, height, max_lines=max_lines, max_size=max_size, min_size=min_size
    )
    font = load_font(FONT, fitted.size)
    assert min_size <= fitted.size <= max_size
    assert len(fitted.lines) <= max_lines
    assert all(font.getlength(line) <= width for line in fitted.lines), fitted
    if fitted.truncated:
        assert fitted.lines[-1].endswith(ELLIPSIS)  # it says it could not fit all
    else:
        assert fitted.height <= height
        # Nothing is lost when it fits: the words are all there, in order.
        assert "".join("".join(fitted.lines).split()) == "".join(text.split())
