"""Accelerator detection without JAX (:mod:`bench.hardware`): fake device trees, a fake
``nvidia-smi`` (as a function and as a program on disk), the choice of JAX's install extra and
what is said when the installed JAX cannot use the hardware."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import hardware

SMI_HEADER = "| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: {cuda} |\n"


def fake_smi(cuda: str = "13.0", gpus: int = 2, fails: bool = False):
    """``run`` answering like ``nvidia-smi`` on a machine with ``gpus`` H200s."""

    def run(argv, **kwargs):
        if fails:
            return subprocess.CompletedProcess(argv, 9, "", "NVIDIA-SMI has failed\n")
        if any(a.startswith("--query-gpu") for a in argv):
            out = "".join("NVIDIA H200, 580.65.06\n" for _ in range(gpus))
        else:
            out = SMI_HEADER.format(cuda=cuda)
        return subprocess.CompletedProcess(argv, 0, out, "")

    return run


def smi_on_path(name: str) -> str | None:
    return "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None


def nothing_on_path(name: str) -> None:
    return None


def tpu_tree(root: Path, device: str = "0x0063", chips: int = 4) -> Path:
    for i in range(chips):
        d = root / f"sys/bus/pci/devices/0000:00:0{i + 4}.0"
        d.mkdir(parents=True)
        (d / "vendor").write_text("0x1ae0\n")
        (d / "device").write_text(f"{device}\n")
    other = root / "sys/bus/pci/devices/0000:00:01.0"
    other.mkdir(parents=True)
    (other / "vendor").write_text("0x8086\n")
    (other / "device").write_text("0x7000\n")
    return root


def test_a_machine_without_accelerators_gets_the_cpu_build(tmp_path):
    seen = hardware.detect(tmp_path, nothing_on_path)
    assert seen == hardware.Hardware()
    assert seen.backend is None
    choice = hardware.choose(seen, {})
    assert (choice.accelerator, choice.extra, choice.backend) == ("cpu", None, "cpu")
    assert hardware.install_command(choice) == "pip install -e ."
    assert hardware.missing_backend(seen, {"cpu": {}}) is None


@pytest.mark.parametrize(
    ("cuda", "extra"), [("13.0", "cuda13"), ("13.2", "cuda13"), ("12.4", "cuda12")]
)
def test_the_drivers_cuda_version_chooses_the_cuda_extra(tmp_path, cuda, extra):
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi(cuda))
    assert seen.backend == "gpu"
    assert seen.nvidia.names == ("NVIDIA H200", "NVIDIA H200")
    assert (seen.nvidia.driver, seen.nvidia.cuda) == ("580.65.06", cuda)
    choice = hardware.choose(seen, {})
    assert choice.accelerator == extra
    assert f"CUDA {cuda}" in choice.reason
    assert hardware.install_command(choice) == f"pip install -e '.[{extra}]'"


def test_a_driver_older_than_any_cuda_build_of_jax_is_an_error_that_says_what_to_do(tmp_path):
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi("11.8"))
    with pytest.raises(hardware.HardwareError, match=r"update the NVIDIA driver.*=cpu"):
        hardware.choose(seen, {})


def test_device_files_without_nvidia_smi_are_a_gpu_of_unknown_cuda(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/nvidiactl").touch()
    seen = hardware.detect(tmp_path, nothing_on_path)
    assert seen.backend == "gpu"
    assert seen.nvidia.evidence == ("/dev/nvidiactl",)
    choice = hardware.choose(seen, {})
    assert choice.accelerator == "cuda12"
    assert "unknown" in choice.reason and "nvidia-smi is not on PATH" in choice.reason


def test_nvidia_smi_that_fails_without_a_device_is_no_gpu(tmp_path):
    assert hardware.detect(tmp_path, smi_on_path, fake_smi(fails=True)).nvidia is None
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/nvidia0").touch()
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi(fails=True))
    assert seen.nvidia.smi_error == "NVIDIA-SMI has failed"
    assert hardware.choose(seen, {}).accelerator == "cuda12"


def test_tpu_chips_are_found_on_the_pci_bus(tmp_path):
    seen = hardware.detect(tpu_tree(tmp_path), nothing_on_path)
    assert seen.tpu == hardware.Tpu(chips=4, generation="v5e")
    assert seen.backend == "tpu"
    assert hardware.choose(seen, {}).accelerator == "tpu"
    assert "4 TPU v5e chip(s)" in seen.describe()


def test_a_google_pci_device_that_is_no_tpu_is_not_one(tmp_path):
    seen = hardware.detect(tpu_tree(tmp_path, device="0x0001"), nothing_on_path)
    assert seen.tpu is None and seen.backend is None


def test_the_override_wins_and_says_what_was_seen(tmp_path):
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi("13.0"))
    choice = hardware.choose(seen, {"BENCH_ACCELERATOR": "cpu"})
    assert (choice.accelerator, choice.overridden) == ("cpu", True)
    assert "NVIDIA H200" in choice.reason
    assert hardware.choose(hardware.Hardware(), {"BENCH_ACCELERATOR": "cuda12"}).extra == "cuda12"
    with pytest.raises(hardware.HardwareError, match="cpu, cuda12, cuda13, tpu"):
        hardware.choose(seen, {"BENCH_ACCELERATOR": "rocm"})


def test_missing_backend_names_the_install_command(tmp_path):
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi("13.0"))
    problem, fix = hardware.missing_backend(seen, {"cpu": {}})
    assert "no gpu backend" in problem and "only cpu" in problem
    assert fix.startswith("pip install -e '.[cuda13]'") and "--backends cpu" in fix
    assert hardware.missing_backend(seen, {"cpu": {}, "gpu": {}}) is None
    tpu = hardware.detect(tpu_tree(tmp_path / "t"), nothing_on_path)
    assert hardware.missing_backend(tpu, {"cpu": {}})[1].startswith("pip install -e '.[tpu]'")


def test_a_real_nvidia_smi_program_on_path_is_read(tmp_path):
    """The parsing against a program answering as NVIDIA's does, run as a subprocess."""
    smi = tmp_path / "bin/nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  --query-gpu=name,driver_version) echo "NVIDIA A100-SXM4-80GB, 535.104.05";;\n'
        f"  *) echo '{SMI_HEADER.format(cuda='12.2').strip()}';;\n"
        "esac\n"
    )
    smi.chmod(0o755)
    seen = hardware.detect(tmp_path, lambda name: str(smi) if name == "nvidia-smi" else None)
    assert seen.nvidia.names == ("NVIDIA A100-SXM4-80GB",)
    assert hardware.choose(seen, {}).accelerator == "cuda12"


def test_jaxs_fallback_warning_is_picked_out_of_a_log():
    log = (
        "I0000 some info\n"
        "WARNING:2026-11-30 jax._src.xla_bridge:876: An NVIDIA GPU may be present on this "
        "machine, but a CUDA-enabled jaxlib is not installed. Falling back to cpu.\n"
        "ready\n"
    )
    (line,) = hardware.fallback_lines(log)
    assert "Falling back to cpu" in line


def test_the_peers_install_command_depends_on_the_gpu(tmp_path):
    gpu = hardware.detect(tmp_path, smi_on_path, fake_smi())
    assert "CUDA build" in hardware.peers_install_command(gpu)
    assert "BENCH_TORCH_INDEX" in hardware.peers_install_command(hardware.Hardware())


def test_an_installed_plugin_that_did_not_start_is_not_told_to_install_itself(tmp_path):
    seen = hardware.detect(tmp_path, smi_on_path, fake_smi("13.0"))
    problem, fix = hardware.missing_backend(
        seen, {"cpu": {}}, {"jax-cuda13-plugin": "0.10.2", "jaxlib": "0.10.2"}
    )
    assert "jax-cuda13-plugin 0.10.2 is installed, but its gpu backend did not start" in problem
    assert "pip install" not in fix and "read what JAX said" in fix
