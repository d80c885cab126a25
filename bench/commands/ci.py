"""`python -m bench ci ACTION`: the steps of the CI workflows (``.github/workflows/``) that are
more than a nox session, kept here so that they are tested.

- ``ci comment --repo OWNER/NAME --pr N --body-file compare.md``: create or update the PR's one
  sticky comment (:mod:`bench.ci.comment`); token from ``GITHUB_TOKEN``, API from
  ``GITHUB_API_URL``. Exit 1 when GitHub refuses (the message says which permission is missing).
- ``ci push-history RUN_DIR --machine LABEL [--baseline]``: file the run in the results history
  on the data branch (``history/``; with ``--baseline`` also ``baselines/``) and push it,
  re-applied and retried when other jobs push meanwhile (:mod:`bench.ci.datapush`). Exit 1
  when the push fails.
- ``ci pr-number FILE``: print the pull-request number in FILE, which comes from a PR's run (a
  fork's code wrote it); exit 2 unless it is a positive integer.

Exit 2 for bad input everywhere.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from mnist_kernels.argtypes import positive_int

from ..ci import comment, datapush
from ..ci.github import GitHub, GitHubError
from ..format import say

#: where the data branch keeps the results history and the baselines
HISTORY_DIR = "history"
BASELINES_DIR = "baselines"


def _pr(text: str) -> int:
    try:
        return comment.pr_number(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_comment(sub)
    _add_push_history(sub)
    n = sub.add_parser(
        "pr-number",
        help="print the PR number in FILE, checked",
        description="Print the pull-request number FILE holds; exit 2 unless it holds a "
        "positive integer (FILE comes from a PR's run: never trust it).",
    )
    n.add_argument("file", metavar="FILE")


def _add_comment(sub: Any) -> None:
    c = sub.add_parser(
        "comment",
        help="create or update the PR's sticky comment from a Markdown file",
        description="Post BODY_FILE (e.g. reports/ab/compare.md) as the PR's one comment that "
        "starts with the marker: updated in place if there is one, created otherwise. Needs "
        "GITHUB_TOKEN with pull-requests: write; GITHUB_API_URL sets the API.",
    )
    c.add_argument(
        "--repo",
        default=os.environ.get("GITHUB_REPOSITORY"),
        help="OWNER/NAME (default: $GITHUB_REPOSITORY)",
    )
    c.add_argument("--pr", type=_pr, required=True, help="the pull request's number")
    c.add_argument("--body-file", required=True, metavar="FILE", help="the Markdown to post")
    c.add_argument(
        "--run-url",
        help="the workflow run to link (default: this run, from GITHUB_SERVER_URL, "
        "GITHUB_REPOSITORY and GITHUB_RUN_ID)",
    )
    c.add_argument(
        "--head-sha",
        metavar="SHA",
        help="the commit the results are for: shown, and no comment is made unless it is "
        "the PR's head (a stale run, or a PR number that is not the run's)",
    )
    c.add_argument(
        "--marker",
        default=comment.MARKER,
        help="the hidden HTML comment that marks the sticky comment (default: %(default)s)",
    )
    c.add_argument(
        "--author",
        metavar="LOGIN",
        help="only a comment by LOGIN is the sticky one (in a workflow: github-actions[bot])",
    )
    c.add_argument(
        "--artifact",
        default=comment.DEFAULT_ARTIFACT,
        help="the artifact named when the table is cut to fit (default: %(default)s)",
    )
    c.add_argument(
        "--allow-missing",
        action="store_true",
        help="post a note instead of failing when BODY_FILE does not exist (the run "
        "stopped before the A/B)",
    )
    c.add_argument("--conclusion", help="the run's conclusion, for that note")


def _add_push_history(sub: Any) -> None:
    p = sub.add_parser(
        "push-history",
        help="file RUN_DIR in the history on the data branch and push it",
        description="File RUN_DIR in <branch>:history/ (bench history add), with --baseline "
        "also save it to <branch>:baselines/, commit and push; when another job pushed "
        "meanwhile, fetch and re-apply (never force). Needs push rights (contents: write).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `bench run`")
    p.add_argument("--machine", required=True, help="the history's machine label")
    p.add_argument("--remote", default="origin", help="(default: %(default)s)")
    p.add_argument("--branch", default=datapush.DEFAULT_BRANCH, help="(default: %(default)s)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also store it as its machine's baseline in baselines/",
    )
    p.add_argument(
        "--attempts",
        type=positive_int,
        default=datapush.DEFAULT_ATTEMPTS,
        help="pushes to try when other jobs push meanwhile (default: %(default)s)",
    )
    p.add_argument(
        "--repo-dir",
        default=".",
        help="the git checkout whose remote is used (default: the current directory)",
    )


def main(args: argparse.Namespace) -> int:
    actions = {"comment": _comment, "push-history": _push_history, "pr-number": _pr_number}
    return actions[args.action](args)


def _error(text: str) -> None:
    say(f"ci: error: {text}")


def run_url_from_env(env: dict[str, str] | None = None) -> str | None:
    """This workflow run's page, from the variables GitHub Actions sets; None outside one."""
    env = dict(os.environ if env is None else env)
    parts = [env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def _comment_body(args: argparse.Namespace) -> str:
    """The comment's body from the arguments; raises ValueError or OSError on bad input."""
    comment.check_marker(args.marker)
    if args.head_sha and not re.fullmatch(r"[0-9a-fA-F]{7,64}", args.head_sha):
        raise ValueError(f"--head-sha {args.head_sha!r} is not a commit id")
    try:
        markdown = comment.read_markdown(args.body_file)
    except FileNotFoundError:
        if not args.allow_missing:
            raise ValueError(
                f"{args.body_file} does not exist (--allow-missing posts a note)"
            ) from None
        markdown = comment.missing_body(args.conclusion)
    return comment.build_body(
        markdown,
        marker=args.marker,
        run_url=args.run_url or run_url_from_env(),
        head_sha=args.head_sha,
        artifact=args.artifact,
    )


def _comment(args: argparse.Namespace) -> int:
    try:
        repo = comment.check_repo(args.repo or "")
        body = _comment_body(args)
    except (ValueError, OSError) as e:
        _error(str(e))
        return 2
    gh = GitHub.from_env()
    try:
        if args.head_sha:
            head = comment.pr_head(gh, repo, args.pr)
            if not head.lower().startswith(args.head_sha.lower()):
                say(
                    f"ci: not commenting: {repo}#{args.pr}'s head is {head[:12]}, the results "
                    f"are for {args.head_sha[:12]} (a newer push, whose run comments, or a PR "
                    f"number that is not this run's)"
                )
                return 0
        posted = comment.upsert(gh, repo, args.pr, body, args.marker, args.author)
    except GitHubError as e:
        _error(str(e))
        return 1
    print(f"{posted.action} comment {posted.comment_id} on {repo}#{args.pr}: {posted.url or ''}")
    return 0


def _push_history(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    if not (run_dir / "metadata.json").is_file():
        _error(f"{args.run_dir} is not a run directory (no metadata.json); give `bench run`'s")
        return 2
    # the results history and the baseline format, only when a run is filed
    from ..history import store
    from ..results import baseline

    def update(checkout: Path) -> str | None:
        added = store.add(checkout / HISTORY_DIR, run_dir, machine=args.machine)
        if not added.added:
            return None  # filed by an earlier push: nothing changes
        message = f"history: add {added.path.relative_to(checkout)}"
        if args.baseline:
            saved = baseline.save(run_dir, checkout / BASELINES_DIR)
            message += f"\n\nbaseline: {saved.relative_to(checkout)}"
        return message

    try:
        pushed = datapush.push_with_retry(
            update,
            repo=args.repo_dir,
            remote=args.remote,
            branch=args.branch,
            attempts=args.attempts,
        )
    except datapush.PushError as e:
        _error(str(e))
        return 1
    except (ValueError, OSError) as e:  # a run the history or the baseline refuses
        _error(str(e))
        return 2
    where = f"{args.remote}/{args.branch}"
    if pushed.pushed:
        print(f"pushed {pushed.commit} to {where}: {(pushed.message or '').splitlines()[0]}")
    else:
        print(f"{args.run_dir} is already in the history on {where}: nothing pushed")
    return 0


def _pr_number(args: argparse.Namespace) -> int:
    try:
        number = comment.read_pr_number(args.file)
    except (ValueError, OSError) as e:
        _error(str(e))
        return 2
    print(number)
    return 0
