"""The doctor's findings (:mod:`bench.runner.doctor`) from fake hardware and fake probes: each
problem with the command that fixes it, errors apart from notices."""

from __future__ import annotations

from bench import hardware
from bench.runner import doctor

GPU = hardware.Hardware(
    nvidia=hardware.Nvidia(("/dev/nvidiactl",), ("NVIDIA H200",), "580.65.06", "13.0")
)
CPU_ONLY = hardware.Hardware()


def probe(backends=("cpu",), jax="0.12.0.1", packages=None, torch="cpu", asked=("cpu", "gpu")):
    infos = {b: {"device_kind": b, "device_count": 1, "platform_version": b} for b in backends}
    for b in asked:
        infos.setdefault(b, {"error": f"Unknown backend: '{b}'"})
    torch_info = (
        None
        if torch is None
        else {
            "version": "2.13.0+cpu" if torch == "cpu" else "2.13.0",
            "build": torch,
            "cuda": None if torch == "cpu" else "13.0",
            "cuda_available": torch == "cuda",
        }
    )
    return {
        "backends": infos,
        "python": "3.13.0",
        "jax": jax,
        "jaxlib": jax,
        "software": {
            "packages": {"jax": jax, "jaxlib": jax, **(packages or {})},
            "torch": torch_info,
        },
    }


def severities(d):
    return [(p["severity"], p["problem"].split(":")[0]) for p in d["problems"]]


def test_a_cpu_machine_with_everything_is_fine():
    d = doctor.diagnose(CPU_ONLY, probe(), environ={})
    assert d["problems"] == []
    assert not doctor.failed(d)
    assert d["accelerator"]["choice"] == "cpu"
    assert "ok: nothing missing" in doctor.render(d)


def test_a_gpu_that_jax_cannot_use_is_an_error_with_the_install_command():
    d = doctor.diagnose(
        GPU, probe(torch="cuda"), jax_said=["WARNING: Falling back to cpu."], environ={}
    )
    assert doctor.failed(d)
    (p,) = d["problems"]
    assert "no gpu backend" in p["problem"]
    assert p["fix"].startswith("pip install -e '.[cuda13]'")
    text = doctor.render(d)
    assert "fix: pip install -e '.[cuda13]'" in text
    assert "JAX said:    WARNING: Falling back to cpu." in text


def test_a_gpu_backend_not_probed_is_not_called_missing():
    d = doctor.diagnose(GPU, probe(torch="cuda", asked=("cpu",)), environ={})
    assert d["problems"] == []


def test_a_gpu_jax_can_use_with_a_cpu_build_of_pytorch():
    d = doctor.diagnose(GPU, probe(backends=("cpu", "gpu"), torch="cpu"), environ={})
    (p,) = d["problems"]
    assert p["severity"] == doctor.ERROR and "CPU build" in p["problem"]
    assert "torch==2.13.0" in p["fix"]


def test_missing_pytorch_is_a_notice_with_the_build_for_the_machine():
    d = doctor.diagnose(CPU_ONLY, probe(torch=None), environ={})
    (p,) = d["problems"]
    assert p["severity"] == doctor.NOTICE and not doctor.failed(d)
    assert "BENCH_TORCH_INDEX" in p["fix"]
    gpu = doctor.diagnose(GPU, probe(backends=("cpu", "gpu"), torch=None), environ={})
    assert "CUDA build" in gpu["problems"][0]["fix"]


def test_a_plugin_of_another_jaxlib_version_is_an_error():
    packages = {"jax-cuda13-plugin": "0.11.0", "jax-cuda13-pjrt": "0.12.0.1"}
    d = doctor.diagnose(
        GPU, probe(backends=("cpu", "gpu"), torch="cuda", packages=packages), environ={}
    )
    assert severities(d) == [("error", "jax-cuda13-plugin 0.11.0 does not match jaxlib 0.12.0.1")]
    assert d["problems"][0]["fix"] == "pip install -U -e '.[cuda13]'"
    assert d["versions"]["jax-cuda13-plugin"] == "0.11.0"


def test_a_plugin_without_its_hardware_is_a_notice():
    d = doctor.diagnose(CPU_ONLY, probe(packages={"jax-cuda12-plugin": "0.12.0.1"}), environ={})
    assert severities(d) == [("notice", "jax-cuda12-plugin is installed but no NVIDIA GPU is seen")]


def test_an_unsupported_jax_is_an_error():
    d = doctor.diagnose(CPU_ONLY, probe(jax="0.9.2"), environ={})
    assert severities(d) == [("error", "JAX 0.9.2 is outside the supported 0.10-0.12")]
    assert doctor.diagnose(CPU_ONLY, probe(jax="0.13.0"), environ={})["problems"]
    assert not doctor.diagnose(CPU_ONLY, probe(jax="0.10.2"), environ={})["problems"]


def test_a_bad_override_is_an_error():
    d = doctor.diagnose(CPU_ONLY, probe(), environ={"BENCH_ACCELERATOR": "cuda11"})
    assert doctor.failed(d) and d["accelerator"] is None


def test_measuring_the_cpu_on_purpose_wants_pytorchs_cpu_build():
    d = doctor.diagnose(
        GPU, probe(torch="cpu", asked=("cpu",)), environ={"BENCH_ACCELERATOR": "cpu"}
    )
    assert d["problems"] == [] and d["accelerator"]["choice"] == "cpu"
