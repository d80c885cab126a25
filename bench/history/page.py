"""The trend page (``bench history publish``): one self-contained HTML file, like ``asv publish``
but a single page that opens from disk.

What it shows: a header (the store, when the page was made, the machines and branches, how many
runs, commits and configurations, the store files that were skipped), the detected changes of each
machine and branch newest first (with the CI check's verdict, :func:`.changes.failing`), and one
trend plot a configuration group, machine and branch: a group is one figure of one kernel, layer
sizes, dtype and device count, its variants and batch sizes one line each (at most
:data:`MAX_LINES` a panel, more panels below), commits in order along x, the figure's median on a
log y axis with each commit's interval as error bars, each detected step a dashed line at its
commit, red for a regression and green for an improvement, its ratio written beside it.

The page holds no script and refers to nothing outside itself: the CSS is inline and the plots
are inline SVG, their text drawn as glyph outlines (``svg.fonttype: path``), so they look the
same without any font installed. Every string from the store (machine labels, branch names,
commit ids, configuration labels, file paths: anyone can write a store file) is HTML-escaped.
matplotlib's SVG is parsed as XML and written back by :mod:`xml.etree` (which escapes every text
and attribute) after a check that it holds nothing but drawing (no script, no foreign object, no
event handler, no reference outside the SVG itself), its comments dropped and its ids prefixed so
that several SVGs live in one page. Figures are drawn on matplotlib's Agg canvas (no pyplot: no
global figure list to leak into) and dropped once written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from .. import format as fmt
from ..regression.sides import norm
from ..report import figure as fig_
from . import changes as ch
from . import store as st

#: commit ids are shown by their first 12 hex digits (as the store names its directories).
SHORT = 12
#: the most lines a panel draws; a group with more gets more panels, one below the other.
MAX_LINES = 8
#: the most changes listed a machine and branch (the newest).
MAX_CHANGES = 50
#: the longest legend entry (characters; longer ones are cut, ending in …).
MAX_NAME = 40
#: the most commit ids labelled along a panel's x axis (the rest thinned out).
MAX_TICKS = 40
#: a trend figure's width (inches): 1056 CSS px, within the page's 1100 px.
WIDTH_IN = 11.0
#: one panel's height (inches), commit ids below it included.
PANEL_IN = 4.2
#: what one trend figure shows: one figure of one configuration group on one machine and branch.
GROUP_KEY = ("machine", "branch", "metric", "kernel", "layer_sizes", "dtype", "n_devices")
KIND_COLOURS = {"regression": "#c62828", "improvement": "#2e7d32"}
METRIC_NAMES = {"step": "time per step", "compile": "cold compile time"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINE_STYLES = ("-", "--", ":", "-.")
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
#: what may not appear in a plot's SVG (lower case, namespace stripped).
FORBIDDEN_TAGS = frozenset(
    {"script", "foreignobject", "iframe", "object", "embed", "image", "a", "animate", "set"}
)

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
  padding: 0 1em; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; }
tr.regression td { background: #fdecea; }
tr.improvement td { background: #e8f5e9; }
tr.failing td { font-weight: bold; }
figure { margin: 1em 0 2em; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, p.note { color: #555; font-size: 14px; }
ul.problems li { color: #a00; font-family: monospace; }
.scroll { overflow-x: auto; }
code { font-size: 13px; }
"""


# --------------------------------------------------------------------------- the page


def publish(
    store_dir: str | Path,
    out_dir: str | Path,
    *,
    title: str | None = None,
    factor: float = ch.DEFAULT_FACTOR,
    metrics: Sequence[str] = ("step", "compile"),
) -> Path:
    """Write the trend page of ``store_dir`` as ``out_dir/index.html`` (``out_dir`` created).

    Args:
      store_dir: a results history (:mod:`bench.history.store`).
      out_dir: where the page goes; the page is the only file written.
      title: the page's title (default: ``Benchmark history``).
      factor: the CI check's threshold (a regression at the newest commit slower by more fails).
      metrics: the figures followed (``step``, ``compile``).

    Returns:
      The page's path.

    Raises:
      FileNotFoundError: ``store_dir`` does not exist.
    """
    history = st.load(store_dir)
    analysis = ch.analyse(history.rows, metrics=tuple(metrics))
    text = render(
        history, analysis, title=title or "Benchmark history", factor=factor, store=store_dir
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    tmp = page.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(page)
    return page


def render(
    history: st.History,
    analysis: ch.Analysis,
    *,
    title: str,
    factor: float = ch.DEFAULT_FACTOR,
    store: str | Path | None = None,
    now: _dt.datetime | None = None,
) -> str:
    """The trend page's HTML: header, changes, trend plots (see the module docstring).

    Args:
      history: :func:`bench.history.store.load`'s table and problems.
      analysis: :func:`bench.history.changes.analyse` of ``history.rows``.
      title: the page's title.
      factor: the CI check's threshold, to mark the changes it fails on.
      store: the store's path, shown in the header.
      now: the time the page says it was made (default: now).
    """
    e = html.escape
    when = (now or _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        *_header(history, store, when),
    ]
    if analysis.points.empty:
        parts.append(
            '<p class="note" id="nothing">Nothing to show yet: the store holds no finished '
            "measurement. File runs with <code>python -m bench history add RUN_DIR --store "
            "STORE</code>, then publish again.</p>"
        )
    else:
        parts += _summary(analysis, factor)
        parts += _trends(analysis)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _header(history: st.History, store: str | Path | None, when: str) -> list[str]:
    e = html.escape
    rows = history.rows
    branches = rows["branch"].fillna(ch.NO_BRANCH) if len(rows) else pd.Series(dtype=object)
    facts = [
        ("Store", str(store) if store is not None else fmt.MISSING),
        ("Generated", when),
        ("Machines", _join(rows["machine"]) if len(rows) else fmt.MISSING),
        ("Branches", _join(branches) if len(rows) else fmt.MISSING),
        ("Runs", str(rows["run_id"].nunique()) if len(rows) else "0"),
        ("Commits", str(rows["commit"].nunique()) if len(rows) else "0"),
        ("Configurations", str(rows["config_id"].nunique()) if len(rows) else "0"),
    ]
    out = [
        '<table class="facts">'
        + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
        + "</table>"
    ]
    if history.problems:
        out.append(f'<h2 id="problems">Skipped store files ({len(history.problems)})</h2>')
        items = "".join(f"<li>{e(p)}</li>" for p in history.problems)
        out.append(f'<ul class="problems">{items}</ul>')
    return out


def _join(values: pd.Series) -> str:
    return ", ".join(sorted({str(v) for v in values.dropna()})) or fmt.MISSING


# --------------------------------------------------------------------------- the changes


def _summary(analysis: ch.Analysis, factor: float) -> list[str]:
    """The changes of each machine and branch, newest first, and the check's verdict."""
    e = html.escape
    found = analysis.changes
    failing = ch.failing(analysis, factor)
    bad = set(failing.index)
    verdict = (
        f"{len(failing)} regression(s) at a newest commit beyond ×{factor:g}: "
        "<code>bench history check</code> fails."
        if len(failing)
        else f"No regression at a newest commit beyond ×{factor:g}: the check passes."
    )
    out = ['<h2 id="changes">Changes</h2>', f'<p class="note" id="verdict">{verdict}</p>']
    newest = ch.newest_commits(analysis.points)
    for _, head in newest.sort_values(["machine", "branch"]).iterrows():
        machine, branch = str(head["machine"]), str(head["branch"])
        mine = (
            found[(found["machine"] == machine) & (found["branch"] == branch)]
            if len(found)
            else found
        )
        shown = mine.head(MAX_CHANGES)
        note = f"{len(mine)} change(s), newest first." if len(mine) else "No change detected."
        if len(mine) > len(shown):
            note += f" The {len(mine) - len(shown)} older are not listed."
        out.append(
            f'<h3>{e(machine)} · {e(branch)}</h3><p class="note">Newest commit '
            f"<code>{e(str(head['commit'])[:SHORT])}</code> ({e(_date(head['commit_time']))}). "
            f"{e(note)}</p>"
        )
        if len(shown):
            out.append(_changes_table(shown, bad))
    return out


def _changes_table(found: pd.DataFrame, bad: set[Any]) -> str:
    e = html.escape
    head = (
        "<tr><th>commit</th><th>previous</th><th>configuration</th><th>figure</th>"
        "<th>ratio [95% interval]</th><th>before → after</th><th>at newest commit</th>"
        "<th>verdict</th><th>plot</th></tr>"
    )
    rows = []
    for idx, c in found.iterrows():
        failing = idx in bad
        verdict = "fails the check" if failing else str(c["kind"])
        cls = f"{c['kind']} failing" if failing else str(c["kind"])
        cells = [
            f"<code>{e(str(c['commit'])[:SHORT])}</code>",
            f"<code>{e(str(c['previous_commit'])[:SHORT])}</code>",
            e(str(c["label"])),
            e(str(c["metric"])),
            f'<span class="num">{e(fmt.fmt_ratio(c["ratio"], c["ratio_low"], c["ratio_high"]))}'
            "</span>",
            e(f"{fmt.fmt_time(c['before_s'])} → {fmt.fmt_time(c['after_s'])}"),
            "yes" if bool(c["newest"]) else "no",
            e(verdict),
            f'<a href="#{e(_figure_id(c))}">plot</a>',
        ]
        rows.append(f'<tr class="{e(cls)}">' + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return f'<div class="scroll"><table class="changes">{head}{"".join(rows)}</table></div>'


def _date(value: Any) -> str:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return fmt.MISSING
    return fmt.MISSING if pd.isna(stamp) else stamp.isoformat()


# --------------------------------------------------------------------------- the trends


def _text(value: Any) -> str:
    """A key value as text (``""`` for a missing one)."""
    out = norm(value)
    return "" if out is None else str(out)


def _group_values(row: Any) -> tuple[str, ...]:
    return tuple(_text(row[k]) for k in GROUP_KEY)


def _figure_id(row: Any) -> str:
    """The page-wide id of the figure of ``row``'s group (a change or a point)."""
    digest = hashlib.sha256("\x1f".join(_group_values(row)).encode()).hexdigest()
    return f"trend-{digest[:12]}"


def groups(points: pd.DataFrame) -> list[tuple[dict[str, str], pd.DataFrame]]:
    """The trend figures' groups (:data:`GROUP_KEY`), in machine, branch, figure, kernel,
    layer-size, dtype and device-count order: ``(key values, the group's points)``."""
    if points.empty:
        return []
    keyed = points.assign(_key=[_group_values(r) for _, r in points[list(GROUP_KEY)].iterrows()])
    order = {m: i for i, m in enumerate(ch.METRICS)}
    keys = sorted(set(keyed["_key"]), key=lambda k: (k[0], k[1], order.get(k[2], 9), *k[3:]))
    return [
        (dict(zip(GROUP_KEY, k, strict=True)), keyed[keyed["_key"] == k].drop(columns="_key"))
        for k in keys
    ]


def _trends(analysis: ch.Analysis) -> list[str]:
    e = html.escape
    out = ['<h2 id="trends">Trends</h2>']
    last = None
    for n, (key, part) in enumerate(groups(analysis.points)):
        if (key["machine"], key["branch"]) != last:
            last = (key["machine"], key["branch"])
            out.append(f"<h3>{e(key['machine'])} · {e(key['branch'])}</h3>")
        found = _group_changes(analysis.changes, key, part)
        title = group_title(key)
        fig = trend_figure(part, found, title)
        body = svg(fig, f"f{n}", title)
        del fig
        steps = " ".join(str(c)[:SHORT] for c in found["commit"]) if len(found) else ""
        caption = f"{title}. {part['config_id'].nunique()} configuration(s), "
        caption += f"{part['commit'].nunique()} commit(s)."
        if len(found):
            caption += " Steps: " + "; ".join(
                f"{str(c['commit'])[:SHORT]} {c['label']} {fmt.fmt_ratio(c['ratio'])}"
                for _, c in found.iterrows()
            )
        attrs = {f"data-{k.replace('_', '-')}": v for k, v in key.items()}
        attrs["data-steps"] = steps
        attr_text = "".join(f' {k}="{e(v)}"' for k, v in attrs.items())
        out.append(
            f'<figure class="trend" id="{e(_figure_id(key))}"{attr_text}>{body}'
            f"<figcaption>{e(caption)}</figcaption></figure>"
        )
    return out


def _group_changes(found: pd.DataFrame, key: dict[str, str], part: pd.DataFrame) -> pd.DataFrame:
    if found.empty:
        return found
    mask = found["config_id"].isin(set(part["config_id"]))
    mask &= (found["machine"] == key["machine"]) & (found["branch"] == key["branch"])
    return found[mask & (found["metric"] == key["metric"])]


def group_title(key: dict[str, str]) -> str:
    """``update 784,10 float32 1dev · time per step · box-a · main``."""
    what = f"{key['kernel']} {fig_.short_layers(key['layer_sizes'])} {key['dtype']}"
    what += f" {key['n_devices']}dev" if key["n_devices"] else ""
    metric = METRIC_NAMES.get(key["metric"], key["metric"])
    return f"{what} · {metric} · {key['machine']} · {key['branch']}"


# --------------------------------------------------------------------------- one figure


def commit_order(part: pd.DataFrame) -> list[str]:
    """The commits of ``part`` in commit-time order (then first run's start, then id)."""
    by = part.groupby("commit").agg(t=("commit_time", "min"), s=("start_time", "min"))
    by = by.reset_index().sort_values(["t", "s", "commit"], kind="stable", na_position="last")
    return [str(c) for c in by["commit"]]


def series_names(part: pd.DataFrame) -> dict[str, str]:
    """Each configuration's legend entry: its label less the words every line of the group
    shares (kernel, layer sizes, dtype, devices), e.g. ``jit b128``."""
    labels = part.groupby("config_id")["label"].first()
    first = part.iloc[0]
    shared = {_text(first["kernel"]), _text(first["layer_sizes"]), _text(first["dtype"])}
    shared.add(f"{_text(first['n_devices'])}dev")
    out = {}
    for cid, label in labels.items():
        words = [w for w in str(label).split() if w not in shared]
        name = " ".join(words) or str(label)
        out[str(cid)] = name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
    return out


def _series_order(part: pd.DataFrame) -> list[str]:
    first = part.groupby("config_id")[["variant", "batch_size", "label"]].first()
    batch = pd.to_numeric(first["batch_size"], errors="coerce").fillna(-1)
    first = first.assign(_b=batch, _v=first["variant"].astype(str))
    return [str(c) for c in first.sort_values(["_v", "_b", "label"]).index]


def trend_figure(part: pd.DataFrame, found: pd.DataFrame, title: str) -> Figure:
    """One group's trend: a panel per :data:`MAX_LINES` configurations, one below the other.

    Args:
      part: the group's points (:attr:`.changes.Analysis.points` rows of one group).
      found: the group's changes (rows of :attr:`.changes.Analysis.changes`).
      title: the figure's title.
    """
    ids = _series_order(part)
    chunks = [ids[i : i + MAX_LINES] for i in range(0, len(ids), MAX_LINES)]
    fig, axes = fig_.figure(len(chunks), 1, figsize=(WIDTH_IN, PANEL_IN * len(chunks) + 0.5))
    commits = commit_order(part)
    names = series_names(part)
    paint = fig_.Palette(part["variant"].dropna().astype(str))
    metric = str(part["metric"].iloc[0])
    for ax, chunk in zip(axes[:, 0], chunks, strict=True):
        mine = part[part["config_id"].astype(str).isin(chunk)]
        steps = found[found["config_id"].astype(str).isin(chunk)] if len(found) else found
        _draw_lines(ax, mine, chunk, commits, names, paint)
        ax.margins(y=0.15)  # room for the steps' ratios above the lines
        ylabel = f"{METRIC_NAMES.get(metric, metric)} (s, log scale)"
        fig_.label(ax, "commit (oldest → newest)", ylabel, "")
        fig_.log_axis(ax, "y", "s")
        _commit_axis(ax, commits, [str(c) for c in steps["commit"]] if len(steps) else [])
        _mark_steps(ax, steps, commits)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.suptitle(title, fontsize="medium")
    fig_.fit_texts(fig)
    _freeze_ticks(fig)
    return fig


def _freeze_ticks(fig: Figure) -> None:
    """Fix each axis's ticks and labels as drawn on the Agg canvas: :class:`.figure.Spaced`
    thins labels by measuring them with the Agg renderer, which the SVG canvas does not have."""
    fig.draw_without_rendering()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for locs, ticker in (
                (axis.get_majorticklocs(), axis.major),
                (axis.get_minorticklocs(), axis.minor),
            ):
                if isinstance(ticker.formatter, fig_.Spaced):
                    labels = ticker.formatter.format_ticks(list(locs))
                    ticker.locator = FixedLocator(list(locs))
                    ticker.formatter = FixedFormatter(labels)


def _draw_lines(
    ax: Any,
    part: pd.DataFrame,
    ids: list[str],
    commits: list[str],
    names: dict[str, str],
    paint: fig_.Palette,
) -> None:
    """One line a configuration: its points at their commits, intervals as error bars."""
    x_of = {c: i for i, c in enumerate(commits)}
    crowded = len(commits) > 60  # smaller marks, no caps
    styles: dict[str, int] = {}
    for cid in ids:
        s = part[part["config_id"].astype(str) == cid]
        s = s.assign(_x=s["commit"].astype(str).map(x_of)).sort_values("_x")
        variant = _text(s["variant"].iloc[0])
        k = styles.setdefault(variant, 0)
        styles[variant] = k + 1
        y = pd.to_numeric(s["value_s"], errors="coerce").to_numpy(float)
        lo = pd.to_numeric(s["low_s"], errors="coerce").to_numpy(float)
        hi = pd.to_numeric(s["high_s"], errors="coerce").to_numpy(float)
        below = np.where(np.isfinite(lo), np.clip(y - lo, 0, None), 0.0)
        above = np.where(np.isfinite(hi), np.clip(hi - y, 0, None), 0.0)
        ax.errorbar(
            s["_x"].to_numpy(float),
            y,
            yerr=np.vstack([below, above]),
            color=paint(variant),
            marker=MARKERS[k % len(MARKERS)],
            ls=LINE_STYLES[k % len(LINE_STYLES)],
            ms=2.5 if crowded else 4,
            lw=1.2,
            capsize=0 if crowded else 2,
            elinewidth=0.5 if crowded else 0.8,
            label=names.get(cid, cid),
        )


def _commit_axis(ax: Any, commits: list[str], forced: list[str]) -> None:
    """Commit ids along x, rotated: every one when they are few, else about
    :data:`MAX_TICKS` evenly spread, always the first, the newest and the steps' commits."""
    n = len(commits)
    ax.set_xlim(-0.5, n - 0.5)
    where = {c: i for i, c in enumerate(commits)}
    must = sorted({0, n - 1} | {where[c] for c in forced if c in where})
    every = max(1, math.ceil(n / MAX_TICKS))
    ticks = set(must)
    ticks |= {i for i in range(0, n, every) if all(abs(i - m) >= every for m in must)}
    ticks_sorted = sorted(ticks)
    ax.xaxis.set_major_locator(FixedLocator(ticks_sorted))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([commits[i][:SHORT] for i in ticks_sorted], rotation=90, fontsize="small")
    for i, tick in zip(ticks_sorted, ax.get_xticklabels(), strict=True):
        if i in must[1:-1] or (commits[i] in forced):
            tick.set_fontweight("bold")


def _mark_steps(ax: Any, found: pd.DataFrame, commits: list[str]) -> None:
    """A dashed line at each step's commit (red: slower, green: faster), its ratio beside it
    (the range of ratios when several lines step at one commit)."""
    if found.empty:
        return
    x_of = {c: i for i, c in enumerate(commits)}
    marked = found.assign(_x=found["commit"].astype(str).map(x_of)).dropna(subset=["_x"])
    for n, ((x, kind), same) in enumerate(marked.groupby(["_x", "kind"], sort=True)):
        colour = KIND_COLOURS.get(str(kind), fig_.NEUTRAL)
        ax.axvline(x, color=colour, ls="--", lw=1.2, zorder=0)
        lo, hi = float(same["ratio"].min()), float(same["ratio"].max())
        text = f"×{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"×{lo:.2f}–{hi:.2f}"
        ax.annotate(
            text,
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12 - 11 * (n % 3)),
            textcoords="offset points",
            color=colour,
            fontsize="small",
            fontweight="bold",
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )


# --------------------------------------------------------------------------- SVG


def svg(fig: Figure, prefix: str, title: str) -> str:
    """``fig`` as inline SVG for an HTML page, checked and cleaned (:func:`clean_svg`)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    fig.clear()
    return clean_svg(buf.getvalue(), prefix, title)


def clean_svg(text: str, prefix: str, title: str) -> str:
    """matplotlib's SVG as an element of a page: parsed as XML (any markup a label could have
    smuggled in would have to be an element here), refused if it holds anything but drawing
    (:data:`FORBIDDEN_TAGS`, an ``on…`` attribute, a reference that is not ``#id``), its
    metadata and comments dropped, ``xlink:href`` written as SVG 2's ``href``, every id prefixed
    by ``prefix``, ``title`` its accessible name; written back by :mod:`xml.etree`, which
    escapes every text and attribute.

    Raises:
      ValueError: the SVG holds something other than drawing.
    """
    root = ET.fromstring(text)
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag) == "metadata":
                parent.remove(child)
    for el in root.iter():
        _check(el)
        el.tag = el.tag.rsplit("}", 1)[-1]  # every element is SVG's (checked)
        for name, value in list(el.attrib.items()):
            del el.attrib[name]
            name = "href" if name == f"{{{XLINK_NS}}}href" else name
            if name.startswith("{"):
                raise ValueError(f"unexpected attribute {name!r} in a plot's SVG")
            el.set(name, _prefixed(name, value, prefix))
    label = ET.Element("title")
    label.text = title
    root.insert(0, label)
    root.set("xmlns", SVG_NS)
    root.set("role", "img")
    return ET.tostring(root, encoding="unicode")


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _check(el: ET.Element) -> None:
    if not isinstance(el.tag, str) or not el.tag.startswith(f"{{{SVG_NS}}}"):
        raise ValueError(f"unexpected element {el.tag!r} in a plot's SVG")
    if _local(el.tag) in FORBIDDEN_TAGS:
        raise ValueError(f"a plot's SVG holds a {_local(el.tag)} element")
    for name, value in el.attrib.items():
        local = _local(name)
        if local.startswith("on"):
            raise ValueError(f"a plot's SVG holds an event handler ({local})")
        if local == "href" and not value.startswith("#"):
            raise ValueError(f"a plot's SVG refers outside itself ({value[:60]!r})")
        if "url(" in value and not re.fullmatch(r"[^()]*(url\(#[^()]+\)[^()]*)*", value):
            raise ValueError(f"a plot's SVG refers outside itself ({value[:60]!r})")


_URL = re.compile(r"url\(#([^)]+)\)")


def _prefixed(name: str, value: str, prefix: str) -> str:
    """An attribute with its ids and references to ids prefixed (``id``, ``#id``, ``url(#id)``)."""
    if name == "id":
        return f"{prefix}-{value}"
    if name == "href" and value.startswith("#"):
        return f"#{prefix}-{value[1:]}"
    return _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", value)
