"""The canary's checks, with a fake workload and a fake clock: what each check reports and how
long it takes, in quiet times, in a slow spell and right after the worker's own threads were busy."""

import pytest

from bench.measure import canary as C


class Machine:
    """A fake clock whose workload takes ``speed()`` seconds per run."""

    def __init__(self, speed):
        self.now = 0.0
        self.runs = 0
        self.speed = speed

    def run(self):
        self.now += self.speed(self.now)
        self.runs += 1

    def clock(self):
        return self.now


def test_the_first_best_is_the_quickest_window_of_a_full_check():
    # slow for the first 0.1 s (start-up), then 1 ms a run
    m = Machine(lambda t: 0.003 if t < 0.1 else 0.001)
    canary = C.Canary(run=m.run, clock=m.clock)
    assert canary.best == pytest.approx(0.001)
    assert m.now >= C.SETTLE_S  # it did not stop early


def test_a_quiet_check_is_one_window_at_ratio_one():
    m = Machine(lambda t: 0.001)
    canary = C.Canary(run=m.run, clock=m.clock)
    runs = m.runs
    assert canary.ratio() == pytest.approx(1.0)
    assert m.runs - runs == C.WINDOW_RUNS


def test_a_slow_spell_lasts_the_whole_check_and_is_reported():
    spell = [False]
    m = Machine(lambda t: 0.002 if spell[0] else 0.001)
    canary = C.Canary(run=m.run, clock=m.clock)
    spell[0] = True
    t0 = m.now
    assert canary.ratio() == pytest.approx(2.0)
    assert m.now - t0 >= C.SETTLE_S
    spell[0] = False
    assert canary.ratio() == pytest.approx(1.0)  # the best was not raised by the spell


def test_the_workers_own_spinning_threads_are_waited_out_not_reported():
    """After a configuration the worker's libraries keep their threads spinning for a while:
    the canary runs slow for ~0.1 s, then as usual; the check waits for that."""
    busy_until = [0.0]
    m = Machine(lambda t: 0.0018 if t < busy_until[0] else 0.001)
    canary = C.Canary(run=m.run, clock=m.clock)
    busy_until[0] = m.now + 0.1
    t0 = m.now
    assert canary.ratio() == pytest.approx(1.0)
    assert 0.1 <= m.now - t0 < C.SETTLE_S


def test_a_quicker_check_is_the_new_best():
    speed = [0.001]
    m = Machine(lambda t: speed[0])
    canary = C.Canary(run=m.run, clock=m.clock)
    speed[0] = 0.0008
    assert canary.ratio() == pytest.approx(1.0)
    assert canary.best == pytest.approx(0.0008)
    speed[0] = 0.0012
    assert canary.ratio() == pytest.approx(1.5)
