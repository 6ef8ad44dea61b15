"""What a long command shows and how it stops: progress on stderr, SIGTERM as Ctrl-C.

Shared by `probe run` and `probe demo`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probe.runner import RunSummary


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or `kill`) stops the run like Ctrl-C: in-flight requests are
    abandoned, everything received is already stored, and the run row gets its end time."""

    def interrupt(signum: int, frame: Any) -> None:
        # As SIGINT, so asyncio's own handler cancels the sweep cleanly when one is running.
        # A process started in the background by a non-interactive shell ignores SIGINT; then
        # interrupt directly, or SIGTERM would be lost too.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProgressBar:
    """done / blocked / errors: a live bar on a terminal, a plain line every 5% otherwise (so
    logs and CI output show progress too)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._total = total
        self._live = sys.stderr.isatty()
        self._bar = tqdm(
            total=total, unit="job", file=sys.stderr, dynamic_ncols=True, disable=not self._live
        )
        self._started = False
        self._done = 0
        self._step = max(1, total // 20)

    def update(self, summary: RunSummary) -> None:
        if not self._started:
            self._bar.update(summary.already_done)
            self._done = summary.already_done
            self._started = True
        self._bar.update(1)
        self._done += 1
        self._bar.set_postfix(
            ok=summary.ok, blocked=summary.blocked, errors=summary.errors, refresh=False
        )
        if not self._live and (self._done % self._step == 0 or self._done == self._total):
            print(
                f"  {self._done}/{self._total} done ({summary.ok} ok, {summary.blocked} blocked, "
                f"{summary.errors} errors)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        self._bar.close()
