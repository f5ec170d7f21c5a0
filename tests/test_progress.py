"""Progress display: a bar on terminals, plain lines elsewhere."""

from __future__ import annotations

import io

import pytest

from keras_transfer.progress import Progress, track


def test_plain_lines_when_not_a_tty():
    out = io.StringIO()
    assert list(track(range(3), "trials", stream=out)) == [0, 1, 2]
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[-1].startswith("trials 3/3 (100%)")


def test_min_interval_throttles_but_keeps_last_line():
    out = io.StringIO()
    with Progress(50, "export", stream=out, min_interval=3600) as bar:
        for _ in range(50):
            bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("export 50/50")


def test_tty_draws_a_bar_in_place():
    out = io.StringIO()
    with Progress(4, "prep", stream=out, tty=True, width=8) as bar:
        bar.update(2, note="half")
        bar.write("a message")
    text = out.getvalue()
    assert "\r" in text and "[####....] 2/4" in text and "half" in text
    assert "a message\n" in text and text.endswith("\n")


def test_unknown_total_and_bad_total():
    out = io.StringIO()
    Progress(None, "scan", stream=out).update(note="x")
    assert out.getvalue().startswith("scan 1 ")
    with pytest.raises(ValueError, match="total"):
        Progress(-1)
