"""Progress off a terminal (issue 18, item 3): plain lines now and then instead of a
bar nobody sees, nothing for quick work, nothing with progress=False."""

from __future__ import annotations

import io
import itertools

import pytest

import alsprog._progress as progress
from alsprog._progress import LineProgress, progress_bar


def _clock(step: float):
    ticks = itertools.count(0.0, step)
    return lambda: next(ticks)


def test_lines_every_tenth_at_most_every_five_seconds():
    out = io.StringIO()
    bar = LineProgress(total=100, desc="permutations", unit="permutation",
                       clock=_clock(1.0), stream=out)  # fmt: skip
    for _ in range(100):  # one step per second
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    # silent for 5 s, then at 10 %, 20 %, ... (each >= 5 s apart), then the end
    assert lines[0] == "permutations: 10/100 permutations (10%), 10 s, about 90 s left"
    assert lines[1] == "permutations: 20/100 permutations (20%), 20 s, about 80 s left"
    assert len(lines) == 10  # 10 % ... 90 % and the closing line
    assert lines[-1] == "permutations: 100/100 permutations done in 2 min"


def test_quick_work_prints_nothing():
    out = io.StringIO()
    with LineProgress(total=3, desc="images", clock=_clock(1.0), stream=out) as bar:
        for _ in range(3):
            bar.update(1)
    assert out.getvalue() == ""


def test_silent_stretches_get_a_line_every_30_seconds():
    out = io.StringIO()
    bar = LineProgress(total=1000, desc="x", unit="chunk", clock=_clock(31.0),
                       stream=out)  # fmt: skip
    bar.update(1)  # 0.1 %, but 31 s of silence
    assert out.getvalue() == "x: 1/1000 chunks (0%), 31 s, about 8.6 h left\n"


def test_iterable_without_total():
    out = io.StringIO()
    # without a total: a line at most every 30 s
    items = list(LineProgress(iter(range(3)), desc="y", unit="image",
                              clock=_clock(31.0), stream=out))  # fmt: skip
    assert items == [0, 1, 2]
    assert out.getvalue().splitlines() == [
        "y: 1 image, 31 s", "y: 2 images, 62 s", "y: 3 images, 93 s",
        "y: 3 images done in 2 min",
    ]  # fmt: skip


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("flag", "tty", "lines", "disabled"),
    [
        (None, False, True, None),  # not a terminal: plain lines
        (None, True, False, False),  # a terminal: tqdm's bar
        (True, False, False, False),  # always a bar
        (False, False, False, True),  # never anything
        (False, True, False, True),
    ],
)
def test_progress_bar_follows_the_flag(monkeypatch, flag, tty, lines, disabled):
    monkeypatch.setattr("sys.stderr", _Tty() if tty else io.StringIO())
    bar = progress_bar(range(2), progress=flag, desc="d")
    assert isinstance(bar, LineProgress) is lines
    if not lines:
        assert bool(bar.disable) is disabled
    assert list(bar) == [0, 1]


def test_none_off_a_terminal_writes_lines_to_stderr(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(progress, "_clock", _clock(6.0))
    with progress_bar(total=4, desc="NIfTI maps", unit="image") as bar:
        for _ in range(4):
            bar.update(1)
    assert err.getvalue().splitlines()[-1] == "NIfTI maps: 4/4 images done in 30 s"
