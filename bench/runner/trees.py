"""Source trees of other commits, for measuring them beside this one (``bench ab``): the
repository, a ref resolved to its commit, and a temporary ``git worktree`` of it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class GitError(Exception):
    """A git command failed, or a ref names no commit; the message says what to do."""


def git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GitError(f"git {' '.join(args)}: {e}") from e
    if out.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def repo_root(cwd: Path) -> Path:
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd))
    except GitError:
        why = "bench ab checks out commits of the repository it runs in"
        raise GitError(f"{cwd} is not inside a git repository: {why}") from None


def resolve(repo: Path, ref: str) -> str:
    """The commit ``ref`` names, or GitError saying it names none."""
    try:
        return git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo)
    except GitError:
        hint = "a branch, tag or sha; fetch a remote branch first, e.g. `git fetch origin main`"
        raise GitError(f"{ref!r} is not a commit in {repo} ({hint})") from None


@contextlib.contextmanager
def worktree(repo: Path, commit: str, label: str) -> Iterator[Path]:
    """``commit`` checked out (detached) in a temporary directory, removed on the way out."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-ab-{label}-"))
    try:
        git(["worktree", "add", "--detach", str(path), commit], repo)
        yield path
    finally:
        with contextlib.suppress(GitError):
            git(["worktree", "remove", "--force", str(path)], repo)
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(GitError):
            git(["worktree", "prune"], repo)
