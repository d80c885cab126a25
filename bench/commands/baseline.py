"""`python -m bench baseline save RUN_DIR` / `baseline show`: store a run as its machine's
baseline, list the baselines (the file format: :mod:`bench.results.baseline`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..results import baseline, rundir, schema


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "save",
        help="store RUN_DIR as the baseline of its machine",
        description="Write <dir>/<hardware-fingerprint>.json from RUN_DIR (replacing an older "
        "baseline of the same machine).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `bench run`")
    p.add_argument(
        "--dir",
        default=str(baseline.DEFAULT_DIR),
        help="where baselines live (default: %(default)s)",
    )
    s = sub.add_parser("show", help="list the saved baselines", description="List baselines.")
    s.add_argument(
        "--dir",
        default=str(baseline.DEFAULT_DIR),
        help="where baselines live (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    if args.action == "save":
        try:
            existed = _exists_for_run(args.run_dir, args.dir)
            out = baseline.save(args.run_dir, args.dir)
        except (FileNotFoundError, schema.SchemaError, baseline.BaselineError, OSError) as e:
            print(f"baseline: error: {e}", file=sys.stderr)
            return 2
        doc = json.loads(out.read_text())
        n = len(doc["rows"])
        bad = sum(1 for r in doc["rows"] if r.get("status") != "ok")
        verb = "replaced" if existed else "saved"
        print(f"{verb} baseline {out} ({n} configurations from {args.run_dir})")
        if bad:
            print(f"warning: {bad} of them did not finish ok; compare reports them as errors")
        return 0
    have = baseline.available(args.dir)
    if not have:
        print(f"no baselines in {args.dir}; save one with `python -m bench baseline save RUN_DIR`")
        return 0
    for b in have:
        if "error" in b:
            print(f"{b['fingerprint']}  unreadable: {b['error']}  {b['path']}")
            continue
        print(
            f"{b['fingerprint']}  host={b['host'] or '?'}  cpu={b['cpu'] or '?'}  "
            f"rows={b['rows']}  created={b['created']}  from={b['source']}  {b['path']}"
        )
    return 0


def _exists_for_run(run_dir: str | Path, directory: str | Path) -> bool:
    """Whether a baseline for ``run_dir``'s machine already exists (False when unknown)."""
    try:
        fp = rundir.load_metadata(run_dir).get("hardware_fingerprint")
    except (FileNotFoundError, schema.SchemaError, OSError, ValueError):
        return False
    return bool(fp) and baseline.path_for(fp, directory).exists()
