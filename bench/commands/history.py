"""`python -m bench history add|show|check|publish`: the results history over commits and
machines (the store's layout: :mod:`bench.history.store`; the step detection:
:mod:`bench.history.steps`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..history import changes, store
from ..results import schema

DEFAULT_STORE = Path("reports") / "history"


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=str(DEFAULT_STORE),
        help="the history directory (default: %(default)s); it can live on a git branch",
    )


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine", action="append", help="only this machine label (repeatable)")
    p.add_argument("--branch", action="append", help="only this branch (repeatable)")
    p.add_argument(
        "--metric",
        choices=sorted(changes.METRICS),
        action="append",
        help="only this figure: step (time a step) or compile (cold compile); default both",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = sub.add_parser(
        "add",
        help="file a run directory under its machine and commit",
        description="File RUN_DIR in the store under --machine (default: its hardware "
        "fingerprint) and its commit. Filing a run that is there already does nothing.",
    )
    a.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories of `bench run`")
    _store_arg(a)
    a.add_argument(
        "--machine",
        help="the machine label (default: the run's hardware fingerprint); hosted CI runners "
        "change CPU model from run to run: give them one label, e.g. gha-ubuntu-2core",
    )
    a.add_argument("--commit", help="the commit measured, where the run does not record it")
    a.add_argument("--commit-time", help="its committer time (ISO 8601), where not recorded")
    a.add_argument("--branch", help="the branch, where the run does not record it")
    a.add_argument(
        "--allow-dirty",
        action="store_true",
        help="file a run of a checkout with uncommitted changes (marked dirty)",
    )
    s = sub.add_parser("show", help="list the machines, branches and commits in the store")
    _store_arg(s)
    c = sub.add_parser(
        "check",
        help="changes over the history; exit 1 when the newest commit starts a regression",
        description="Find each configuration's steps (where its time changed) on every "
        "machine and branch, and list them. Exit 1 when the newest commit of a series is slower "
        "than the level before it by more than --factor, significantly after Holm's correction "
        "over every series (--alpha); older steps are reported, not failed.",
    )
    _store_arg(c)
    _filters(c)
    c.add_argument(
        "--factor",
        type=float,
        default=changes.DEFAULT_FACTOR,
        help="a newest-commit step fails the check above this ratio (default: %(default)s)",
    )
    c.add_argument(
        "--alpha",
        type=float,
        default=changes.DEFAULT_ALPHA,
        help="the chance that unchanged code fails the check, Holm over every series "
        "(default: %(default)s)",
    )
    c.add_argument("--out", help="also write the changes as CSV here")
    p = sub.add_parser("publish", help="write the trend page (one self-contained HTML file)")
    _store_arg(p)
    p.add_argument("--out", required=True, help="the directory to write index.html into")
    p.add_argument("--title", help="the page's title")
    p.add_argument("--factor", type=float, default=changes.DEFAULT_FACTOR)


def main(args: argparse.Namespace) -> int:
    return {"add": _add, "show": _show, "check": _check, "publish": _publish}[args.action](args)


def _error(text: str) -> int:
    print(f"history: error: {text}", file=sys.stderr)
    return 2


def _add(args: argparse.Namespace) -> int:
    git = {"commit": args.commit, "commit_time": args.commit_time, "branch": args.branch}
    status = 0
    for run_dir in args.run_dirs:
        try:
            done = store.add(
                args.store, run_dir, machine=args.machine, allow_dirty=args.allow_dirty, git=git
            )
        except (FileNotFoundError, schema.SchemaError, store.HistoryError, OSError) as e:
            status = _error(str(e))
            continue
        verb = "added" if done.added else "already in the history:"
        print(f"{verb} {run_dir} -> {done.path} (machine {done.machine})")
    return status


def _load(path: str) -> store.History | None:
    try:
        hist = store.load(path)
    except FileNotFoundError as e:
        _error(str(e))
        return None
    for problem in hist.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return hist


def _show(args: argparse.Namespace) -> int:
    hist = _load(args.store)
    if hist is None:
        return 2
    rows = hist.rows
    if rows.empty:
        print(f"{args.store}: no runs yet; add one with `python -m bench history add RUN_DIR`")
        return 0
    runs = rows.drop_duplicates("run_id").assign(branch=lambda d: d["branch"].fillna("?"))
    for (machine, branch), part in runs.groupby(["machine", "branch"]):
        part = part.sort_values(["commit_time", "start_time"])
        print(f"{machine}  branch {branch}: {part['commit'].nunique()} commits, {len(part)} runs")
        for r in part.itertuples():
            n = int((rows["run_id"] == r.run_id).sum())
            when = r.commit_time.strftime("%Y-%m-%d %H:%M") if pd.notna(r.commit_time) else "?"
            print(f"  {r.commit[:12]}  {when}  run {r.run_id}  {n} configurations")
    return 0


def _select(rows: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    if args.machine:
        rows = rows[rows["machine"].isin([store.safe_label(m) for m in args.machine])]
    if args.branch:
        rows = rows[rows["branch"].isin(args.branch)]
    return rows


def _check(args: argparse.Namespace) -> int:
    hist = _load(args.store)
    if hist is None:
        return 2
    rows = _select(hist.rows, args)
    if rows.empty:
        print("no runs to check (nothing filed, or the filters match nothing)")
        return 0
    metrics = tuple(args.metric or changes.METRICS)
    found = changes.analyse(rows, metrics=metrics)
    for r in changes.newest_commits(found.points).itertuples():
        print(f"{r.machine}  branch {r.branch}: newest commit {r.commit[:12]}")
    if len(found.changes):
        print(f"\n{len(found.changes)} change(s) in the history, newest first:")
        for c in found.changes.to_dict(orient="records"):
            print(f"  {c['machine']}  {c['commit'][:12]}  {changes.fmt_change(c)}")
    bad = changes.failing(found, args.factor, args.alpha)
    if len(bad):
        print(
            f"\n{len(bad)} regression(s) at the newest commit (Holm over {len(found.newest)} series):"
        )
        for c in bad.sort_values("ratio", ascending=False).to_dict(orient="records"):
            print(
                f"  FAIL {c['machine']}  {c['commit'][:12]}  {c['label']}  {c['metric']}  "
                f"x{c['ratio']:.3f}  p = {c['p_holm']:.2g}"
            )
    if args.out and len(found.changes):
        found.changes.to_csv(args.out, index=False)
    if len(bad):
        print(f"\nFAIL: {len(bad)} regression(s) beyond x{args.factor} start at the newest commit")
        return 1
    print(f"\nOK: no regression beyond x{args.factor} starts at the newest commit")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from ..history import page

    try:
        out = page.publish(args.store, args.out, title=args.title, factor=args.factor)
    except FileNotFoundError as e:
        return _error(str(e))
    print(f"wrote {out}")
    return 0
