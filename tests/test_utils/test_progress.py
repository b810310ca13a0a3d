"""Progress: a bar only on a terminal for work that takes more than a moment."""
import io

import mmmim.utils.progress as progress
from mmmim.utils import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream, steps=300):
    with Progress(steps, 'reading x.pth', 'MiB', file=stream) as p:
        for _ in range(steps):
            p.update()
    return stream.getvalue()


def test_pipe_gets_a_start_and_an_end_line_only(monkeypatch):
    monkeypatch.setattr(progress, 'BAR_DELAY', 0.0)  # even for long work
    monkeypatch.setattr(progress, 'BAR_REFRESH', 0.0)
    out = run(io.StringIO())
    assert '\r' not in out
    start, end = out.splitlines()
    assert start == 'reading x.pth (300 MiB)'
    assert end.startswith('reading x.pth: 300/300 MiB in ') and end.endswith(' s')


def test_terminal_shows_a_bar_for_long_work(monkeypatch):
    monkeypatch.setattr(progress, 'BAR_DELAY', 0.0)
    monkeypatch.setattr(progress, 'BAR_REFRESH', 0.0)
    out = run(Terminal())
    assert out.count('\r') == 300 + 1  # a frame per update, then the end line over the bar
    assert '[' + '>' * progress.BAR_WIDTH + '] 300/300 MiB' in out
    lines = out.split('\n')
    assert lines[0] == 'reading x.pth (300 MiB)'
    assert lines[1].rsplit('\r', 1)[-1].startswith('reading x.pth: 300/300 MiB in ')


def test_terminal_stays_quiet_for_quick_work():
    out = run(Terminal())  # well under BAR_DELAY
    assert '\r' not in out and len(out.splitlines()) == 2


def test_unknown_total():
    out = io.StringIO()
    with Progress(None, 'downloading u', 'MiB', file=out) as p:
        p.update(3)
    assert out.getvalue().splitlines()[0] == 'downloading u (? MiB)'
    assert out.getvalue().splitlines()[1].startswith('downloading u: 3 MiB in ')
