"""`python -m bench doctor`: the hardware seen, JAX's backends and devices, the versions that
matter (jax, jaxlib, plugins, libtpu, torch and its build, the driver), what is missing and the
command that fixes it (:mod:`bench.runner.doctor`). Exit 1 when something stops this machine's
accelerator from being measured."""

from __future__ import annotations

import argparse
import json

from ..runner import doctor


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the findings as JSON")


def main(args: argparse.Namespace) -> int:
    found = doctor.examine()
    print(json.dumps(found, indent=2) if args.json else doctor.render(found))
    return 1 if doctor.failed(found) else 0
