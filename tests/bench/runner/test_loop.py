"""The orchestration loop with a fake measurer (no processes, no clock): passes, interleaving,
what is recorded where, redoing measurements under other jobs' load, an interrupt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import selection
from bench.results.rundir import RunDir
from bench.runner.loop import Arm, RetryPolicy, Runner


def specs(batches=(32, 64, 128), devices=(1,)) -> list[dict[str, Any]]:
    grid = selection.Grid(
        "t", ("jit", "sharded"), ("update",), ((784, 10),), tuple(batches), devices=tuple(devices)
    )
    backends = {"cpu": {"device_kind": "cpu", "device_count": 4}}
    return selection.expand([grid], backends=backends)[0]


class FakeMeasurer:
    """Rows whose median is ``time(arm, spec, call)``; ``load`` gives the foreign load of a
    call; ``stop_after`` raises KeyboardInterrupt at that call."""

    def __init__(self, time=None, load=None, stop_after: int | None = None) -> None:
        self.time = time or (lambda arm, spec, call: 1e-3)
        self.load = load
        self.stop_after = stop_after
        self.calls: list[tuple[str, str, str]] = []  # (event, arm, config or group)

    def start(self, arm: Arm, backend: str, n: int) -> None:
        self.calls.append(("start", arm.name, f"{backend}:{n}"))

    def prepare(self, arm: Arm) -> None:
        pass

    def stop(self, arm: Arm, kill: bool = False) -> None:
        self.calls.append(("kill" if kill else "stop", arm.name, ""))

    def measure(self, arm: Arm, spec: dict[str, Any]) -> dict[str, Any]:
        n = sum(1 for c in self.calls if c[0] == "measure")
        if self.stop_after is not None and n == self.stop_after:
            raise KeyboardInterrupt
        self.calls.append(("measure", arm.name, spec["config_id"]))
        t = self.time(arm, spec, n)
        row = {
            "variant": spec["variant"],
            "kernel": spec["kernel"],
            "layer_sizes": "784,10",
            "batch_size": spec["batch_size"],
            "dtype": "float32",
            "backend": "cpu",
            "n_devices": spec["n_devices"],
            "status": "ok",
            "step_median_s": t,
            "samples_s": [t] * 5,
            "sync_samples_s": [t] * 3,
            "loops_per_sample": 1,
        }
        if self.load is not None:
            row["foreign_load"] = self.load(arm, spec, n)
        return row


def test_one_arm_in_passes_records_pooled_rows_and_every_pass(tmp_path):
    plan = specs()
    arm = Arm("", RunDir(tmp_path).create(), "run-1")
    slow_pass = {1}  # the second pass of every spec ran slow: not pooled

    def time(arm, spec, call):
        return 2e-3 if (call // len(plan_of_group(spec))) % 3 in slow_pass else 1e-3

    def plan_of_group(spec):
        return [s for s in plan if s["n_devices"] == spec["n_devices"]]

    runner = Runner([arm], FakeMeasurer(time), passes=3)
    runner.run(plan)
    rows = arm.out.rows()
    assert len(rows) == len(plan) and arm.counts["ok"] == len(plan)
    for row in rows:
        assert row["run_id"] == "run-1" and row["schema_version"] == 1
        assert row["repeats"] == 3 and row["passes_kept"] == [0, 2]
        assert row["step_median_s"] == pytest.approx(1e-3)
    passes = [json.loads(ln) for ln in arm.out.repeats.read_text().splitlines()]
    assert len(passes) == 3 * len(plan)
    assert sorted(p["pass"] for p in passes) == sorted([0, 1, 2] * len(plan))
    assert all(p["run_id"] == "run-1" and p["config_id"] for p in passes)


def test_groups_get_fresh_workers_per_pass():
    plan = specs(batches=(32,), devices=(1, 2))
    arm = Arm("", None, "r")
    fake = FakeMeasurer()
    Runner([arm], fake, passes=2).run(plan)
    starts = [c[2] for c in fake.calls if c[0] == "start"]
    assert starts == ["cpu:1", "cpu:1", "cpu:2", "cpu:2"]
    assert [c[0] for c in fake.calls].count("stop") == 4


def test_two_arms_alternate_who_goes_first(tmp_path):
    plan = specs()
    arms = [Arm(n, RunDir(tmp_path / n), f"r-{n}") for n in ("base", "head")]
    fake = FakeMeasurer()
    Runner(arms, fake, passes=2).run(plan)
    order = [(c[1], c[2]) for c in fake.calls if c[0] == "measure"]
    firsts = [order[i][0] for i in range(0, len(order), 2)]
    # per config and per pass, the side going first alternates
    assert firsts[:3] == ["base", "head", "base"] and firsts[3:6] == ["head", "base", "head"]
    for arm in arms:
        for row in arm.out.rows():
            assert len(row["ab_first"].split(",")) == 2
            assert row["ab_first"].split(",")[0] != row["ab_first"].split(",")[1]


def test_measurements_under_load_are_redone_then_kept(tmp_path):
    plan = specs(batches=(32,))
    arms = [Arm(n, None, n) for n in ("a", "b")]
    # the first spec's first two attempts ran beside another job; the rest on a quiet machine
    fake = FakeMeasurer(load=lambda arm, spec, call: 0.5 if call < 4 else 0.0)
    runner = Runner(arms, fake, retry=RetryPolicy(0.05, retries=3, backoff_s=0.0))
    runner.run(plan)
    assert runner.redone == 2 and runner.loaded == 0 and runner.pairs == len(plan)
    measures = [c for c in fake.calls if c[0] == "measure"]
    assert len(measures) == 2 * (len(plan) + 2)
    # a machine loaded all along: retries stop being spent after two specs found it so
    fake = FakeMeasurer(load=lambda arm, spec, call: 0.9)
    runner = Runner(arms, fake, retry=RetryPolicy(0.05, retries=3, backoff_s=0.0))
    runner.run(specs(batches=(32, 64, 128)))
    assert runner.loaded == runner.pairs == 6
    assert runner.redone == 2 * 3  # three retries for each of the first two specs only


def test_an_interrupt_keeps_what_was_measured_when_asked(tmp_path):
    plan = specs()
    arms = [Arm(n, RunDir(tmp_path / n).create(), n) for n in ("a", "b")]
    runner = Runner(arms, FakeMeasurer(stop_after=5), keep_partial=True)
    with pytest.raises(KeyboardInterrupt):
        runner.run(plan)
    kept = {arm.name: [r["config_id"] for r in arm.out.rows()] for arm in arms}
    assert kept["a"] == kept["b"] == [s["config_id"] for s in selection.interleaved(plan)[:2]]
    # a sweep (no keep_partial) records only configurations whose passes all ran
    out = RunDir(tmp_path / "sweep").create()
    arm = Arm("", out, "r")
    with pytest.raises(KeyboardInterrupt):
        Runner([arm], FakeMeasurer(stop_after=4), passes=2).run(plan)
    assert out.rows() == []  # the group's second pass never finished
    assert len(out.repeats.read_text().splitlines()) == 4


def test_the_last_pass_of_a_failed_configuration_is_its_row(tmp_path):
    arm = Arm("", RunDir(tmp_path).create(), "r")

    class Failing(FakeMeasurer):
        def measure(self, arm, spec):
            return {**super().measure(arm, spec), "status": "error", "error": "boom"}

    Runner([arm], Failing(), passes=2).run(specs(batches=(32,)))
    assert {r["status"] for r in arm.out.rows()} == {"error"}
    assert arm.counts["error"] == len(arm.out.rows())


def test_a_group_is_measured_cell_by_cell_not_variant_by_variant():
    grid = selection.Grid("t", ("jit", "vmap", "numpy"), ("update",), ((784, 10),), (32, 64))
    plan = selection.expand([grid], backends={"cpu": {"device_kind": "cpu", "device_count": 1}})[0]
    assert [(s["variant"], s["batch_size"]) for s in plan][:2] == [("jit", 32), ("jit", 64)]
    fake = FakeMeasurer()
    Runner([Arm("", None, "r")], fake).run(plan)
    measured = [c[2] for c in fake.calls if c[0] == "measure"]
    by_id = {s["config_id"]: (s["variant"], s["batch_size"]) for s in plan}
    assert [by_id[c] for c in measured] == [
        ("jit", 32),
        ("vmap", 32),
        ("numpy", 32),
        ("jit", 64),
        ("vmap", 64),
        ("numpy", 64),
    ]


def test_a_measurement_taken_in_a_slow_spell_is_redone_or_marked(tmp_path):
    """Contention during one configuration (its worker's canary runs slow): that row is measured
    again; if the spell lasts, it is kept and marked unstable; the others are untouched."""
    plan = specs(batches=(32, 64, 128))
    slow = plan[1]["config_id"]
    spell = {"calls": 0}

    class Contended(FakeMeasurer):
        def measure(self, arm, spec):
            row = super().measure(arm, spec)
            hit = spec["config_id"] == slow and spell["calls"] < spell.get("length", 1)
            spell["calls"] += spec["config_id"] == slow
            return {**row, "canary_ratio": 2.0 if hit else 1.02}

    def run(length):
        spell.update(calls=0, length=length)
        out = RunDir(tmp_path / f"spell-{length}")
        arm = Arm("", out, "r")
        policy = RetryPolicy(max_foreign_load=None, max_canary_ratio=1.25, retries=2, backoff_s=0)
        runner = Runner([arm], Contended(), retry=policy)
        runner.run(plan)
        return runner, {r["config_id"]: r for r in out.rows()}

    runner, got = run(length=1)  # a short spell: redone once, then fine
    assert runner.redone == 1 and spell["calls"] == 2
    assert (got[slow]["load_retries"], got[slow]["unstable"]) == (1, False)
    runner, got = run(length=99)  # it lasts: every retry spent, the row kept and marked
    assert runner.redone == 2 and got[slow]["unstable"] is True and got[slow]["load_retries"] == 2
    for cid, row in got.items():
        if cid != slow:
            assert (row["load_retries"], row["unstable"]) == (0, False)
