"""What this machine can measure and what stands in the way: the hardware seen
(:mod:`bench.hardware`), JAX's backends and devices as a fresh worker finds them, the versions of
JAX, jaxlib, its plugins, libtpu and PyTorch (and its build), the driver, and each problem with
the command that fixes it. ``python -m bench doctor`` prints it; every run's ``metadata.json``
keeps it under ``doctor``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnist_kernels import catalog

from .. import hardware
from ..selection import ALL_BACKENDS
from . import probe as probing

#: distributions of JAX's accelerator plugins, whose version must be jaxlib's
PLUGINS = ("jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt")

ERROR, NOTICE = "error", "notice"


def diagnose(
    seen: hardware.Hardware,
    found: Mapping[str, Any],
    *,
    jax_said: list[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """The doctor's findings from the hardware ``seen`` and a worker's probe ``found`` (of every
    backend): ``{hardware, accelerator, backends, versions, torch, jax_said, problems}``, each
    problem ``{severity, problem, fix}`` (``error``: what is measured is not what is there or
    nothing can be; ``notice``: something optional is missing)."""
    software = found.get("software") or {}
    packages = dict(software.get("packages") or {})
    problems: list[dict[str, str]] = []
    accelerator: dict[str, Any] | None = None
    try:
        choice = hardware.choose(seen, environ)
        accelerator = {
            "choice": choice.accelerator,
            "reason": choice.reason,
            "install": hardware.install_command(choice),
        }
    except hardware.HardwareError as e:
        problems.append({"severity": ERROR, "problem": str(e), "fix": "see the problem"})
    backends = dict(found.get("backends") or {})
    present = {b: i for b, i in backends.items() if "error" not in i}
    # a backend not probed (a run that asked for --backends cpu) is not known to be missing
    missing = (
        hardware.missing_backend(seen, present, packages) if seen.backend in backends else None
    )
    if missing:
        problems.append({"severity": ERROR, "problem": missing[0], "fix": missing[1]})
    problems += _jax_problems(found.get("jax"), found.get("jaxlib"), packages, seen)
    # measuring the CPU on purpose (BENCH_ACCELERATOR=cpu): PyTorch's CPU build is the right one
    on_cpu = accelerator is not None and accelerator["choice"] == "cpu"
    problems += _torch_problems(software.get("torch"), hardware.Hardware() if on_cpu else seen)
    return {
        "hardware": seen.as_dict(),
        "accelerator": accelerator,
        "backends": backends,
        "versions": {
            "python": found.get("python"),
            "jax": found.get("jax"),
            "jaxlib": found.get("jaxlib"),
            **{k: v for k, v in packages.items() if k not in ("jax", "jaxlib")},
        },
        "torch": software.get("torch"),
        "jax_said": list(jax_said or []),
        "problems": problems,
    }


def _jax_problems(
    jax: str | None, jaxlib: str | None, packages: Mapping[str, str], seen: hardware.Hardware
) -> list[dict[str, str]]:
    out = []
    if jax and not catalog.jax_supported(jax):
        out.append(
            {
                "severity": ERROR,
                "problem": f"JAX {jax} is outside the supported 0.10-0.12",
                "fix": "pip install -e .  (it resolves a supported JAX for this Python)",
            }
        )
    for name in PLUGINS:
        version = packages.get(name)
        if version is None:
            continue
        if jaxlib and catalog.jax_release(version) != catalog.jax_release(jaxlib):
            extra = "cuda13" if "cuda13" in name else "cuda12"
            out.append(
                {
                    "severity": ERROR,
                    "problem": f"{name} {version} does not match jaxlib {jaxlib}: JAX will not "
                    f"load it",
                    "fix": f"pip install -U -e '.[{extra}]'",
                }
            )
        if seen.nvidia is None:
            out.append(
                {
                    "severity": NOTICE,
                    "problem": f"{name} is installed but no NVIDIA GPU is seen: it does nothing",
                    "fix": f"pip uninstall {name}  (optional)",
                }
            )
    return out


def _torch_problems(torch: Mapping[str, Any] | None, seen: hardware.Hardware) -> list[dict]:
    gpu = seen.nvidia is not None
    if torch is None:
        return [
            {
                "severity": NOTICE,
                "problem": "PyTorch is not installed: the peers (torch-eager, torch-compile) "
                "are skipped",
                "fix": hardware.peers_install_command(seen),
            }
        ]
    if "error" in torch:
        return [
            {
                "severity": ERROR,
                "problem": f"PyTorch does not import: {torch['error']}",
                "fix": hardware.peers_install_command(seen),
            }
        ]
    if gpu and torch.get("build") == "cpu":
        return [
            {
                "severity": ERROR,
                "problem": f"PyTorch {torch.get('version')} is the CPU build on a machine with "
                f"an NVIDIA GPU: the peers would not be measured on it",
                "fix": f"pip install --force-reinstall "
                f"'torch=={str(torch.get('version')).split('+')[0]}'  (the package index's CUDA "
                f"build)",
            }
        ]
    if gpu and not torch.get("cuda_available"):
        return [
            {
                "severity": ERROR,
                "problem": f"PyTorch's CUDA {torch.get('cuda')} build cannot use the GPU "
                f"(driver CUDA {seen.nvidia.cuda if seen.nvidia else '?'})",
                "fix": "install the PyTorch build for this driver's CUDA version",
            }
        ]
    if not gpu and torch.get("build") == "cuda":
        return [
            {
                "severity": NOTICE,
                "problem": f"PyTorch {torch.get('version')} is a CUDA build on a machine without "
                f"an NVIDIA GPU (several GB unused; its peers run on the CPU)",
                "fix": hardware.peers_install_command(seen),
            }
        ]
    return []


class MissingBackend(ValueError):
    """The machine's accelerator was asked for (or not excluded) but JAX has no backend for it."""


def checked_probe(
    backends: list[str], log_dir: Path
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    """The worker's probe of ``backends`` with the doctor's findings under ``"doctor"``, the
    present backends, and what is left out: each absent backend with why, and an accelerator
    left out by the user's ``--backends``.

    Raises:
      MissingBackend: the hardware has an accelerator among ``backends`` and this JAX cannot
        use it; the message has the command that fixes it and what JAX said (its fallback
        warning, otherwise only in the probe's log).
    """
    found, present = probing.probe(backends, log_dir)
    seen = hardware.detect()
    said = jax_said(log_dir)
    found["doctor"] = diagnose(seen, found, jax_said=said)
    backend = seen.backend
    if backend is not None and backend in backends and backend not in present:
        installed = (found.get("software") or {}).get("packages") or {}
        problem, fix = hardware.missing_backend(seen, present, installed) or ("", "")
        raise MissingBackend(
            f"{problem}\n  fix: {fix}" + "".join(f"\n  JAX said: {line}" for line in said)
        )
    labels = {"gpu": "NVIDIA GPU", "tpu": "TPU"}
    notes = [
        {
            "what": f"backend {b}",
            "reason": (
                f"no {labels[b]} on this machine (JAX: {i['error'][:160]})"
                if b in labels and b != backend
                else i["error"]
            ),
        }
        for b, i in found["backends"].items()
        if "error" in i
    ]
    if backend is not None and backend not in backends:
        notes.append(
            {
                "what": f"backend {backend}",
                "reason": f"not asked for: this machine has {seen.describe()}, and only "
                f"{', '.join(sorted(present))} is measured (--backends)",
            }
        )
    return found, present, notes


def examine(log_dir: Path | None = None) -> dict[str, Any]:
    """:func:`diagnose` of this machine: detect the hardware, probe every backend in a fresh
    worker (its log under ``log_dir``, a temporary directory when None)."""
    seen = hardware.detect()
    if log_dir is not None:
        return _examine(seen, log_dir)
    with tempfile.TemporaryDirectory(prefix="bench-doctor-") as tmp:
        return _examine(seen, Path(tmp))


def _examine(seen: hardware.Hardware, log_dir: Path) -> dict[str, Any]:
    found, _ = probing.probe(list(ALL_BACKENDS), log_dir)
    return diagnose(seen, found, jax_said=jax_said(log_dir))


def jax_said(log_dir: Path) -> list[str]:
    """JAX's warnings about backends in the probe's log (its "falling back to cpu")."""
    log = log_dir / "probe.log"
    return hardware.fallback_lines(log.read_text(errors="replace")) if log.exists() else []


def render(d: Mapping[str, Any]) -> str:
    """The doctor's findings as text for people."""
    lines = [f"hardware:    {d['hardware']['description']}"]
    a = d.get("accelerator")
    if a:
        lines.append(f"accelerator: {a['choice']} ({a['reason']}); install: {a['install']}")
    v = d["versions"]
    plugins = [f"{k} {x}" for k, x in v.items() if k.startswith(("jax-", "libtpu"))]
    lines.append(
        f"versions:    Python {v.get('python')}, jax {v.get('jax')}, jaxlib {v.get('jaxlib')}; "
        f"plugins: {', '.join(plugins) or 'none'}"
    )
    for b, info in d["backends"].items():
        if "error" in info:
            lines.append(f"{'backend ' + b + ':':<12} absent ({info['error']})")
        else:
            memory = info.get("memory_bytes") or info.get("allocator_limit_bytes")
            mem = f", {memory / 2**30:.0f} GiB" if memory else ""
            lines.append(
                f"{'backend ' + b + ':':<12} {info.get('device_count')} x {info.get('device_kind')}"
                f" ({info.get('platform_version')}{mem})"
            )
    t = d.get("torch")
    if t is None:
        lines.append("torch:       not installed")
    elif "error" in t:
        lines.append(f"torch:       broken ({t['error']})")
    else:
        build = f"CUDA {t.get('cuda')}" if t.get("build") == "cuda" else "CPU"
        usable = ", GPU usable" if t.get("cuda_available") else ""
        lines.append(f"torch:       {t.get('version')}, {build} build{usable}")
    lines += [f"JAX said:    {line}" for line in d.get("jax_said") or []]
    if not d["problems"]:
        lines.append("ok: nothing missing")
    for p in d["problems"]:
        mark = "error" if p["severity"] == ERROR else "notice"
        lines.append(f"{mark}: {p['problem']}\n  fix: {p['fix']}")
    return "\n".join(lines)


def failed(d: Mapping[str, Any]) -> bool:
    return any(p["severity"] == ERROR for p in d["problems"])
