"""The report's two renderings: ``report.md`` (plots by relative path) and ``report.html``
(self-contained: plots embedded as base64 PNG data URIs, a little CSS, no scripts, every string
from results or metadata HTML-escaped)."""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .. import format as fmt

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, p.note { color: #555; font-size: 14px; max-width: 1100px; }
.scroll { overflow-x: auto; }
"""


@dataclasses.dataclass
class Block:
    """One item of a section: a table, a plot or a note (``kind``), with its file ``name``."""

    kind: str
    title: str = ""
    name: str = ""
    table: pd.DataFrame | None = None
    path: Path | None = None
    text: str = ""


@dataclasses.dataclass
class Section:
    title: str
    blocks: list[Block] = dataclasses.field(default_factory=list)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (``|`` and HTML escaped)."""
    return fmt.markdown_table(list(frame.columns), frame.itertuples(index=False))


def render_markdown(
    title: str,
    paths: Sequence[Path],
    sections: Sequence[Section],
    left_out: Sequence[tuple[str, str]],
    out: Path,
) -> str:
    """``report.md``: plots referenced by path relative to ``out``."""
    parts = [f"# {fmt.md_text(title)}", ""]
    parts += [f"Runs: {', '.join(fmt.md_text(r) for r in paths)}", ""]
    for sec in sections:
        parts += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if b.kind == "table" and b.table is not None:
                parts += [f"**{fmt.md_text(b.title)}** (`tables/{b.name}.csv`)", ""]
                parts += [markdown_table(b.table), ""]
            elif b.kind == "plot" and b.path is not None:
                rel = b.path.relative_to(out).as_posix()
                parts += [f"![{fmt.md_text(b.title)}]({rel})", "", f"*{fmt.md_text(b.text)}*", ""]
            else:
                parts += [fmt.md_text(b.text), ""]
    parts += ["## Left out", ""]
    parts += [f"- {fmt.md_text(w)}: {fmt.md_text(r)}" for w, r in left_out] or ["Nothing."]
    return "\n".join(parts) + "\n"


def render_html(
    title: str,
    paths: Sequence[Path],
    sections: Sequence[Section],
    left_out: Sequence[tuple[str, str]],
) -> str:
    """``report.html``: self-contained, every string from the data escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<p class="note">Runs: ' + ", ".join(e(str(r)) for r in paths) + "</p>",
        "<nav><ul>"
        + "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections))
        + '<li><a href="#left-out">Left out</a></li></ul></nav>',
    ]
    for i, sec in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{e(sec.title)}</h2>')
        for b in sec.blocks:
            if b.kind == "table" and b.table is not None:
                parts.append(f"<h3>{e(b.title)}</h3>")
                body = b.table.to_html(index=False, escape=True, na_rep="—", border=0)
                parts.append(f'<div class="scroll">{body}</div>')
            elif b.kind == "plot" and b.path is not None:
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.title)}">'
                    f"<figcaption><b>{e(b.title)}.</b> {e(b.text)}</figcaption></figure>"
                )
            else:
                parts.append(f'<p class="note">{e(b.text)}</p>')
    parts.append('<h2 id="left-out">Left out</h2>')
    if left_out:
        items = "".join(f"<li><b>{e(w)}</b>: {e(r)}</li>" for w, r in left_out)
        parts.append(f'<ul class="left-out">{items}</ul>')
    else:
        parts.append('<p class="note">Nothing: every table and plot was made.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
