"""How busy other processes keep the CPUs: a measurement taken while other jobs ran is slower
than the code it measures, so an A/B redoes it (Linux ``/proc``; nothing elsewhere)."""

from __future__ import annotations

import os
import time

Ticks = tuple[float, int, int]


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux ``/proc/PID/task/*/children``): a
    worker's own helpers, e.g. the compile workers of ``torch.compile``, are not other jobs."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def cpu_ticks(pids: list[int]) -> Ticks | None:
    """(now, busy ticks of all CPUs, ticks of ``pids`` and their descendants) from Linux
    ``/proc``; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    ours = 0
    for pid in dict.fromkeys(pids + [d for p in pids for d in descendants(p)]):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime + stime of all its threads, and of its children that ended
            ours += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            if pid in pids:
                return None
    return time.monotonic(), v[0] + v[1] + v[2] + v[5] + v[6] + v[7], ours


def foreign_load(before: Ticks | None, pids: list[int]) -> float | None:
    """Share of all CPUs that processes other than ``pids`` used since ``before``: another job
    (a test suite, a build, an other side's worker that does not sit idle) slows us that much."""
    after = cpu_ticks(pids)
    if before is None or after is None:
        return None
    capacity = (after[0] - before[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    foreign = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, foreign / capacity) if capacity > 0 else None
