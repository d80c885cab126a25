"""Other jobs' load (Linux ``/proc``): what a worker and the processes it started use is ours."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.runner import load

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc only")

SPIN = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 3.0: pass\n"
# a parent that starts a spinning child and waits for it, as torch.compile's workers do
PARENT = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {SPIN!r}])\n"


def test_a_workers_children_are_its_own_load_not_other_jobs():
    """A process that started a spinning child: to it, that CPU use is its own; to a process
    beside it, another job's."""
    family = subprocess.Popen([sys.executable, "-c", PARENT])
    beside = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        time.sleep(0.6)  # the child is spinning by now
        assert load.descendants(family.pid), "the spinning child is found"
        before = load.cpu_ticks([family.pid])
        time.sleep(0.5)
        ours = load.foreign_load(before, [family.pid])
        before = load.cpu_ticks([beside.pid])
        time.sleep(0.5)
        theirs = load.foreign_load(before, [beside.pid])
    finally:
        family.wait(timeout=10)
        beside.kill()
    assert ours is not None and theirs is not None
    cpus = os.cpu_count() or 1
    assert theirs > 0.35 / cpus  # the child keeps one CPU busy
    assert theirs - ours > 0.25 / cpus  # what the child used (other jobs may add to both)
