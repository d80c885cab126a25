"""`bench ci comment`: one sticky comment per PR, created then updated in place, found on any
page, foreign comments untouched, clear errors, bodies cut to fit; against a fake GitHub API."""

from __future__ import annotations

import subprocess

import pytest

from bench import cli
from bench.ci import comment
from bench.ci.github import GitHub, GitHubError, next_link
from tests.bench.ci.fake_github import BOT, TOKEN, FakeGitHub
from tests.helpers import bench_env, run_bench

REPO = "octo-org/mnist-kernels"
PR = 7
RUN_URL = "https://github.example/octo-org/mnist-kernels/actions/runs/123"
COMPARE = """## Benchmark comparison

:x: **1 regression(s)**. 1 slower, 0 faster, 5 same.

- baseline: `reports/ab/base` (run; cpu)
- current: `reports/ab/head` (run; cpu)

| config | baseline | current | ratio [95% CI] | p (Holm) | verdict |
|---|---|---|---|---|---|
| jit update 784,10 b=128 | 1.00 ms | 1.30 ms | 1.30 [1.25, 1.35] | 0.001 | slower |
"""


@pytest.fixture
def api():
    with FakeGitHub() as fake:
        yield fake


def post(api: FakeGitHub, md_file, *extra: str, token: str | None = TOKEN, pr: int = PR):
    env = bench_env(GITHUB_API_URL=api.url)
    env.pop("GITHUB_TOKEN", None)
    if token is not None:
        env["GITHUB_TOKEN"] = token
    args = ["--repo", REPO, "--pr", str(pr), "--body-file", str(md_file), "--run-url", RUN_URL]
    return run_bench("ci", "comment", *args, *extra, env=env, timeout=60)


@pytest.fixture
def post_here(api, monkeypatch, capsys):
    """:func:`post` in this process (faster): ``bench.cli.main`` with the same arguments."""

    def run(md_file, *extra: str, token: str | None = TOKEN, pr: int = PR):
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        if token is None:
            monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        else:
            monkeypatch.setenv("GITHUB_TOKEN", token)
        args = ["--repo", REPO, "--pr", str(pr), "--body-file", str(md_file)]
        code = cli.main(["ci", "comment", *args, "--run-url", RUN_URL, *extra])
        out = capsys.readouterr()
        return subprocess.CompletedProcess([], code, out.out, out.err)

    return run


def writes(api: FakeGitHub) -> list[tuple[str, str]]:
    return [r for r in api.state.requests if r[0] in ("POST", "PATCH")]


def test_the_first_run_creates_the_comment_and_later_runs_update_it(api, tmp_path):
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    r = post(api, md)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created comment")
    (first,) = api.state.comments[PR]
    body = first["body"]
    assert body.startswith(comment.MARKER + "\n")
    head = body.split("\n\n")[0]
    assert RUN_URL in head and "Benchmark A/B" in head
    assert body.split("\n\n")[1] == ":x: **1 regression(s)**. 1 slower, 0 faster, 5 same."
    assert body.count(":x: **1 regression(s)**") == 1  # the verdict is not repeated
    assert "| jit update 784,10 b=128 |" in body

    md.write_text(COMPARE.replace(":x: **1 regression(s)**", ":white_check_mark: No regression"))
    r = post(api, md)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("updated comment")
    (again,) = api.state.comments[PR]  # still one comment: the same one, a new body
    assert again["id"] == first["id"]
    assert ":white_check_mark: No regression" in again["body"]
    assert ":x:" not in again["body"]

    n = len(writes(api))
    r = post(api, md)  # the same body again: nothing to write
    assert r.returncode == 0 and r.stdout.startswith("unchanged"), r.stdout + r.stderr
    assert len(writes(api)) == n and len(api.state.comments[PR]) == 1


def test_the_marker_comment_on_a_later_page_is_found(api, post_here, tmp_path):
    for i in range(3):
        api.state.add(PR, f"review comment {i}")
    mine = api.state.add(PR, f"{comment.MARKER}\nold table", login=BOT)
    api.state.add(PR, "one more")
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    r = post_here(md, "--author", BOT)
    assert r.returncode == 0, r.stderr
    assert any("page=2" in path for method, path in api.state.requests if method == "GET")
    assert writes(api) == [("PATCH", f"/repos/{REPO}/issues/comments/{mine['id']}")]
    assert len(api.state.comments[PR]) == 5
    assert "| jit update" in api.state.find(mine["id"])["body"]


def test_foreign_comments_are_never_touched(api, post_here, tmp_path):
    plain = api.state.add(PR, "LGTM, but is it faster?")
    quoted = api.state.add(PR, f"{comment.MARKER}\nsomeone copied the marker", login="mallory")
    middle = api.state.add(PR, f"see above: {comment.MARKER}", login=BOT)  # not at the start
    before = {c["id"]: c["body"] for c in (plain, quoted, middle)}
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    r = post_here(md, "--author", BOT)
    assert r.returncode == 0, r.stderr
    assert [m for m, _ in writes(api)] == ["POST"]
    assert {c["id"]: c["body"] for c in api.state.comments[PR][:3]} == before
    assert len(api.state.comments[PR]) == 4


def test_a_token_without_write_permission_is_a_clear_error(api, tmp_path):
    api.state.forbid_writes = True
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    r = post(api, md)
    assert r.returncode == 1
    assert "ci: error:" in r.stderr and "HTTP 403" in r.stderr
    assert "Resource not accessible by integration" in r.stderr
    assert "pull-requests: write" in r.stderr and "workflow_run" in r.stderr
    assert PR not in api.state.comments


def test_a_bad_or_missing_token_says_so(api, post_here, tmp_path):
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    r = post_here(md, token="wrong")
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "GITHUB_TOKEN" in r.stderr
    r = post_here(md, token=None)
    assert r.returncode == 1 and "GITHUB_TOKEN is not set" in r.stderr
    assert not writes(api)


def test_a_long_table_is_cut_below_the_limit_with_a_note(api, post_here, tmp_path):
    rows = [f"| config {i} | 1.00 ms | 1.01 ms | 1.01 | 0.5 | same |" for i in range(3000)]
    md = tmp_path / "compare.md"
    md.write_text(COMPARE + "\n<details><summary>all</summary>\n\n" + "\n".join(rows) + "\n")
    assert len(md.read_text()) > 65536
    r = post_here(md, "--artifact", "bench-report")
    assert r.returncode == 0, r.stderr
    body = api.state.comments[PR][0]["body"]
    assert len(body) < 65536
    assert body.startswith(comment.MARKER)
    assert "**Truncated**" in body and "artifact `bench-report`" in body and RUN_URL in body
    assert body.count("<details") == body.count("</details>")
    kept = body.split("\n\n---\n")[0].splitlines()
    assert kept[-2].startswith("| config ") and kept[-2].endswith("| same |")  # whole lines


def test_a_stale_run_or_a_foreign_pr_number_is_not_posted(api, post_here, tmp_path):
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    api.state.heads[PR] = "b" * 40
    r = post_here(md, "--head-sha", "a" * 40)
    assert r.returncode == 0 and "not commenting" in r.stderr, r.stderr
    assert not writes(api)
    r = post_here(md, "--head-sha", "b" * 40)
    assert r.returncode == 0, r.stderr
    assert "commit `bbbbbbbbbbbb`" in api.state.comments[PR][0]["body"]


def test_a_missing_table_fails_unless_allowed(api, post_here, tmp_path):
    missing = tmp_path / "nothing.md"
    r = post_here(missing)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = post_here(missing, "--allow-missing", "--conclusion", "failure")
    assert r.returncode == 0, r.stderr
    assert "No comparison" in api.state.comments[PR][0]["body"]
    assert "`failure`" in api.state.comments[PR][0]["body"]


@pytest.mark.parametrize(
    "args",
    [
        ["--repo", "not a repo"],
        ["--repo", REPO, "--marker", "sticky"],
        ["--repo", REPO, "--marker", "<!-- a -- b -->"],
        ["--repo", REPO, "--head-sha", "main; rm -rf /"],
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, monkeypatch, args):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # never reached
    md = tmp_path / "compare.md"
    md.write_text(COMPARE)
    assert cli.main(["ci", "comment", "--pr", "1", "--body-file", str(md), *args]) == 2
    assert "ci: error:" in capsys.readouterr().err


def test_split_verdict_and_plain_markdown():
    verdict, rest = comment.split_verdict(COMPARE)
    assert verdict.startswith(":x:") and rest.startswith("- baseline:")
    assert comment.split_verdict("| a | b |\n|---|---|") == ("", "| a | b |\n|---|---|")
    assert comment.split_verdict("# Title\n\n**Bold** verdict\nmore")[0] == "**Bold** verdict"


def test_truncate_closes_an_open_code_fence():
    text = "intro\n```\n" + "\n".join(f"line {i}" for i in range(1000)) + "\n```\nafter"
    out = comment.truncate(text, 500)
    assert len(out) <= 500 and out.endswith("\n```") and out.count("```") == 2


def test_pagination_follows_next_links_only_on_the_api_host():
    assert next_link('<https://h/x?page=2>; rel="next", <https://h/x?page=9>; rel="last"') == (
        "https://h/x?page=2"
    )
    assert next_link('<https://h/x?page=8>; rel="prev", <https://h/x?page=9>; rel="last"') is None
    assert next_link(None) is None
    gh = GitHub("t", "https://api.example")
    assert gh.url("/repos/a/b") == "https://api.example/repos/a/b"
    with pytest.raises(GitHubError, match="refusing to send the token"):
        gh.url("https://elsewhere.example/repos/a/b")
