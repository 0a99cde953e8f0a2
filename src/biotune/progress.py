"""How a long step shows it is alive: a bar with the count done, the rate and the time left where progress is
shown, else (`--no-progress`, a log file) a plain line to stderr at most once a minute. Training, dev scoring and
test prediction all report through it."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

PLAIN_EVERY_S = 60.0  # seconds between two plain lines


def duration(seconds: float) -> str:
    """A time left in words: 45 s, 7 min, 2.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class Progress:
    """`with Progress(total, desc, unit, shown) as p: ... p.update(n)`."""

    def __init__(self, total: int, desc: str, unit: str = "ex", shown: bool = True):
        self.total, self.desc, self.unit, self.shown = total, desc, unit, shown
        self.done = 0
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False) if shown else None
        self.began = self.said = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.said >= PLAIN_EVERY_S and self.done < self.total:
            self.said = now
            print(
                plain_line(self.desc, self.done, self.total, self.unit, now - self.began), file=sys.stderr, flush=True
            )


def plain_line(desc: str, done: int, total: int, unit: str, elapsed: float) -> str:
    """`test: 120/940 ex (13 %), 1.90 ex/s, about 7 min left`."""
    rate = done / elapsed if elapsed > 0 else 0.0
    left = f", about {duration((total - done) / rate)} left" if rate > 0 else ""
    return f"{desc}: {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f} %), {rate:.2f} {unit}/s{left}"
