"""Pushing to the data branch while other jobs push: a bare repository in tmp_path is the
remote, clones of it are the jobs. The branch is created as an orphan when missing; a push that
loses a race is re-applied on the new tip, never forced (the remote refuses non-fast-forward
pushes, so a forced one would fail these tests); running out of attempts is a clear error."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from bench import cli
from bench.ci import datapush
from bench.ci.datapush import PushError, push_with_retry
from tests.helpers import make_row, write_run

BRANCH = "bench-data"


def no_pause(seconds: float) -> None:
    pass


def quiet(text: str) -> None:
    pass


@pytest.fixture(autouse=True)
def git_env(tmp_path, monkeypatch):
    """A git identity and configuration of the tests' own: the user's is neither read nor
    written."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test Pusher")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "pusher@example.invalid")


def git(*args: str, cwd: Path) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout.strip()


@pytest.fixture
def origin(tmp_path) -> Path:
    """A bare remote with a ``main`` branch (one commit), refusing non-fast-forward pushes."""
    bare = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("config", "receive.denyNonFastForwards", "true", cwd=bare)
    git("config", "receive.denyDeletes", "true", cwd=bare)
    seed = tmp_path / "seed"
    git("clone", "-q", str(bare), str(seed), cwd=tmp_path)
    (seed / "README.md").write_text("code\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-q", "-m", "code", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    return bare


def clone(origin: Path, name: str) -> Path:
    path = origin.parent / name
    git("clone", "-q", str(origin), str(path), cwd=origin.parent)
    return path


def writer(name: str, text: str | None = None):
    """An update that writes ``name`` and says so."""

    def update(tree: Path) -> str:
        (tree / name).write_text(text if text is not None else f"{name}\n")
        return f"add {name}"

    return update


def branch_log(origin: Path) -> list[tuple[str, list[str], str]]:
    """``(commit, parents, subject)`` of the data branch, newest first."""
    out = git("log", "--format=%H %P|%s", BRANCH, cwd=origin)
    rows = []
    for line in out.splitlines():
        ids, subject = line.split("|", 1)
        sha, *parents = ids.split()
        rows.append((sha, parents, subject))
    return rows


def files(origin: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", BRANCH, cwd=origin).split()


def test_a_missing_branch_is_created_as_an_orphan(origin):
    job = clone(origin, "job")
    pushed = push_with_retry(writer("a.json"), repo=job, branch=BRANCH, sleep=no_pause, log=quiet)
    assert pushed.pushed and pushed.attempts == 1 and pushed.message == "add a.json"
    (only,) = branch_log(origin)
    assert only == (pushed.commit, [], "add a.json")  # a root commit: main's files are not there
    assert files(origin) == ["a.json"]
    # the job's own checkout is as it was: on main, clean, no worktree left behind
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=job) == "main"
    assert git("status", "--porcelain", cwd=job) == ""
    assert len(git("worktree", "list", cwd=job).splitlines()) == 1


@pytest.mark.parametrize("exists", [True, False], ids=["branch-exists", "both-create-it"])
def test_a_push_that_lost_the_race_is_reapplied_on_the_new_tip(origin, exists):
    a, b = clone(origin, "a"), clone(origin, "b")
    if exists:
        push_with_retry(writer("seed.json"), repo=b, branch=BRANCH, sleep=no_pause, log=quiet)
    calls, pauses = [], []

    def update(tree: Path) -> str:
        calls.append(sorted(p.name for p in tree.iterdir() if p.name != ".git"))
        if len(calls) == 1:  # the other job pushes between our fetch and our push
            push_with_retry(writer("b.json"), repo=b, branch=BRANCH, sleep=no_pause, log=quiet)
        return writer("a.json")(tree)

    pushed = push_with_retry(update, repo=a, branch=BRANCH, sleep=pauses.append, log=quiet)
    assert pushed.pushed and pushed.attempts == 2 and len(pauses) == 1
    seed = ["seed.json"] if exists else []
    assert calls == [seed, sorted([*seed, "b.json"])]  # re-applied on the tip with b's file
    assert files(origin) == sorted(["a.json", "b.json", *seed])
    log = branch_log(origin)
    assert [s for _, _, s in log] == [
        "add a.json",
        "add b.json",
        *(["add seed.json"] if exists else []),
    ]
    assert all(parents == [log[i + 1][0]] for i, (_, parents, _) in enumerate(log[:-1]))
    assert log[-1][1] == []  # linear, from one root


def test_a_shallow_checkout_pushes_too(origin):
    """As actions/checkout leaves it (depth 1): the data branch's history is fetched whole."""
    b = clone(origin, "b")
    for name in ("one.json", "two.json"):
        push_with_retry(writer(name), repo=b, branch=BRANCH, log=quiet)
    shallow = origin.parent / "shallow"
    git("clone", "-q", "--depth", "1", f"file://{origin}", str(shallow), cwd=origin.parent)
    pushed = push_with_retry(writer("three.json"), repo=shallow, branch=BRANCH, log=quiet)
    assert pushed.pushed and files(origin) == ["one.json", "three.json", "two.json"]
    assert len(branch_log(origin)) == 3


def test_concurrent_pushers_all_land(origin):
    jobs = [clone(origin, f"job{i}") for i in range(4)]
    errors: list[BaseException] = []

    def job(i: int) -> None:
        try:
            push_with_retry(
                writer(f"run{i}.json"),
                repo=jobs[i],
                branch=BRANCH,
                attempts=30,
                backoff_s=0.005,
                log=quiet,
            )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert files(origin) == [f"run{i}.json" for i in range(4)]
    log = branch_log(origin)
    assert len(log) == 4 and sorted(s for _, _, s in log) == [f"add run{i}.json" for i in range(4)]
    assert [len(parents) for _, parents, _ in log] == [1, 1, 1, 0]


def test_running_out_of_attempts_is_a_clear_error(origin):
    a, mover = clone(origin, "a"), clone(origin, "mover")
    calls = []

    def update(tree: Path) -> str:
        calls.append(1)
        move = writer(f"other{len(calls)}.json")
        push_with_retry(move, repo=mover, branch=BRANCH, sleep=no_pause, log=quiet)
        return writer("a.json")(tree)

    with pytest.raises(PushError, match="after 3 attempts") as caught:
        push_with_retry(update, repo=a, branch=BRANCH, attempts=3, sleep=no_pause, log=quiet)
    assert "nothing was forced" in str(caught.value)
    assert len(calls) == 3
    assert "a.json" not in files(origin) and len(branch_log(origin)) == 3
    assert len(git("worktree", "list", cwd=a).splitlines()) == 1


def test_an_update_that_changes_nothing_pushes_nothing(origin):
    job = clone(origin, "job")
    first = push_with_retry(writer("a.json", "x"), repo=job, branch=BRANCH, log=quiet)
    again = push_with_retry(writer("a.json", "x"), repo=job, branch=BRANCH, log=quiet)
    assert first.pushed and not again.pushed and again.commit is None
    assert len(branch_log(origin)) == 1


def test_a_refused_push_is_not_retried(origin):
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch hook declined' >&2\nexit 1\n")
    hook.chmod(0o755)
    calls = []

    def update(tree: Path) -> str:
        calls.append(1)
        return writer("a.json")(tree)

    with pytest.raises(PushError, match="refused it") as caught:
        push_with_retry(update, repo=clone(origin, "job"), branch=BRANCH, log=quiet)
    assert "protected branch hook declined" in str(caught.value)
    assert len(calls) == 1


def test_an_error_in_the_update_propagates_and_cleans_up(origin):
    job = clone(origin, "job")

    def update(tree: Path) -> str:
        raise ValueError("not a run directory")

    with pytest.raises(ValueError, match="not a run directory"):
        push_with_retry(update, repo=job, branch=BRANCH, log=quiet)
    assert len(git("worktree", "list", cwd=job).splitlines()) == 1
    assert git("ls-remote", "--heads", "origin", BRANCH, cwd=job) == ""


def test_bad_targets_are_refused_before_anything_is_done(origin, tmp_path):
    job = clone(origin, "job")
    with pytest.raises(PushError, match="no remote 'upstream'"):
        push_with_retry(writer("a"), repo=job, remote="upstream", log=quiet)
    with pytest.raises(PushError, match="not a valid branch name"):
        push_with_retry(writer("a"), repo=job, branch="bad..name", log=quiet)
    (tmp_path / "plain").mkdir()
    with pytest.raises(PushError, match="not in a git checkout"):
        push_with_retry(writer("a"), repo=tmp_path / "plain", log=quiet)


def test_the_bot_commits_where_git_knows_no_identity(origin, monkeypatch):
    for role in ("AUTHOR", "COMMITTER"):
        for key in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{key}")
    job = clone(origin, "job")
    env = datapush.identity_env(job)
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == datapush.BOT_NAME
    push_with_retry(writer("a.json"), repo=job, branch=BRANCH, log=quiet)
    who = git("log", "-1", "--format=%an <%ae>|%cn", BRANCH, cwd=origin)
    assert who == f"{datapush.BOT_NAME} <{datapush.BOT_EMAIL}>|{datapush.BOT_NAME}"
    git("config", "user.name", "Configured Name", cwd=job)
    git("config", "user.email", "me@example.invalid", cwd=job)
    assert "GIT_AUTHOR_NAME" not in datapush.identity_env(job)


# --- `bench ci push-history` ------------------------------------------------------------------


def test_push_history_refuses_a_directory_that_is_no_run(tmp_path, capsys):
    code = cli.main(["ci", "push-history", str(tmp_path), "--machine", "m"])
    assert code == 2 and "not a run directory" in capsys.readouterr().err


def test_push_history_files_the_run_once(origin, tmp_path, capsys):
    pytest.importorskip("bench.history.store")
    job = clone(origin, "job")
    commit = git("rev-parse", "HEAD", cwd=job)
    meta = {
        "schema_version": 1,
        "run_id": "run-1",
        "host": "box-a",
        "hardware_fingerprint": "fp-box-a",
        "git": {"commit": commit, "commit_time": "2025-01-02T03:04:05+00:00", "dirty": False},
    }
    run = write_run(tmp_path / "run-1", [make_row()], meta=meta)
    args = ["ci", "push-history", str(run), "--machine", "gha-test", "--repo-dir", str(job)]
    assert cli.main([*args, "--baseline"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("pushed ")
    names = files(origin)
    assert f"history/gha-test/{commit[:12]}/run-1.json" in names
    assert "baselines/fp-box-a.json" in names
    assert cli.main(args) == 0  # already there: nothing pushed
    assert "already in the history" in capsys.readouterr().out
    assert len(branch_log(origin)) == 1


def test_the_refusal_hint_reads_git_s_words_not_a_hash_s_digits():
    """A hook's refusal whose output holds a commit hash with the digits 403 in it is still a
    refusal (the hash once made this a token problem), and an HTTP 403 is still the token's."""
    hook = (
        "To origin.git\n!\t4facdb5d2b9e287af1d2e4033414c51b4d67a26f:refs/heads/bench-data\t"
        "[remote rejected] (pre-receive hook declined)\nremote: protected branch hook declined"
    )
    assert "refused it" in datapush.refusal_hint(hook, "bench-data")
    http = (
        "fatal: unable to access 'https://github.com/o/r/': The requested URL returned error: 403"
    )
    assert "token cannot push" in datapush.refusal_hint(http, "bench-data")
    assert "token cannot push" in datapush.refusal_hint("remote: Permission to o/r denied", "b")
    assert datapush.refusal_hint("something else", "b") == "see git's message"
