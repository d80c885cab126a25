"""What accelerator this machine has, seen without JAX, and which of JAX's install extras it needs.

The signs are JAX's own (``jax._src.hardware_utils``, which decides its "falling back to cpu"
warning): an NVIDIA GPU is ``/dev/nvidia0``, ``/dev/nvidiactl`` (containers) or ``/dev/dxg``
(WSL2), described by ``nvidia-smi`` when it is on ``PATH``; a Cloud TPU is a PCI device of
Google's vendor id with a TPU device id. The driver's CUDA version (``nvidia-smi``'s header)
chooses ``cuda13`` or ``cuda12``. ``BENCH_ACCELERATOR=cpu|cuda12|cuda13|tpu`` overrides.

Standard library only: the nox sessions load this file by path before anything is installed, and
``bench doctor``, ``bench run`` and the metadata use it in the parent process (no JAX).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: the project's install extras for accelerators, spelled as JAX spells its own
ACCELERATORS = ("cpu", "cuda12", "cuda13", "tpu")
#: the environment variable that overrides detection
OVERRIDE_ENV = "BENCH_ACCELERATOR"
#: the JAX backend each accelerator extra gives
BACKEND_OF = {"cpu": "cpu", "cuda12": "gpu", "cuda13": "gpu", "tpu": "tpu"}

NVIDIA_DEVICE_FILES = ("dev/nvidia0", "dev/nvidiactl", "dev/dxg")
GOOGLE_PCI_VENDOR = "0x1ae0"
#: PCI device id -> TPU generation (JAX's table)
TPU_PCI_DEVICES = {
    "0x0027": "v3",
    "0x0056": "plc",
    "0x005e": "v4",
    "0x0062": "v5p",
    "0x0063": "v5e",
    "0x006f": "v6e",
    "0x0076": "tpu7x",
}
#: the oldest driver CUDA version JAX's CUDA wheels run on, by extra
MIN_DRIVER_CUDA = {"cuda12": (12, 1), "cuda13": (13, 0)}


class HardwareError(ValueError):
    """The override names no accelerator, or the hardware cannot run any of JAX's builds."""


@dataclasses.dataclass(frozen=True)
class Nvidia:
    """NVIDIA GPUs: what ``nvidia-smi`` says (or only that device files exist)."""

    evidence: tuple[str, ...]  # the device files and tools that show them
    names: tuple[str, ...] = ()  # one per GPU, e.g. "NVIDIA H200"
    driver: str | None = None  # e.g. "580.65.06"
    cuda: str | None = None  # the newest CUDA the driver runs, e.g. "13.0"
    smi_error: str | None = None  # why nvidia-smi said nothing, when it did not


@dataclasses.dataclass(frozen=True)
class Tpu:
    """Cloud TPU chips on the PCI bus."""

    chips: int
    generation: str


@dataclasses.dataclass(frozen=True)
class Hardware:
    """The accelerators seen on this machine (none: a CPU-only machine)."""

    nvidia: Nvidia | None = None
    tpu: Tpu | None = None

    @property
    def backend(self) -> str | None:
        """The JAX backend this hardware calls for: ``gpu``, ``tpu`` or None (CPU only)."""
        if self.tpu is not None:
            return "tpu"
        if self.nvidia is not None:
            return "gpu"
        return None

    def describe(self) -> str:
        """One line for people: what was seen and how."""
        parts = []
        if self.nvidia is not None:
            n = self.nvidia
            what = (
                f"{len(n.names)} NVIDIA GPU(s) ({', '.join(sorted(set(n.names)))})"
                if n.names
                else "an NVIDIA GPU"
            )
            driver = f", driver {n.driver}" if n.driver else ""
            cuda = f", CUDA {n.cuda}" if n.cuda else ""
            parts.append(f"{what}{driver}{cuda} [{', '.join(n.evidence)}]")
        if self.tpu is not None:
            parts.append(f"{self.tpu.chips} TPU {self.tpu.generation} chip(s) [PCI]")
        return "; ".join(parts) if parts else "no accelerator (CPU only)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "nvidia": dataclasses.asdict(self.nvidia) if self.nvidia else None,
            "tpu": dataclasses.asdict(self.tpu) if self.tpu else None,
            "backend": self.backend,
            "description": self.describe(),
        }


Run = Callable[..., subprocess.CompletedProcess]


def detect(
    root: Path = Path("/"),
    which: Callable[[str], str | None] = shutil.which,
    run: Run = subprocess.run,
) -> Hardware:
    """The accelerators under ``root`` (tests pass a fake tree, ``which`` and ``run``)."""
    return Hardware(nvidia=_nvidia(root, which, run), tpu=_tpu(root))


def _nvidia(root: Path, which: Callable[[str], str | None], run: Run) -> Nvidia | None:
    files = tuple("/" + f for f in NVIDIA_DEVICE_FILES if (root / f).exists())
    smi = which("nvidia-smi")
    if not files and smi is None:
        return None
    evidence = (*files, smi) if smi else files
    if smi is None:
        return Nvidia(evidence=evidence, smi_error="nvidia-smi is not on PATH")
    try:
        listed = run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        header = run([smi], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Nvidia(evidence=evidence, smi_error=f"{type(e).__name__}: {e}")
    if listed.returncode != 0:
        why = (listed.stderr or listed.stdout or "").strip().splitlines()
        if not files:  # a tool and no device: e.g. a driver without a GPU (a container)
            return None
        return Nvidia(evidence=evidence, smi_error=why[0] if why else "nvidia-smi failed")
    rows = [r.split(",") for r in listed.stdout.strip().splitlines() if r.strip()]
    names = tuple(r[0].strip() for r in rows)
    drivers = {r[1].strip() for r in rows if len(r) > 1}
    found = re.search(r"CUDA Version:\s*([0-9]+(?:\.[0-9]+)?)", header.stdout or "")
    if not names and not files:
        return None
    return Nvidia(
        evidence=evidence,
        names=names,
        driver=sorted(drivers)[0] if drivers else None,
        cuda=found.group(1) if found else None,
    )


def _tpu(root: Path) -> Tpu | None:
    chips, generation = 0, None
    for vendor in sorted((root / "sys/bus/pci/devices").glob("*/vendor")):
        try:
            if vendor.read_text().strip() != GOOGLE_PCI_VENDOR:
                continue
            device = (vendor.parent / "device").read_text().strip()
        except OSError:
            continue
        if device in TPU_PCI_DEVICES:
            chips += 1
            generation = TPU_PCI_DEVICES[device]
    return Tpu(chips, generation) if chips and generation else None


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The accelerator extra to install and why."""

    accelerator: str  # one of ACCELERATORS
    reason: str
    overridden: bool = False

    @property
    def backend(self) -> str:
        return BACKEND_OF[self.accelerator]

    @property
    def extra(self) -> str | None:
        """The project's extra that brings JAX's build for it (None on CPU)."""
        return None if self.accelerator == "cpu" else self.accelerator


def choose(hardware: Hardware, environ: Mapping[str, str] = os.environ) -> Choice:
    """Which accelerator extra this machine needs (``BENCH_ACCELERATOR`` overrides).

    Raises:
      HardwareError: the override is not one of :data:`ACCELERATORS`, or the NVIDIA driver is
        older than every CUDA build of JAX.
    """
    override = environ.get(OVERRIDE_ENV, "").strip()
    if override:
        if override not in ACCELERATORS:
            raise HardwareError(
                f"{OVERRIDE_ENV}={override!r} is none of {', '.join(ACCELERATORS)}; "
                f"unset it to detect the hardware ({hardware.describe()})"
            )
        return Choice(override, f"{OVERRIDE_ENV}={override} (seen: {hardware.describe()})", True)
    if hardware.tpu is not None:
        return Choice("tpu", f"{hardware.describe()}: JAX's TPU build (libtpu)")
    if hardware.nvidia is not None:
        return _cuda_choice(hardware)
    return Choice("cpu", "no accelerator seen (no NVIDIA device files or nvidia-smi, no TPU)")


def _cuda_choice(hardware: Hardware) -> Choice:
    n = hardware.nvidia
    assert n is not None
    seen = hardware.describe()
    if n.cuda is None:
        why = n.smi_error or "nvidia-smi printed no CUDA version"
        return Choice(
            "cuda12",
            f"{seen}; the driver's CUDA version is unknown ({why}): JAX's CUDA 12 build, which "
            f"older drivers run too; {OVERRIDE_ENV}=cuda13 for a driver of CUDA 13 or newer",
        )
    version = _version(n.cuda)
    if version >= MIN_DRIVER_CUDA["cuda13"]:
        return Choice("cuda13", f"{seen}: the driver runs CUDA {n.cuda}, so JAX's CUDA 13 build")
    if version >= MIN_DRIVER_CUDA["cuda12"]:
        return Choice("cuda12", f"{seen}: the driver runs CUDA {n.cuda}, so JAX's CUDA 12 build")
    raise HardwareError(
        f"{seen}: the driver runs CUDA {n.cuda}, older than any CUDA build of JAX "
        f"(12.1 at least): update the NVIDIA driver, or {OVERRIDE_ENV}=cpu to measure the CPU"
    )


def install_command(choice: Choice | str) -> str:
    """The command that installs this project with JAX's build for the accelerator."""
    accelerator = choice.accelerator if isinstance(choice, Choice) else choice
    return "pip install -e ." if accelerator == "cpu" else f"pip install -e '.[{accelerator}]'"


#: the distributions that give JAX each accelerator backend
PLUGINS_OF = {
    "gpu": ("jax-cuda13-plugin", "jax-cuda12-plugin", "jax-cuda13-pjrt", "jax-cuda12-pjrt"),
    "tpu": ("libtpu", "libtpu-nightly"),
}


def missing_backend(
    hardware: Hardware, present: Mapping[str, Any], installed: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """``(problem, fix)`` when the installed JAX cannot measure the hardware that is here;
    None when it can, or there is no accelerator. The fix installs JAX's build for it, or,
    where that build is ``installed`` (distribution -> version) and did not start, says where
    to look."""
    backend = hardware.backend
    if backend is None or backend in present:
        return None
    measured = ", ".join(sorted(present)) or "nothing"
    plugins = [f"{n} {v}" for n, v in (installed or {}).items() if n in PLUGINS_OF[backend]]
    if plugins:
        return (
            f"this machine has {hardware.describe()} and JAX's {', '.join(plugins)} is "
            f"installed, but its {backend} backend did not start (it can measure only {measured})",
            "read what JAX said (below, or python -m bench doctor): a plugin of another version "
            "than jaxlib, or a driver older than the plugin's CUDA; or measure the CPU alone "
            "with --backends cpu",
        )
    problem = (
        f"this machine has {hardware.describe()}, but the installed JAX has no {backend} backend "
        f"(it can measure only {measured})"
    )
    try:
        choice = choose(hardware, {})
    except HardwareError as e:
        return problem, str(e)
    return problem, (
        f"{install_command(choice)}  (nox -s bench installs it), or measure the CPU alone "
        f"with --backends cpu"
    )


def fallback_lines(log_text: str) -> list[str]:
    """JAX's own complaints in a worker's log: its "falling back to cpu" warning and why a
    plugin did not load."""
    keep = ("falling back", "unable to initialize backend", "plugin", "cuda", "libtpu")
    lines = []
    for line in log_text.splitlines():
        low = line.lower()
        if ("warning" in low or "error" in low) and any(k in low for k in keep):
            lines.append(line.strip())
    return lines


#: where ``nox`` finds PyTorch's CPU wheels on a machine without an NVIDIA GPU (the package
#: index's Linux torch is the CUDA build, several GB a CPU cannot use): PyTorch's CPU wheel
#: index, the ``--index-url`` its install selector gives for Linux, pip, CPU
TORCH_INDEX_ENV = "BENCH_TORCH_INDEX"


def peers_install_command(hardware: Hardware) -> str:
    """How to install the PyTorch peers on this machine: the CUDA build where there is an NVIDIA
    GPU, the CPU build elsewhere."""
    if hardware.nvidia is not None:
        return "pip install -e '.[peers]'  (the package index's CUDA build)"
    return (
        f"pip install -e '.[peers]' --extra-index-url \"${TORCH_INDEX_ENV}\"  with "
        f"{TORCH_INDEX_ENV} set to PyTorch's CPU wheel index (without it a CPU-only Linux "
        f"machine gets the CUDA build, several GB it cannot use)"
    )
