"""`python -m bench ab --base REF [--head REF]`: A/B two commits, interleaved, on this machine.

The base commit is checked out into a temporary ``git worktree`` (removed afterwards, also on
an error, Ctrl-C or SIGTERM); the head is the working tree (uncommitted changes included) or,
with ``--head REF``, a second worktree. The configurations are planned once with this tree's
:mod:`bench.selection`; both sides measure each one back to back
(:mod:`bench.runner.ab`), each in its own worker process importing its own tree, which speaks
its own version of the worker protocol (:mod:`bench.protocol`: a request an older worker
cannot honour is refused, with the reason, rather than measured differently). ``OUT/base``
and ``OUT/head`` are ordinary run directories; ``OUT/compare.md`` and ``OUT/compare.json`` hold
the comparison's verdict (:mod:`bench.regression`), whose exit code this returns (0 no
regression, 1 a regression, 2 bad input: a bad ref, not a git repository, a base without a
benchmark worker, nothing measured on both sides).

``--repeats N`` makes N passes, each with a fresh pair of workers (all are in
``repeats.jsonl``). The pass is the unit of evidence: a configuration whose N passes put head
above the square root of ``--factor`` is a *suspect* and gets ``--confirm`` more interleaved
passes (at most ``--max-suspects`` of them, the most suspect first), and is judged on those
alone; Holm's rule over the suspects keeps the chance that identical code fails the check at
most ``--alpha`` (:mod:`bench.regression.verdicts`). A measurement during which other jobs used
more than ``--max-foreign-load`` of the CPUs (Linux ``/proc/stat``) is redone, both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from .. import protocol
from ..format import say
from ..protocol import ProtocolError
from ..regression.render import present
from ..regression.sides import load_input
from ..regression.verdicts import compare
from ..results import machine
from ..results.rundir import RunDir, RunDirBusy
from ..runner import ab, interrupts, trees
from ..runner.loop import Arm
from ..selection import Selection
from . import options

MARKER = "ab.json"  # written first into OUT: a directory holding it may be cleared by a rerun


class AbError(Exception):
    """Bad input for ``bench ab`` (exit code 2)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "A/B two commits interleaved on this machine; exit 0: no regression, 1: a regression "
        "(bench compare's verdict), 2: bad input."
    )
    head = "the commit to test (default: the working tree, uncommitted changes included)"
    out = "writes OUT/base, OUT/head, OUT/compare.md and OUT/compare.json (default: %(default)s)"
    p.add_argument("--base", required=True, metavar="REF", help="the commit to compare against")
    p.add_argument("--head", metavar="REF", help=head)
    p.add_argument("--out", default=str(Path("reports") / "ab"), help=out)
    p.add_argument("--peaks", action="store_true", help="also measure the machine's peaks")
    options.add_ab_arguments(p)
    options.add_selection_arguments(p)
    options.add_rule_arguments(p)


def main(args: argparse.Namespace) -> int:
    # SIGTERM and SIGHUP as Ctrl-C: worktrees and workers cleaned up
    with interrupts.as_interrupt() as caught:
        return caught.exit_code(_main(args))


def _main(args: argparse.Namespace) -> int:
    try:
        chosen = options.selection_from(args)
        repo = trees.repo_root(Path.cwd())
        commits = {
            k: trees.resolve(repo, getattr(args, k)) for k in ("base", "head") if getattr(args, k)
        }
        out = Path(args.out)
        with contextlib.ExitStack() as stack:
            stack.callback(lock(out).unlock)  # OUT's one writer until the end
            prepare_out(out)
            found = {k: stack.enter_context(trees.worktree(repo, c, k)) for k, c in commits.items()}
            found.setdefault("head", repo)
            for name, tree in found.items():
                try:
                    protocol.worker_module(tree)
                except ProtocolError as e:
                    ref = getattr(args, name) or "working tree"
                    raise AbError(f"the {name} ({ref}) is too old for A/B: {e}") from None
            return run(args, chosen, out, found)
    except (AbError, trees.GitError, ValueError) as e:
        say(f"ab: error: {e}")
        return 2


def lock(out: Path) -> RunDir:
    """``out`` locked for this process (:meth:`bench.RunDir.lock`); another live ``bench ab``
    writing there is refused with its PID."""
    try:
        return RunDir(out).lock()
    except RunDirBusy as e:
        raise AbError(str(e)) from None
    except OSError as e:
        raise AbError(f"cannot write {out}: {e.strerror or e}") from None


def prepare_out(out: Path) -> Path:
    """``out`` emptied of a previous A/B's results; refuses a directory that is not one."""
    parts = [out / p for p in ("base", "head", "logs", "compare.md", "compare.json")]
    if any(p.exists() for p in parts):
        if not (out / MARKER).exists():
            raise AbError(f"{out} holds results that are not bench ab's; pick another --out")
        for p in parts:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run(args: argparse.Namespace, chosen: Selection, out: Path, found: dict[str, Path]) -> int:
    info: dict[str, Any] = {"command": machine.command_line(), "repeats": args.repeats}
    for name, tree in found.items():
        info[name] = {"ref": getattr(args, name) or "working tree", **machine.git(tree)}
    (out / MARKER).write_text(json.dumps(info, indent=1))
    common, peaks, specs, _ = ab.plan(chosen, out, with_peaks=args.peaks)
    run_id = machine.run_id()
    arms = [Arm(k, RunDir(out / k), f"{run_id}-{k}", found[k]) for k in ("base", "head")]
    said = {k: f"{info[k]['ref']} {(info[k]['commit'] or '?')[:10]}" for k in found}
    said["head"] += " (dirty)" if info["head"].get("dirty") else ""
    what = f"{len(specs)} configurations x {args.repeats} pass(es), interleaved"
    say(f"A/B: base {said['base']} vs head {said['head']}: {what}; writing {out}")
    init, settings = options.ab_from(args, chosen, specs)
    runner = ab.interleaved(arms, init, settings, log_dir=out / "logs", peaks=peaks)
    code = None
    try:
        info["confirmed"] = ab.measure(runner, specs, settings, args.factor)
    except KeyboardInterrupt:
        code = 130
    code = _finish(args, out, arms, runner, common, info, code)
    info.update(
        exit_code=code, end_time=machine.now(), counts={a.name: dict(a.counts) for a in arms}
    )
    (out / MARKER).write_text(json.dumps(info, indent=1))
    return code


def _finish(args, out: Path, arms: list[Arm], runner, common: dict, info: dict, code) -> int:
    """Write both run directories, warn of failures and load, compare; the exit code."""
    redone, loaded, pairs = runner.redone, runner.loaded, runner.pairs
    for arm in arms:
        side = {"side": arm.name, **{k: info[arm.name][k] for k in ("ref", "commit", "dirty")}}
        ab.write_arm(arm, common, ab=side, measurements_redone=redone, busy=loaded)
        bad = ", ".join(f"{v} {k}" for k, v in arm.counts.items() if k != "ok" and v)
        if bad:
            say(f"warning: {arm.name}: {bad} (see {out / 'logs'})")
    if loaded:
        say(
            f"warning: other jobs loaded the CPUs during {loaded} of {pairs} measurements: noisy verdicts; rerun when quiet"
        )
    if code == 130:
        say(f"interrupted; partial results in {out}")
        return 130
    if not ab.ok_on_every_side(arms):
        say(f"ab: error: no configuration ran on both sides; see the logs in {out / 'logs'}")
        return 2
    rule = options.rule_from(args, paired=True)  # interleaved: same machine, same moment
    rep = compare(load_input(out / "base"), load_input(out / "head"), rule)
    return present(rep, markdown=out / "compare.md", json_path=out / "compare.json")
