"""SIGTERM and SIGHUP handled as Ctrl-C: a command that is told to stop (by a job scheduler, a
closed terminal, ``kill``) ends its workers, records what it measured and says how to resume,
exactly as after Ctrl-C; its exit code is still the signal's (128 + its number)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

#: the signals that stop a run as Ctrl-C does
STOPPING = (signal.SIGTERM, signal.SIGHUP)


class Caught:
    """Which stopping signal arrived, if any."""

    signum: int | None = None

    def exit_code(self, code: int) -> int:
        """``code``, or 128 + the signal's number when a signal interrupted the command."""
        return 128 + self.signum if self.signum is not None and code == 130 else code


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
