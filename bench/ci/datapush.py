"""Push a change to a data branch (the results history's ``bench-data``) safely while other jobs
push to it too.

:func:`push_with_retry` works in a temporary ``git worktree`` of the repository it is given (so
the checkout's remote and credentials apply, and its own files are left alone): it fetches the
branch, resets the worktree to it (an empty tree when the remote has no such branch: the first
push creates it as an orphan branch), calls ``update(worktree) -> commit message``, commits
what changed and pushes that commit to ``refs/heads/<branch>``, never forced. When the push is
rejected because the branch moved since the fetch (another job pushed first), it fetches again,
resets, calls ``update`` again on the new tip and pushes again, up to ``attempts`` times with a
jittered, growing pause. Re-applying is correct when ``update`` is idempotent (``bench history
add`` files a run once, whatever the store already holds), and safer than rebasing a commit of
JSON files. An ``update`` that changes nothing pushes nothing.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..format import say

DEFAULT_BRANCH = "bench-data"
DEFAULT_ATTEMPTS = 5
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
DEFAULT_MESSAGE = "bench: update the data branch"
#: what git prints when a push lost a race: the branch moved since it was fetched
RACE_SIGNS = (
    "[rejected]",
    "non-fast-forward",
    "fetch first",
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value",
)
#: seconds a git command may take (a fetch or push over the network included)
GIT_TIMEOUT_S = 300
MAX_PAUSE_S = 30.0

#: ``update(checkout_dir) -> commit message`` (None: a default message)
Update = Callable[[Path], str | None]


class PushError(RuntimeError):
    """The data branch could not be updated; the message says why and what to do."""


@dataclass(frozen=True)
class Pushed:
    """What :func:`push_with_retry` did: ``commit`` is None when nothing changed."""

    pushed: bool
    commit: str | None
    attempts: int
    message: str | None


def git(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """``git ARGS`` in ``cwd``, output captured; raises :class:`PushError` when it fails and
    ``check``, or when it does not finish in :data:`GIT_TIMEOUT_S`."""
    env = {**(env or os.environ), "GIT_TERMINAL_PROMPT": "0"}
    try:
        r = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise PushError(f"git {' '.join(args)} took over {GIT_TIMEOUT_S} s; giving up") from None
    except OSError as e:
        raise PushError(f"cannot run git: {e}; install git") from None
    if check and r.returncode != 0:
        raise PushError(f"git {' '.join(args)} failed in {cwd}: {(r.stderr or r.stdout).strip()}")
    return r


def identity_env(repo: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the bot as author and committer wherever neither
    the environment nor git's configuration names one."""
    out = dict(os.environ if env is None else env)
    for key, bot in (("name", BOT_NAME), ("email", BOT_EMAIL)):
        configured = git(["config", f"user.{key}"], repo, out, check=False).stdout.strip()
        for role in ("AUTHOR", "COMMITTER"):
            var = f"GIT_{role}_{key.upper()}"
            if not out.get(var) and not configured:
                out[var] = bot
    return out


def toplevel(path: str | Path) -> Path:
    """The root of the git checkout holding ``path``."""
    r = git(["rev-parse", "--show-toplevel"], Path(path), check=False)
    if r.returncode != 0:
        raise PushError(f"{path} is not in a git checkout: {r.stderr.strip()}")
    return Path(r.stdout.strip())


def check_target(repo: Path, remote: str, branch: str) -> None:
    """Raise :class:`PushError` unless ``remote`` exists and ``branch`` is a valid name."""
    if git(["check-ref-format", "--branch", branch], repo, check=False).returncode != 0:
        raise PushError(f"{branch!r} is not a valid branch name")
    r = git(["remote", "get-url", remote], repo, check=False)
    if r.returncode != 0:
        known = git(["remote"], repo, check=False).stdout.split()
        raise PushError(f"no remote {remote!r} in {repo} (it has: {', '.join(known) or 'none'})")
    if git(["rev-parse", "--verify", "--quiet", "HEAD"], repo, check=False).returncode != 0:
        raise PushError(f"{repo} has no commit yet; a worktree needs one")


@contextlib.contextmanager
def worktree(repo: Path) -> Iterator[Path]:
    """A temporary detached worktree of ``repo`` with nothing checked out; removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    tree = tmp / "checkout"
    git(["worktree", "add", "--quiet", "--detach", "--no-checkout", str(tree)], repo)
    try:
        yield tree
    finally:
        git(["worktree", "remove", "--force", str(tree)], repo, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        git(["worktree", "prune"], repo, check=False)


def fetch(repo: Path, remote: str, branch: str) -> str | None:
    """Fetch ``branch`` of ``remote`` into ``refs/remotes/<remote>/<branch>``; its commit, or
    None when the remote has no such branch."""
    ref = f"refs/remotes/{remote}/{branch}"
    r = git(
        ["fetch", "--no-tags", "--quiet", remote, f"+refs/heads/{branch}:{ref}"], repo, check=False
    )
    if r.returncode != 0:
        if "couldn't find remote ref" in r.stderr.lower():
            return None
        raise PushError(f"cannot fetch {branch} from {remote}: {r.stderr.strip()}")
    return git(["rev-parse", "--verify", f"{ref}^{{commit}}"], repo).stdout.strip()


def reset(tree: Path, base: str | None) -> None:
    """The worktree's files and index exactly ``base`` (nothing at all when None)."""
    if base is None:
        git(["read-tree", "--empty"], tree)
    else:
        git(["reset", "--quiet", "--hard", base], tree)
    git(["clean", "-q", "-f", "-d", "-x"], tree)


def commit(tree: Path, base: str | None, message: str | None, env: dict[str, str]) -> str | None:
    """A commit of the worktree's files on top of ``base`` (a root commit when None); None when
    they are ``base``'s own (or nothing, for a new branch)."""
    git(["add", "--all", "."], tree, env)
    new = git(["write-tree"], tree, env).stdout.strip()
    old = git(["rev-parse", f"{base}^{{tree}}"], tree).stdout.strip() if base else None
    empty = git(["hash-object", "-t", "tree", "/dev/null"], tree).stdout.strip()
    if new == (old or empty):
        return None
    parent = ["-p", base] if base else []
    args = ["commit-tree", new, *parent, "-m", message or DEFAULT_MESSAGE]
    return git(args, tree, env).stdout.strip()


def lost_race(output: str) -> bool:
    """Whether a failed push's output says the branch moved (as opposed to a refusal)."""
    return any(sign in output for sign in RACE_SIGNS)


def refusal_hint(output: str, branch: str) -> str:
    low = output.lower()
    # 403 as a word: git's output holds commit hashes, and one may contain the digits 403
    http_403 = re.search(r"\b403\b", low) is not None
    if http_403 or any(
        s in low for s in ("permission", "denied", "authentication", "could not read")
    ):
        return "the job's token cannot push: give it `permissions: contents: write`"
    if "[remote rejected]" in low or "protected" in low:
        return f"the remote refused it (branch protection or a hook): let CI push to {branch}"
    return "see git's message"


def push_with_retry(
    update: Update,
    *,
    repo: str | Path = ".",
    remote: str = "origin",
    branch: str = DEFAULT_BRANCH,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = say,
) -> Pushed:
    """Apply ``update`` to the tip of ``remote``'s ``branch`` and push it, fetching and
    re-applying when another push got there first; see the module's docstring.

    Raises:
      PushError: not a checkout, no such remote, a push refused for another reason than a race
        (no permission, a protected branch), or every one of ``attempts`` pushes lost a race.
      Whatever ``update`` raises, after the worktree is removed.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    root = toplevel(repo)
    check_target(root, remote, branch)
    env = identity_env(root)
    last = ""
    with worktree(root) as tree:
        for attempt in range(1, attempts + 1):
            base = fetch(root, remote, branch)
            reset(tree, base)
            message = update(tree)
            sha = commit(tree, base, message, env)
            if sha is None:
                log(f"{remote}/{branch}: nothing to change")
                return Pushed(False, None, attempt, message)
            r = git(["push", "--porcelain", remote, f"{sha}:refs/heads/{branch}"], root, env, False)
            if r.returncode == 0:
                verb = "updated" if base else "created"
                log(f"{verb} {remote}/{branch} at {sha[:12]} (attempt {attempt}): {message}")
                return Pushed(True, sha, attempt, message)
            last = f"{r.stdout}\n{r.stderr}".strip()
            if not lost_race(last):
                raise PushError(
                    f"git push to {remote} {branch} failed: {last}; {refusal_hint(last, branch)}"
                )
            if attempt < attempts:
                pause = min(backoff_s * 2 ** (attempt - 1), MAX_PAUSE_S) * (0.5 + random.random())
                log(
                    f"{remote}/{branch} moved meanwhile (attempt {attempt}); again in {pause:.1f} s"
                )
                sleep(pause)
    raise PushError(
        f"gave up pushing to {remote} {branch} after {attempts} attempts: each push was rejected "
        f"because the branch moved meanwhile (other jobs pushing to it); nothing was forced. Run "
        f"the job again (the update is re-applied to the new tip), or allow more attempts. "
        f"Last git output: {last[-600:]}"
    )
