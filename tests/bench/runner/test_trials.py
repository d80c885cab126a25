"""The trials of `bench validate`: what they measure."""

from __future__ import annotations

from bench.runner import trials


def test_config_sets_plan_jit_update_specs() -> None:
    info = {"device_kind": "cpu", "device_count": 1}
    for name, configs in trials.CONFIG_SETS.items():
        specs = trials.specs_for(name, "cpu", info)
        assert len(specs) == len(configs)
        assert {(s["variant"], s["kernel"]) for s in specs} == {("jit", "update")}
    scaled = trials.with_work_scale(1.2)(specs[0])
    assert scaled["work_scale"] == 1.2 and "work_scale" not in specs[0]
