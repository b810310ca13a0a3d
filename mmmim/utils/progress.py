"""The one progress display of mmmim: a bar on a terminal for long work, two lines elsewhere."""
import sys
import time
from typing import Optional, TextIO

# A bar appears once the work has run this long (s) and is redrawn at most this often (s).
BAR_DELAY = 1.0
BAR_REFRESH = 0.2
BAR_WIDTH = 30


class Progress:
    """Progress of ``total`` units of work, e.g. MiB read or images embedded.

    A line is printed at the start and one at the end. In between, only on a
    terminal and only once the work has run past ``BAR_DELAY`` seconds, a bar
    is redrawn in place (at most every ``BAR_REFRESH`` s); in a pipe or a log
    file nothing else is printed.

    Args:
        total: Units of work to do; None where unknown.
        desc: What is done, e.g. ``'reading mae.pth'``.
        unit: Name of the unit, e.g. ``'MiB'``.
        file: Output stream; ``sys.stdout`` by default.
    """

    def __init__(self, total: Optional[int], desc: str, unit: str,
                 file: Optional[TextIO] = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.file = file or sys.stdout
        self.done = 0
        self._tty = getattr(self.file, 'isatty', lambda: False)()
        self._start = self._drawn_at = time.monotonic()
        self._bar_len = 0  # characters of the bar on screen, 0: none drawn
        self._write(f'{desc} ({"?" if total is None else total} {unit})\n')

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self._tty:
            return
        now = time.monotonic()
        if now - self._start >= BAR_DELAY and now - self._drawn_at >= BAR_REFRESH:
            self._drawn_at = now
            self._draw(now - self._start)

    def close(self) -> None:
        elapsed = time.monotonic() - self._start
        end = f'{self.desc}: {self._count()} in {elapsed:.1f} s'
        self._write(('\r' + end.ljust(self._bar_len) if self._bar_len else end) + '\n')
        self._bar_len = 0

    def __enter__(self) -> 'Progress':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _count(self) -> str:
        return f'{self.done}{"" if self.total is None else f"/{self.total}"} {self.unit}'

    def _draw(self, elapsed: float) -> None:
        bar = f'{self._count()}, elapsed {elapsed:.0f} s'
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(BAR_WIDTH * frac)
            eta = elapsed * (1 - frac) / frac if frac else float('nan')
            bar = f'[{">" * filled}{" " * (BAR_WIDTH - filled)}] {bar}, ETA {eta:.0f} s'
        self._write('\r' + bar.ljust(self._bar_len))
        self._bar_len = len(bar)

    def _write(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()
