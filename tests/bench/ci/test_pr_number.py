"""`bench ci pr-number FILE`: the PR number handed from a PR's run (a fork's code may have
written it) is accepted only as a positive integer."""

from __future__ import annotations

import pytest

from bench import cli
from bench.ci import comment
from tests.helpers import run_bench


@pytest.mark.parametrize("text", ["1", "42\n", " 1234 \r\n", "2147483647"])
def test_a_positive_integer_is_accepted(text):
    assert comment.pr_number(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "-3",
        "+3",
        "007",
        "3.0",
        "1e3",
        "0x10",
        "12 13",
        "42; echo pwned",
        "4\n2",
        "٣",
        "１２",
        "99999999999",
        "42\x00",
        "$(id)",
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="not a pull-request number"):
        comment.pr_number(text)


def test_the_file_must_be_short_ascii(tmp_path):
    long = tmp_path / "long"
    long.write_text("1" + " " * 100)
    with pytest.raises(ValueError, match="over 64 bytes"):
        comment.read_pr_number(long)
    wide = tmp_path / "wide"
    wide.write_text("４２", encoding="utf-8")
    with pytest.raises(ValueError, match="not ASCII"):
        comment.read_pr_number(wide)


def test_the_command_prints_it_or_exits_2(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("17\n")
    bad.write_text("::warning::17")
    r = run_bench("ci", "pr-number", str(good), timeout=60)
    assert (r.returncode, r.stdout) == (0, "17\n"), r.stderr
    assert cli.main(["ci", "pr-number", str(bad)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "ci: error:" in out.err and "::warning::" not in out.err  # not echoed
    assert cli.main(["ci", "pr-number", str(tmp_path / "absent")]) == 2
    assert "ci: error:" in capsys.readouterr().err
