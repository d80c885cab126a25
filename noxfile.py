"""nox sessions: `nox -s bench`, `nox -s tests`, `nox -s regress -- REF`, `nox -s lint`.

Virtualenvs are reused between runs. Arguments after `--` go to the command the session runs.
"""

import os

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


#: 1: PyTorch must install and its tests must run (CI sets it); tests.helpers reads it too
REQUIRE_PEERS_ENV = "MNIST_BENCH_REQUIRE_PEERS"


@nox.session
def tests(session: nox.Session) -> None:
    """Install the project with its test extra and run pytest (4 fake CPU devices).

    The PyTorch peers are installed too where the package index has them. Once they are, their
    tests must run (a PyTorch that does not import fails them); where they cannot be installed
    those tests skip with the reason, unless ``MNIST_BENCH_REQUIRE_PEERS=1`` (CI) makes the
    failed install fail the session.
    """
    session.install("-e", ".[test]")
    required = os.environ.get(REQUIRE_PEERS_ENV) == "1"
    install = ("python", "-m", "pip", "install", "-q", "-e", ".[peers]")
    session.run(*install, success_codes=[0] if required else [0, 1])
    probe = "import importlib.util as u; print(u.find_spec('torch') is not None)"
    installed = session.run("python", "-c", probe, silent=True).strip() == "True"
    env = {REQUIRE_PEERS_ENV: "1"} if installed or required else {}
    session.run("pytest", "tests", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """The default sweep on whatever backends are present, then the report.

    `nox -s bench -- --quick` (or any `python -m bench run` flags) changes the sweep.
    Installs the PyTorch peers when the package index has them; without them they are skipped.
    """
    session.install("-e", ".")
    # peers are optional: where PyTorch cannot be installed the sweep skips them with a notice
    session.run("python", "-m", "pip", "install", "-q", "-e", ".[peers]", success_codes=[0, 1])
    out = session.create_tmp()  # only for the run-dir hand-off file
    handoff = f"{out}/last-run"
    session.run("python", "-m", "bench", "run", "--write-run-dir", handoff, *session.posargs)
    with open(handoff) as f:
        run_dir = f.read().strip()
    session.run("python", "-m", "bench", "report", run_dir)


@nox.session
def regress(session: nox.Session) -> None:
    """A/B the working tree against a git ref (default: main), interleaved; exit 1 on regression.

    `nox -s regress -- origin/main` or `nox -s regress -- REF --quick` (another selection).
    The regress preset unless a selection is given; `bench validate` measures how often this
    check cries wolf and how often it catches a 20% slowdown (README).
    """
    session.install("-e", ".")
    # the peers are part of what is checked where PyTorch can be installed
    session.run("python", "-m", "pip", "install", "-q", "-e", ".[peers]", success_codes=[0, 1])
    args = list(session.posargs)
    base = args.pop(0) if args and not args[0].startswith("-") else "main"
    defaults = [] if args else ["--regress"]
    session.run("python", "-m", "bench", "ab", "--base", base, *defaults, *args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
