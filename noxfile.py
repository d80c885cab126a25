"""nox sessions: `nox -s bench`, `nox -s tests`, `nox -s regress -- REF`, `nox -s lint`, and
`nox -s tests-3.12` / `tests-3.13` (the suite on another Python, with the newest JAX it gets).

Every session that installs the project first looks at the hardware (:mod:`bench.hardware`:
NVIDIA GPU, Cloud TPU or neither), installs JAX's build for it (the `cuda12`, `cuda13` or `tpu`
extra) and says what it chose and why; `BENCH_ACCELERATOR=cpu|cuda12|cuda13|tpu` overrides. The
PyTorch peers come as the CUDA build where there is an NVIDIA GPU and as the CPU build elsewhere
(from `BENCH_TORCH_INDEX`, PyTorch's CPU wheel index, or a CPU wheel pip already finds without an
index); where neither is available they are skipped with the reason.

Virtualenvs are reused between runs. Arguments after `--` go to the command the session runs.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]
# a missing interpreter skips its session (with the reason) instead of failing on CI
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent

#: 1: PyTorch must install and its tests must run (CI sets it); tests.helpers reads it too
REQUIRE_PEERS_ENV = "MNIST_BENCH_REQUIRE_PEERS"
#: a pip requirement for JAX in the per-Python test sessions, e.g. "jax==0.11.*" (default: the
#: newest release this project supports on that Python)
JAX_PIN_ENV = "BENCH_JAX"
#: the Pythons with a test session of their own
PYTHONS = ("3.11", "3.12", "3.13")


def _load_hardware():
    """:mod:`bench.hardware`, loaded by path: nothing of the project is installed yet."""
    spec = importlib.util.spec_from_file_location("_bench_hardware", ROOT / "bench/hardware.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hardware = _load_hardware()


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def install(session: nox.Session, *extras: str):
    """Install the project with ``extras`` and JAX's build for this machine's accelerator;
    returns the choice (:class:`bench.hardware.Choice`)."""
    seen = hardware.detect()
    try:
        choice = hardware.choose(seen)
    except hardware.HardwareError as e:
        session.error(str(e))
    session.log(f"accelerator: {choice.accelerator}: {choice.reason}")
    if choice.backend == "cpu" and seen.backend is not None:
        session.warn(
            f"measuring the CPU while this machine has {seen.describe()} "
            f"({hardware.OVERRIDE_ENV}={choice.accelerator})"
        )
    wanted = [*extras, *([choice.extra] if choice.extra else [])]
    session.install("-e", f".[{','.join(wanted)}]" if wanted else ".")
    return choice


def install_peers(session: nox.Session, choice, *, required: bool) -> bool:
    """Install the PyTorch peers in the build this machine can use; False (and why, printed)
    where they cannot be installed, which fails the session when ``required``."""
    (torch,) = _project()["optional-dependencies"]["peers"]
    index = os.environ.get(hardware.TORCH_INDEX_ENV)
    if choice.backend == "gpu":
        how = ["-e", ".[peers]"]  # the package index's Linux build is the CUDA one
    elif index:
        how = ["-e", ".[peers]", "--extra-index-url", index]
    elif _local_wheel(session, torch):
        how = ["-e", ".[peers]"]  # pip prefers the CPU wheel it finds without an index
    else:
        why = (
            f"the PyTorch peers are not installed: on a machine without an NVIDIA GPU the "
            f"package index's {torch} is the CUDA build (several GB it cannot use) and pip "
            f"finds no CPU wheel of it for Python {_python_version(session)} without an "
            f"index; set {hardware.TORCH_INDEX_ENV} to PyTorch's CPU wheel index (the "
            f"--index-url its install selector gives for Linux, pip, CPU) to measure them"
        )
        if required:
            session.error(why)
        session.warn(why)
        return False
    try:
        session.run("python", "-m", "pip", "install", "-q", *how)
    except CommandFailed:
        if required:
            raise
        session.warn("the PyTorch peers did not install; they are skipped")
        return False
    build = "import torch; print(torch.version.cuda or 'cpu')"
    got = session.run("python", "-c", build, silent=True).strip().splitlines()[-1]
    session.log(f"PyTorch peers: {torch}, {'CUDA ' + got if got != 'cpu' else 'CPU'} build")
    if choice.backend != "gpu" and got != "cpu":
        session.warn(f"PyTorch's CUDA {got} build is installed on a machine without a GPU")
    if choice.backend == "gpu" and got == "cpu":  # pip preferred a CPU wheel it had at hand
        session.warn(
            f"PyTorch's CPU build is installed on a machine with an NVIDIA GPU: its peers would "
            f"be measured on the CPU; pip install --force-reinstall '{torch}' from an index "
            f"with the CUDA build"
        )
    return True


def _local_wheel(session: nox.Session, requirement: str) -> bool:
    """Whether pip finds ``requirement`` without a package index (a wheel folder it is set up
    to look in), for this session's Python."""
    python = os.path.join(session.bin, "python")
    probe = [python, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", "-q"]
    return subprocess.run([*probe, requirement], capture_output=True).returncode == 0


def _python_version(session: nox.Session) -> str:
    python = os.path.join(session.bin, "python")
    out = subprocess.run([python, "--version"], capture_output=True, text=True)
    return out.stdout.split()[-1] if out.returncode == 0 else "this Python"


@nox.session
def tests(session: nox.Session) -> None:
    """Install the project with its test extra and run pytest (4 fake CPU devices).

    The PyTorch peers are installed too where their build for this machine can be had. Once
    they are, their tests must run (a PyTorch that does not import fails them); where they
    cannot be installed those tests skip with the reason, unless ``MNIST_BENCH_REQUIRE_PEERS=1``
    (CI's first leg) makes that fail the session.
    """
    _test(session, jax_pin=None)


def _test(session: nox.Session, jax_pin: str | None) -> None:
    choice = install(session, "test")
    if jax_pin:
        session.install(jax_pin)
    versions = "import jax, sys; print(f'JAX {jax.__version__} on Python {sys.version[:6]}')"
    session.run("python", "-c", versions)
    required = os.environ.get(REQUIRE_PEERS_ENV) == "1"
    installed = install_peers(session, choice, required=required)
    env = {REQUIRE_PEERS_ENV: "1" if installed else "0"}
    session.run("pytest", "tests", *session.posargs, env=env)


def interpreter(version: str) -> str | None:
    """A working ``python<version>``: on ``PATH`` (a pyenv shim answers only for its active
    versions) or among pyenv's installed versions."""
    found = shutil.which(f"python{version}")
    candidates = [found] if found else []
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv}/versions/{version}*/bin/python{version}"))
    for path in candidates:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.split()[-1].startswith(version):
            return path
    return None


def _versioned_tests(version: str) -> None:
    found = interpreter(version)

    @nox.session(name=f"tests-{version}", python=found or version)
    def versioned(session: nox.Session) -> None:
        """The suite on this Python with the newest JAX it can have (BENCH_JAX pins another);
        `-- -m compat` runs the subset CI runs on its second interpreter."""
        _test(session, jax_pin=os.environ.get(JAX_PIN_ENV))

    versioned.__doc__ = f"The suite on Python {version} ({found or 'not found here'})."


for _version in PYTHONS:
    _versioned_tests(_version)


@nox.session
def bench(session: nox.Session) -> None:
    """The default sweep on the accelerator this machine has (or the CPU), then the report.

    `nox -s bench -- --quick` (or any `python -m bench run` flags) changes the sweep. With
    ``BENCH_ACCELERATOR=cpu`` on a machine with an accelerator, only the CPU is measured.
    """
    choice = install(session)
    install_peers(session, choice, required=False)
    out = session.create_tmp()  # only for the run-dir hand-off file
    handoff = f"{out}/last-run"
    args = [*_backend_args(choice, session.posargs), *session.posargs]
    session.run("python", "-m", "bench", "run", "--write-run-dir", handoff, *args)
    with open(handoff) as f:
        run_dir = f.read().strip()
    session.run("python", "-m", "bench", "report", run_dir)


def _backend_args(choice, posargs: list[str]) -> list[str]:
    """``--backends cpu`` when the user chose the CPU on a machine with an accelerator (and did
    not name backends): otherwise `bench run` refuses to measure the CPU in its place."""
    if choice.overridden and choice.backend == "cpu" and "--backends" not in posargs:
        return ["--backends", "cpu"]
    return []


@nox.session
def regress(session: nox.Session) -> None:
    """A/B the working tree against a git ref (default: main), interleaved; exit 1 on regression.

    `nox -s regress -- origin/main` or `nox -s regress -- REF --quick` (another selection).
    The regress preset unless a selection is given; `bench validate` measures how often this
    check cries wolf and how often it catches a 20% slowdown (README).
    """
    choice = install(session)
    # the peers are part of what is checked where their build for this machine can be had
    install_peers(session, choice, required=False)
    args = list(session.posargs)
    base = args.pop(0) if args and not args[0].startswith("-") else "main"
    defaults = [] if args else ["--regress"]
    backends = _backend_args(choice, args)
    session.run("python", "-m", "bench", "ab", "--base", base, *defaults, *backends, *args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
