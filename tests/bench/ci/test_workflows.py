"""The workflows in .github/workflows: valid against GitHub's schema (when check-jsonschema is
installed; .ci/run installs it and checks them first) and holding to the rules that keep a
fork's pull request from reaching a write token, a secret or the self-hosted GPU runner."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def text(name: str) -> str:
    return (WORKFLOWS / name).read_text()


def test_the_workflows_match_githubs_schema():
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    r = subprocess.run([*cmd, *files], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_workflow_says_what_it_may_do_and_never_forces(name):
    doc = text(name)
    assert doc.startswith("#"), "the header comment says what the workflow does"
    assert re.search(r"^permissions:", doc, re.M), "a top-level permissions block"
    assert "pull_request_target" not in doc  # runs a PR's code with a write token
    assert not re.search(r"push\s+(-f|--force)|\+refs/heads/\S+:refs/heads", doc)


def test_the_pr_workflow_cannot_write():
    doc = text("bench.yml")
    assert "secrets." not in doc and ": write" not in doc
    assert "name: bench-comment" in doc  # the hand-off to the comment workflow


def test_the_comment_workflow_runs_the_default_branch_and_checks_the_artifact():
    doc = text("bench-comment.yml")
    assert "workflows: [bench]" in doc
    assert "github.event.workflow_run.event == 'pull_request'" in doc
    assert "ref: ${{ github.event.repository.default_branch }}" in doc
    assert "run-id: ${{ github.event.workflow_run.id }}" in doc
    assert doc.index("bench ci pr-number") < doc.index("bench ci comment")
    assert "--head-sha" in doc


def test_the_gpu_runner_never_takes_a_fork():
    doc = text("bench-gpu.yml")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in doc
    assert "contains(github.event.pull_request.labels.*.name, 'bench-gpu')" in doc
    assert "runs-on: [self-hosted, linux, gpu]" in doc
    assert re.search(r"types: \[labeled, synchronize\]", doc)
