"""Every plot of the report can be read at the size the report shows it.

Each public plot function of :mod:`bench.report.plots` is drawn from the runs in
``tests/fixtures/report/``, from the committed example run, and from a stress case: six machines
(two of them one host measured twice) with every variant of :data:`figure.VARIANT_COLOURS`
and three variants that table does not know. The figure inspected is the very one the report
writes (kept by :func:`figure.kept_figures` as ``save`` wrote it), drawn again with the texts
that reach the canvas recorded. For each figure:

- no two drawn texts overlap (titles, axis labels, tick labels, legend texts, annotations), no
  text leaves the figure, and none is smaller than ``x-small``;
- no legend lies over the plotting area of an axes;
- the figure is no wider than the HTML report's body, so the browser does not shrink it;
- a variant has one colour in every plot of a report, two variants never share one, and a
  legend entry that is not a variant (kernel markers, phases, ideal, roof, break-even point)
  uses no variant's colour.

Drawing is the slow part: each figure is drawn once per module and the checks share it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bench.report import build as report
from bench.report import figure, plots, render, tables
from bench.results import schema
from tests.bench.report.test_report import FIXTURES, PLOTS, read_jsonl, write_run
from tests.helpers import ROOT

EXAMPLE = ROOT / "reports" / "examples" / "cpu-2c-epyc"
#: the runs each case reports on, as ``build_report`` would be given them
CASES = ("laptop", "example", "merged", "stress")
#: variants the colour table does not know, made from the rows of one it knows
UNKNOWN = {"mystery-jit": "jit", "hand-fused": "vmap", "torch-mystery": "torch-eager"}
#: how far (px) two text boxes may overlap, or a text box leave the figure: antialiasing
TOLERANCE_PX = 1.0
#: colours within this in every RGB channel read as one (``gray`` is torch-eager's #7f7f7f)
SAME_COLOUR = 12 / 255


# --------------------------------------------------------------------------- the runs


def _scaled(row: dict[str, Any], factor: float) -> dict[str, Any]:
    """``row`` on a machine ``factor`` times slower: times multiplied, rates divided."""
    out = dict(row)
    for key, value in row.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if key.endswith("_per_s") and not key.startswith("peak_"):
            out[key] = value / factor
        elif key.endswith("_s"):
            out[key] = value * factor
    return out


def _example_copy(
    root: Path, name: str, factor: float, **machine: str
) -> tuple[list[dict[str, Any]], dict[str, Any], Path]:
    rows = [_scaled({**r, **machine}, factor) for r in read_jsonl(EXAMPLE / "results.jsonl")]
    for r in rows:  # a column the plots do not know (yet) must change nothing
        r["compile_cached_s"] = 0.1 * r["compile_s"] if r.get("compile_s") else None
    meta = json.loads((EXAMPLE / "metadata.json").read_text())
    if "host" in machine:
        meta["host"] = machine["host"]
    if "backend" in machine:
        meta["peaks"] = {machine["backend"]: meta["peaks"]["cpu"]}
    for unknown, like in UNKNOWN.items():
        rows += [_renamed(r, unknown) for r in rows if r["variant"] == like]
    return rows, meta, root / name


def _renamed(row: dict[str, Any], variant: str) -> dict[str, Any]:
    """``row`` as measured for ``variant``, under its own configuration id (a run keeps one
    row per id)."""
    out = {**row, "variant": variant}
    out["config_id"] = schema.config_id(out)
    return out


def stress_runs(root: Path) -> list[Path]:
    """Six machines: the example run first (the machine plot's reference), copies of it on a
    host with a long name, on a GPU with a long device kind, and on the same host again (named
    apart by run), then the two fixture runs; the copies carry :data:`UNKNOWN`."""
    copies = [
        _example_copy(root, "ci", 1.7, host="build-03.ci.example.org"),
        _example_copy(
            root,
            "a100",
            0.05,
            backend="gpu",
            device_kind="NVIDIA A100-SXM4-80GB",
            host="a100-node-07.cluster.example.org",
        ),
        _example_copy(root, "vm-again", 1.1),
    ]
    runs = [shutil.copytree(EXAMPLE, root / "vm")]
    runs += [write_run(path, rows, meta) for rows, meta, path in copies]
    runs += [shutil.copytree(FIXTURES / n, root / n) for n in ("laptop", "gpubox")]
    return runs


def case_runs(case: str, root: Path) -> list[Path]:
    if case == "laptop":
        return [FIXTURES / "laptop"]
    if case == "example":
        return [EXAMPLE]
    if case == "merged":
        return [FIXTURES / "laptop", FIXTURES / "gpubox", EXAMPLE]
    return stress_runs(root / case)


# --------------------------------------------------------------------------- drawing


@dataclasses.dataclass
class Drawn:
    """One plot of one case: the figure the report saved and every text that reached its
    canvas with its box (px), the variants of the case's rows; or why it was not drawn."""

    fig: Figure | None
    reason: str
    texts: list[tuple[Text, Bbox]]
    variants: set[str]

    def describe(self, text: Text, box: Bbox) -> str:
        """What a text is, where, for a message: ``x tick label '128' in panel 'vm' at ...``."""
        role, ax = _role(self.fig, text)
        where = f" in panel {ax.get_title()!r}" if ax is not None and ax.get_title() else ""
        return (
            f"{role} {text.get_text()!r}{where} "
            f"at x {box.x0:.0f}..{box.x1:.0f}, y {box.y0:.0f}..{box.y1:.0f}"
        )


def _role(fig: Figure | None, text: Text) -> tuple[str, Any]:
    """What ``text`` is in ``fig`` and the axes it belongs to (tick labels do not know it)."""
    if fig is None:
        return "text", None
    if text is getattr(fig, "_suptitle", None):
        return "suptitle", None
    for leg in _legends(fig):
        if text is leg.get_title() or any(text is t for t in leg.get_texts()):
            return "legend text", leg.axes
    for ax in fig.axes:
        if text is ax.title:
            return "title", ax
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if text is axis.label:
                return f"{name} label", ax
            for tick in axis.majorTicks + axis.minorTicks:
                if text is tick.label1 or text is tick.label2:
                    return f"{name} tick label", ax
        if any(text is t for t in ax.texts):
            return "annotation", ax
    return "text", text.axes


def _legends(fig: Figure | None) -> list[Legend]:
    if fig is None:
        return []
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def drawn_texts(fig: Figure) -> list[tuple[Text, Bbox]]:
    """Draw ``fig`` and return every text that put glyphs on its canvas, with its box (px): a
    tick label outside the view limits, an empty or invisible text draws none."""
    renderer = fig.canvas.get_renderer()
    drawing: list[Text] = []
    drew: dict[int, Text] = {}
    text_draw, draw_text = Text.draw, renderer.draw_text

    def recording_draw(self: Text, r: Any) -> None:
        drawing.append(self)
        try:
            text_draw(self, r)
        finally:
            drawing.pop()

    def recording_draw_text(*args: Any, **kwargs: Any) -> None:
        if drawing:  # a multi-line text draws line by line: the Text is known only here
            drew.setdefault(id(drawing[-1]), drawing[-1])
        draw_text(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Text, "draw", recording_draw)
        mp.setattr(renderer, "draw_text", recording_draw_text)
        fig.canvas.draw()
    assert fig.canvas.get_renderer() is renderer
    return [(t, t.get_window_extent(renderer)) for t in drew.values() if t.get_text().strip()]


@pytest.fixture(scope="module")
def draw(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Drawn]:
    """``draw(case, plot)``: the plot drawn from the case's runs the way the report draws it
    (each plot once per module)."""
    root = tmp_path_factory.mktemp("readable")
    loaded: dict[str, tuple[list[report.Run], pd.DataFrame]] = {}
    done: dict[tuple[str, str], Drawn] = {}

    def get(case: str, name: str) -> Drawn:
        if case not in loaded:
            runs = report.load_runs(case_runs(case, root))
            loaded[case] = runs, report.Builder(runs, root / case).df
        if (case, name) not in done:
            runs, df = loaded[case]
            # the report's own arguments (Builder.limits gives the roofline the runs' peaks)
            args = (report._peaks(runs),) if name == "roofline" else ()
            with figure.kept_figures() as kept:
                path, reason = getattr(plots, name)(df, root / case / f"{name}.png", *args)
            assert len(kept) == (path is not None), kept
            fig = kept[0] if kept else None
            texts = drawn_texts(fig) if fig is not None else []
            done[case, name] = Drawn(fig, reason, texts, set(df["variant"]))
        return done[case, name]

    return get


def drawn(draw: Callable[[str, str], Drawn], case: str, name: str) -> Drawn:
    """The plot, or a skip where the case cannot have it (one machine: no comparison)."""
    d = draw(case, name)
    if d.fig is None:
        pytest.skip(f"not drawn from {case}: {d.reason}")
    return d


# --------------------------------------------------------------------------- the checks


def overlapping(boxes: list[Bbox]) -> list[tuple[int, int]]:
    """Index pairs of boxes that overlap by more than :data:`TOLERANCE_PX` both ways."""
    if len(boxes) < 2:
        return []
    b = np.array([[x.x0, x.y0, x.x1, x.y1] for x in boxes])
    wide = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    high = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hit = np.triu((wide > TOLERANCE_PX) & (high > TOLERANCE_PX), k=1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(hit), strict=True)]


def report_width_px() -> int:
    """The widest image the HTML report shows unshrunk: its body's max-width."""
    found = re.search(r"body\s*\{[^}]*max-width:\s*(\d+)px", render.CSS)
    assert found, "render.CSS no longer bounds the body's width: update this test"
    return int(found.group(1))


def shown_colours(handle: Any) -> list[tuple[float, float, float]]:
    """The opaque colours a legend handle shows, its main one (line or face) first."""
    if isinstance(handle, Line2D):
        shown = []
        if handle.get_linestyle() not in ("None", "", " "):
            shown.append(handle.get_color())
        if handle.get_marker() not in ("None", "", " ", None):
            shown += [handle.get_markerfacecolor(), handle.get_markeredgecolor()]
    elif isinstance(handle, Patch):
        shown = [handle.get_facecolor() if handle.get_fill() else "none", handle.get_edgecolor()]
        if handle.get_hatch():
            shown.append(handle.get_hatchcolor())
    elif isinstance(handle, Collection):
        shown = [*handle.get_facecolor(), *handle.get_edgecolor()]
    else:
        raise AssertionError(f"a legend handle of a kind this test does not read: {handle!r}")
    rgba = [to_rgba(c) for c in shown]
    return [(r, g, b) for r, g, b, a in rgba if a > 0]


def same_colour(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= SAME_COLOUR


def legend_entries(d: Drawn) -> list[tuple[str, str | None, list[tuple[float, float, float]]]]:
    """Every legend entry of the figure: its label, the variant it stands for (``None`` for a
    generic entry: a marker, a phase, a line) and the colours it shows."""
    out = []
    for leg in _legends(d.fig):
        for handle, text in zip(leg.legend_handles, leg.get_texts(), strict=True):
            label = text.get_text()
            # "jit (stock)", "pmap ×4", and "scan: 63" in the break-even panels' legends
            name = tables.base_variant(label.split(": ")[0])
            out.append((label, name if name in d.variants else None, shown_colours(handle)))
    return out


def variant_colours(d: Drawn) -> dict[str, tuple[float, float, float]]:
    """The colour of each variant in the figure's legends; fails when one has two."""
    found: dict[str, tuple[float, float, float]] = {}
    for label, name, shown in legend_entries(d):
        if name is None:
            continue
        assert shown, f"legend entry {label!r} shows no colour"
        seen = found.setdefault(name, shown[0])
        assert same_colour(seen, shown[0]), f"{name} in two colours: {seen} and {shown[0]}"
    return found


# --------------------------------------------------------------------------- the tests


def test_every_public_plot_function_is_covered() -> None:
    public = {
        n
        for n, f in inspect.getmembers(plots, inspect.isfunction)
        if f.__module__ == plots.__name__ and not n.startswith("_")
    }
    assert public == set(PLOTS), f"plots not covered here: {sorted(public - set(PLOTS))}"


@pytest.mark.parametrize("case", ["merged", "stress"])
@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_is_drawn_from_several_machines(draw: Any, case: str, name: str) -> None:
    assert draw(case, name).fig is not None, draw(case, name).reason


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PLOTS)
def test_no_two_texts_overlap(draw: Any, case: str, name: str) -> None:
    d = drawn(draw, case, name)
    boxes = [box for _, box in d.texts]
    clashes = [
        f"{d.describe(*d.texts[i])}\n      overlaps {d.describe(*d.texts[j])}"
        for i, j in overlapping(boxes)
    ]
    assert not clashes, f"{len(clashes)} overlapping texts:\n" + "\n".join(clashes[:15])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PLOTS)
def test_every_text_is_inside_the_figure_and_legible(draw: Any, case: str, name: str) -> None:
    d = drawn(draw, case, name)
    assert d.fig is not None
    inside = d.fig.bbox.padded(TOLERANCE_PX)
    out = [d.describe(t, box) for t, box in d.texts if not inside.contains(box.x0, box.y0)]
    out += [d.describe(t, box) for t, box in d.texts if not inside.contains(box.x1, box.y1)]
    assert not out, (
        f"texts leave the figure ({d.fig.bbox.width:.0f}x{d.fig.bbox.height:.0f} px):\n"
        + "\n".join(out[:15])
    )
    smallest = FontProperties(size="x-small").get_size_in_points()
    tiny = [d.describe(t, box) for t, box in d.texts if t.get_fontsize() < smallest - 1e-6]
    assert not tiny, "texts smaller than x-small:\n" + "\n".join(tiny[:15])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PLOTS)
def test_legends_are_outside_the_axes(draw: Any, case: str, name: str) -> None:
    d = drawn(draw, case, name)
    assert d.fig is not None
    renderer = d.fig.canvas.get_renderer()
    panels = [ax for ax in d.fig.axes if ax.get_visible()]
    over = [
        f"legend {[t.get_text() for t in leg.get_texts()][:3]}... over panel {ax.get_title()!r}"
        for leg in _legends(d.fig)
        for ax in panels
        for i, j in overlapping([leg.get_window_extent(renderer), ax.bbox])
    ]
    assert not over, "\n".join(over)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PLOTS)
def test_the_figure_is_shown_unshrunk(draw: Any, case: str, name: str) -> None:
    d = drawn(draw, case, name)
    assert d.fig is not None
    assert d.fig.bbox.width <= report_width_px(), (
        f"{d.fig.bbox.width:.0f} px wide: the report shrinks it to {report_width_px()} px, "
        "and its text with it"
    )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PLOTS)
def test_colours_tell_variants_apart(draw: Any, case: str, name: str) -> None:
    """Two variants never share a colour, and what is not a variant uses none of theirs."""
    d = drawn(draw, case, name)
    colours = variant_colours(d)
    names = sorted(colours)
    shared = [
        f"{a} and {b}"
        for k, a in enumerate(names)
        for b in names[k + 1 :]
        if same_colour(colours[a], colours[b])
    ]
    assert not shared, f"variants sharing a colour: {shared}"
    taken = [to_rgba(c)[:3] for c in figure.VARIANT_COLOURS.values()] + list(colours.values())
    generic = [
        f"{label!r} in {tuple(round(x, 3) for x in c)}"
        for label, name_, shown in legend_entries(d)
        if name_ is None
        for c in shown
        if any(same_colour(c, t) for t in taken)
    ]
    assert not generic, f"legend entries that are not variants in a variant's colour: {generic}"


@pytest.mark.parametrize("case", CASES)
def test_a_variant_has_one_colour_in_every_plot(draw: Any, case: str) -> None:
    first: dict[str, tuple[str, tuple[float, float, float]]] = {}
    differ = []
    for name in PLOTS:
        d = draw(case, name)
        if d.fig is None:
            continue
        for variant, c in variant_colours(d).items():
            where, seen = first.setdefault(variant, (name, c))
            if not same_colour(seen, c):
                differ.append(f"{variant}: {seen} in {where}, {c} in {name}")
    assert first and not differ, differ


def test_unknown_variants_get_distinct_colours_in_one_report() -> None:
    """Two unknown names can hash to one spare colour: a report's palette gives each unknown
    variant its own while spares last, whatever order the names come in, leaves the known
    variants theirs and gives none of theirs away."""
    unknown = [f"new-variant-{i}" for i in range(len(figure.SPARE_COLOURS))]
    paint = figure.Palette([*unknown, "jit", "pmap ×4"])
    assert len({paint(v) for v in unknown}) == len(unknown)
    assert {paint(v) for v in unknown}.isdisjoint(figure.VARIANT_COLOURS.values())
    assert paint("jit ×4 (stock)") == figure.VARIANT_COLOURS["jit"]
    assert paint(f"{unknown[3]} ×2") == paint(unknown[3])
    backwards = figure.Palette(reversed(unknown))
    assert all(backwards(v) == paint(v) for v in unknown)
    # alone in its report, an unknown variant keeps the colour its name hashes to
    assert figure.Palette(["lonely"])("lonely") == figure.colour("lonely")
