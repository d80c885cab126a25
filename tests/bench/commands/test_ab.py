"""`bench ab` end to end against a throwaway git repository, plus its pure helpers.

The repository (built once per module) has three commits: a README only (older than the
worker protocol), this project's source as it is in the working tree (``fast``), and the
same source with the jit variant's update doing its SGD step eight times (``slow``). The
working tree is left at ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
ORIGINAL = (
    "update_fn = _with_options(functools.partial(model.update, lr=lr, compute=cd), "
    "donate_argnums=0)"
)
SLOW = """def _slow_update(params, batch):
        for _ in range(8):  # eight SGD steps where there was one
            params = model.update(params, batch, lr=lr, compute=cd)
        return params

    update_fn = _with_options(_slow_update, donate_argnums=0)"""
# tiny, and no redoing under other jobs' load (--max-foreign-load 1); 2 screening passes and 3
# confirming ones for a suspect
TINY = (  # noqa: SIM905 - a line per flag otherwise
    "--quick --variants jit --kernels update --layers 784,64,10 --batch-sizes 128 "
    "--dataset synthetic --quiet --max-foreign-load 1 --repeats 2 --confirm 3"
).split()


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("ab-repo")
    git(r, "init", "-q")
    (r / "README.md").write_text("predates the benchmark worker\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "old")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("mnist_kernels", "bench"):
        shutil.copytree(ROOT / name, r / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", r / "pyproject.toml")
    (r / ".gitignore").write_text("__pycache__/\nreports/\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "fast")
    variants = r / "mnist_kernels" / "variants.py"
    head, _, tail = variants.read_text().partition("def _jit(")
    body, _, rest = tail.partition("\n@register(")  # the jit variant's builder only
    assert ORIGINAL in body, "the jit variant changed: update the slow patch"
    variants.write_text(f"{head}def _jit({body.replace(ORIGINAL, SLOW)}\n@register({rest}")
    git(r, "commit", "-qam", "slow")
    return r


def bench_ab(
    cwd: Path, *args: str, env: dict[str, str] | None = None, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(pythonpath or cwd), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench", "ab", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def worktrees(repo: Path) -> list[str]:
    return [
        ln
        for ln in git(repo, "worktree", "list", "--porcelain").splitlines()
        if ln.startswith("worktree ")
    ]


def verdicts(out: Path) -> list[str]:
    return [r["verdict"] for r in json.loads((out / "compare.json").read_text())["rows"]]


def test_slower_head_exits_1(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    res = bench_ab(repo, "--base", "HEAD~1", "--head", "HEAD", "--out", str(out), *TINY)
    assert res.returncode == 1, res.stderr + res.stdout
    assert verdicts(out) == ["slower"]
    assert "REGRESSION" in res.stderr
    for side in ("base", "head"):
        assert (out / side / "results.jsonl").exists() and (out / side / "results.csv").exists()
    assert (out / "compare.md").read_text().startswith("## Benchmark comparison")
    meta = {s: json.loads((out / s / "metadata.json").read_text()) for s in ("base", "head")}
    assert meta["base"]["git"]["commit"] == git(repo, "rev-parse", "HEAD~1")
    assert meta["head"]["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert meta["base"]["hardware_fingerprint"] == meta["head"]["hardware_fingerprint"]
    row = json.loads((out / "head" / "results.jsonl").read_text().splitlines()[0])
    assert row["status"] == "ok" and set(row["ab_first"].split(",")) == {"base", "head"}
    # a suspect after its 2 screening passes, judged on its 3 confirming ones
    assert row["suspect"] is True and row["passes_screen"] == 2 and row["repeats"] == 5
    (judged,) = json.loads((out / "compare.json").read_text())["rows"]
    assert judged["family"] == "confirmed" and judged["passes"]["n_cur"] == 3
    assert "3 confirming passes after 2 screening" in judged["note"]
    assert len(worktrees(repo)) == 1  # the temporary worktrees are gone


def test_same_code_exits_0(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    # same code on both sides: by construction this exits 1 with a chance of at most --alpha
    # (whatever this machine's noise), so a small alpha keeps the test from ever flaking
    res = bench_ab(repo, "--base", "HEAD", "--out", str(out), "--alpha", "0.001", *TINY)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "slower" not in verdicts(out)
    head = json.loads((out / "head" / "metadata.json").read_text())
    assert head["ab"]["ref"] == "working tree"
    row = json.loads((out / "base" / "results.jsonl").read_text().splitlines()[0])
    assert row["repeats"] == row["repeats_ok"] == (5 if row["suspect"] else 2)
    assert len(row["ab_first"].split(",")) == row["repeats"]
    # a second run into the same OUT replaces the first one's results
    again = bench_ab(repo, "--base", "HEAD", "--out", str(out), "--alpha", "0.001", *TINY)
    assert again.returncode == 0, again.stderr
    assert len((out / "base" / "results.jsonl").read_text().splitlines()) == 1
    assert len(worktrees(repo)) == 1


def test_bad_input_exits_2(repo: Path, tmp_path: Path) -> None:
    res = bench_ab(repo, "--base", "no-such-ref", "--out", str(tmp_path / "a"), *TINY)
    assert res.returncode == 2 and "'no-such-ref' is not a commit" in res.stderr
    res = bench_ab(repo, "--base", "HEAD~2", "--out", str(tmp_path / "b"), *TINY)
    assert res.returncode == 2 and "too old for A/B" in res.stderr
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    res = bench_ab(outside, "--base", "HEAD", *TINY, pythonpath=repo)
    assert res.returncode == 2 and "not inside a git repository" in res.stderr
    foreign = tmp_path / "foreign"
    (foreign / "base").mkdir(parents=True)
    res = bench_ab(repo, "--base", "HEAD", "--out", str(foreign), *TINY)
    assert res.returncode == 2 and "not bench ab's" in res.stderr
    assert len(worktrees(repo)) == 1


def test_crashing_workers_exit_2(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    res = bench_ab(
        repo,
        "--base",
        "HEAD",
        "--out",
        str(out),
        *TINY,
        env={"MNIST_BENCH_INJECT_FAULT": "crash:jit"},
    )
    assert res.returncode == 2 and "no configuration ran on both sides" in res.stderr
    for side in ("base", "head"):
        row = json.loads((out / side / "results.jsonl").read_text())
        assert row["status"] == "error" and "exited with code 3" in row["error"]
    assert len(worktrees(repo)) == 1


def test_interrupt_removes_worktrees(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    env = {**os.environ, "PYTHONPATH": str(repo), "MNIST_BENCH_INJECT_FAULT": "hang:jit"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "ab", "--base", "HEAD", "--out", str(out), *TINY],
        cwd=repo,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # the measuring has started once this line is out
        if line.startswith("A/B:"):
            break
    time.sleep(3)  # both workers are up and the first one hangs
    assert len(worktrees(repo)) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert len(worktrees(repo)) == 1
    assert json.loads((out / "ab.json").read_text())["exit_code"] == 130


#: the last commit with the layout before bench/runner and bench/measure (protocol 0)
BEFORE_LAYERS = "77879d1"


def test_a_base_from_before_the_layered_layout_runs_its_own_worker(tmp_path: Path) -> None:
    """The base commit's tree has `bench/worker.py` (protocol 0), the head this tree: each side
    measures with its own worker and the comparison works."""
    try:
        archive = subprocess.run(
            ["git", "archive", BEFORE_LAYERS, "bench", "mnist_kernels", "pyproject.toml"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, OSError):
        pytest.skip(f"commit {BEFORE_LAYERS} is not in this clone (a shallow one?)")
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    subprocess.run(["tar", "-x", "-C", str(r)], input=archive, check=True)
    (r / ".gitignore").write_text("__pycache__/\nreports/\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "before the layers")
    for name in ("mnist_kernels", "bench"):
        shutil.rmtree(r / name)
        shutil.copytree(ROOT / name, r / name, ignore=shutil.ignore_patterns("__pycache__"))
    git(r, "add", "-A")
    git(r, "commit", "-qm", "layers")
    out = tmp_path / "ab"
    res = bench_ab(r, "--base", "HEAD~1", "--out", str(out), *TINY)
    # the verdict is timing's business (one pass of a tiny kernel on a shared machine); here:
    # both sides measured the same configuration, matched and compared
    assert res.returncode in (0, 1), res.stderr + res.stdout
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert "worker-base-cpu-1.log" in logs and "worker-head-cpu-1.log" in logs
    for side in ("base", "head"):
        row = json.loads((out / side / "results.jsonl").read_text().splitlines()[0])
        assert row["status"] == "ok" and row["step_median_s"] > 0
    assert verdicts(out)[0] in ("same", "slower", "faster")  # not new, missing or error
