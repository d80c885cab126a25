"""The sticky pull-request comment: one comment per PR, found by a hidden marker and updated in
place on every run.

The body is a header (the verdict line of the Markdown given, usually ``reports/ab/compare.md``,
the commit and a link to the workflow run) followed by the rest of that Markdown, cut at a line
boundary when it would not fit in a GitHub comment, with a note saying where the full table is
(the run's artifact). The comment is found among all the PR's comments (every page) by the
marker at the start of its body, and optionally by its author; a comment without it is never
touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .github import GitHub, GitHubError

MARKER = "<!-- mnist-kernels-bench:sticky -->"
#: GitHub refuses a comment body over 65536 characters; this leaves room for the way it counts
#: some characters (an emoji counts as two UTF-16 units)
MAX_BODY_CHARS = 65_000
#: how much of a Markdown file is read: it comes from a PR's run, which may be a fork's
MAX_READ_BYTES = 4 << 20
DEFAULT_ARTIFACT = "bench-report"
REPO_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True)
class Posted:
    """What :func:`upsert` did: ``action`` is ``created``, ``updated`` or ``unchanged``."""

    action: str
    comment_id: int
    url: str | None


def check_marker(marker: str) -> str:
    """``marker`` if it is a one-line HTML comment (``<!-- text -->``, hidden when rendered)."""
    if not re.fullmatch(r"<!--(?!-)[^\n]*?(?<!-)-->", marker) or "--" in marker[4:-3]:
        raise ValueError(
            f"marker {marker!r} is not a one-line HTML comment such as {MARKER!r}: "
            "it would show in the comment"
        )
    return marker


def check_repo(repo: str) -> str:
    """``repo`` if it reads ``OWNER/NAME``."""
    if not REPO_RE.fullmatch(repo or "") or repo.split("/")[1] in (".", ".."):
        raise ValueError(f"repository {repo!r} is not OWNER/NAME (e.g. octo-org/mnist-kernels)")
    return repo


def read_markdown(path: str | Path) -> str:
    """The first :data:`MAX_READ_BYTES` of ``path`` as text (bad UTF-8 replaced)."""
    with open(path, "rb") as f:
        return f.read(MAX_READ_BYTES).decode("utf-8", "replace")


def split_verdict(markdown: str) -> tuple[str, str]:
    """``(verdict, rest)``: the first line of text after the leading headings (``compare.md``'s
    verdict), and what follows it; ``("", markdown)`` when it starts with something else."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
        i += 1
    if i == len(lines) or re.match(r"\s*([|<>`]|[-*+]\s|\d+\.\s)", lines[i]):
        return "", markdown.strip("\n")
    return lines[i].strip(), "\n".join(lines[i + 1 :]).strip("\n")


def header(verdict: str, *, run_url: str | None, head_sha: str | None) -> str:
    """The comment's first lines: what it is, for which commit, the run, and the verdict."""
    parts = ["**Benchmark A/B** (`nox -s regress`)"]
    if head_sha:
        parts.append(f"commit `{head_sha[:12]}`")
    if run_url:
        parts.append(f"[workflow run]({run_url})")
    text = " · ".join(parts)
    return f"{text}\n\n{verdict}" if verdict else text


def missing_body(conclusion: str | None) -> str:
    """The Markdown when the run wrote no comparison (it failed or was cut short before)."""
    how = f" (it ended: `{conclusion}`)" if conclusion else ""
    return (
        f":grey_question: No comparison: the bench run wrote no `compare.md`{how}, so the A/B "
        "did not finish. Its log says why."
    )


def build_body(
    markdown: str,
    *,
    marker: str = MARKER,
    run_url: str | None = None,
    head_sha: str | None = None,
    artifact: str = DEFAULT_ARTIFACT,
    limit: int = MAX_BODY_CHARS,
) -> str:
    """The whole comment: marker, header with the verdict, the rest of ``markdown``; at most
    ``limit`` characters, cut at a line with a note naming ``artifact`` when longer."""
    verdict, rest = split_verdict(markdown)
    head = f"{marker}\n{header(verdict, run_url=run_url, head_sha=head_sha)}\n\n"
    if len(head) + len(rest) + 1 <= limit:
        return f"{head}{rest}".rstrip("\n") + "\n"
    where = f"of [the workflow run]({run_url})" if run_url else "of the workflow run"
    total = len(rest.splitlines())

    def note(shown: int) -> str:
        return (
            f"\n\n---\n:scissors: **Truncated**: {shown} of {total} lines shown; a GitHub "
            f"comment holds at most 65536 characters. The full comparison is `compare.md` in "
            f"the artifact `{artifact}` {where}.\n"
        )

    budget = limit - len(head) - len(note(total))
    if budget <= 0:
        raise ValueError(f"a comment limit of {limit} characters leaves no room for the table")
    kept = truncate(rest, budget)
    return f"{head}{kept}{note(len(kept.splitlines()))}"


def truncate(text: str, budget: int) -> str:
    """The longest run of whole lines of ``text`` that fits in ``budget`` characters once open
    code fences and ``<details>`` blocks are closed."""
    lines = text.splitlines()
    size, n = 0, 0
    while n < len(lines) and size + len(lines[n]) + 1 <= budget:
        size += len(lines[n]) + 1
        n += 1
    while True:
        kept = lines[:n]
        out = "\n".join(kept) + _closers(kept)
        if len(out) <= budget or n == 0:
            break
        n -= 1
    return out if n else text[: max(budget, 0)]


def _closers(lines: list[str]) -> str:
    out = ""
    if sum(1 for ln in lines if ln.lstrip().startswith("```")) % 2:
        out += "\n```"
    opened = sum(ln.count("<details") for ln in lines) - sum(ln.count("</details>") for ln in lines)
    return out + "\n</details>" * max(opened, 0)


def _mine(comment: Any, marker: str, author: str | None) -> bool:
    if not isinstance(comment, dict) or not isinstance(comment.get("body"), str):
        return False
    login = (comment.get("user") or {}).get("login")
    return comment["body"].lstrip().startswith(marker) and (author is None or login == author)


def find_comment(
    gh: GitHub, repo: str, pr: int, marker: str = MARKER, author: str | None = None
) -> dict[str, Any] | None:
    """The PR's oldest comment whose body starts with ``marker`` (by ``author`` if given),
    looked for on every page of the PR's comments; None when there is none."""
    for comment in gh.paginate(f"/repos/{repo}/issues/{pr}/comments"):
        if _mine(comment, marker, author):
            return comment
    return None


def upsert(
    gh: GitHub, repo: str, pr: int, body: str, marker: str = MARKER, author: str | None = None
) -> Posted:
    """Update the PR's sticky comment to ``body`` (which starts with ``marker``), or create it."""
    if not body.startswith(marker):
        raise ValueError("the body must start with the marker, or the next run will not find it")
    found = find_comment(gh, repo, pr, marker, author)
    if found is None:
        r = gh.request("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
        return Posted("created", int(r.data["id"]), r.data.get("html_url"))
    if found["body"] == body:
        return Posted("unchanged", int(found["id"]), found.get("html_url"))
    r = gh.request("PATCH", f"/repos/{repo}/issues/comments/{int(found['id'])}", {"body": body})
    return Posted("updated", int(r.data["id"]), r.data.get("html_url"))


def pr_head(gh: GitHub, repo: str, pr: int) -> str:
    """The commit at the head of pull request ``pr``."""
    r = gh.request("GET", f"/repos/{repo}/pulls/{pr}")
    sha = ((r.data or {}).get("head") or {}).get("sha") if isinstance(r.data, dict) else None
    if not isinstance(sha, str):
        raise GitHubError(f"GET /repos/{repo}/pulls/{pr}: no head commit in the answer")
    return sha


#: a pull-request number file holds a few digits; anything longer is refused unread
MAX_PR_FILE_BYTES = 64


def pr_number(text: str) -> int:
    """A pull-request number from untrusted text (an artifact of a fork's run): a positive
    decimal integer in ASCII digits, nothing else but surrounding whitespace."""
    s = text.strip(" \t\r\n")
    if not re.fullmatch(r"[1-9][0-9]{0,9}", s, re.ASCII):
        # the text itself is not echoed: it is untrusted and would land in the log
        raise ValueError(
            f"not a pull-request number ({len(text)} characters; expected a positive integer)"
        )
    return int(s)


def read_pr_number(path: str | Path) -> int:
    """:func:`pr_number` of the file ``path`` (at most :data:`MAX_PR_FILE_BYTES` bytes)."""
    with open(path, "rb") as f:
        raw = f.read(MAX_PR_FILE_BYTES + 1)
    if len(raw) > MAX_PR_FILE_BYTES:
        raise ValueError(f"{path}: not a pull-request number (over {MAX_PR_FILE_BYTES} bytes)")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a pull-request number (not ASCII)") from None
    try:
        return pr_number(text)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
