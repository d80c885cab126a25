"""SIGTERM and SIGHUP handled as Ctrl-C: a command that is told to stop (by a job scheduler, a
closed terminal, ``kill``) ends its workers, records what it measured and says how to resume,
exactly as after Ctrl-C, and exits 130 as after Ctrl-C (which signal it was is said)."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

#: the signals that stop a run as Ctrl-C does
STOPPING = (signal.SIGTERM, signal.SIGHUP)


class Caught:
    """Which stopping signal arrived, if any."""

    signum: int | None = None

    def exit_code(self, code: int) -> int:
        """``code`` (130 when interrupted), after saying which signal stopped the command."""
        if self.signum is not None:
            print(f"stopped by {signal.Signals(self.signum).name}", file=sys.stderr)
        return code


@contextlib.contextmanager
def as_interrupt(signals: tuple[int, ...] = STOPPING) -> Iterator[Caught]:
    """Within the block, each of ``signals`` raises KeyboardInterrupt (in the main thread)."""
    caught = Caught()

    def handler(signum: int, frame: FrameType | None) -> None:
        caught.signum = signum
        raise KeyboardInterrupt

    previous = {}
    for s in signals:
        with contextlib.suppress(ValueError):  # not the main thread: leave it as it is
            previous[s] = signal.signal(s, handler)
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
