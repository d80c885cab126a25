"""The trend page: one self-contained HTML file from a store, a plot a configuration group and
machine, the changes listed, nothing from the store able to inject markup, no figure kept."""

from __future__ import annotations

import gc
import re
import weakref
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import _pylab_helpers

from bench.history import changes, page, store
from tests.helpers import make_row, write_run

HOSTILE = "<script>alert(1)</script>&x"
#: commit i's id: 40 hex digits, the first two its number
COMMITS = [f"{i:02x}{'c0ffee' * 7}"[:40] for i in range(12)]
STEP_AT = 8


def file_runs(
    root: Path,
    machines: tuple[str, ...] = ("box-a", "box-b"),
    variants: tuple[str, ...] = ("jit", "vmap"),
    batches: tuple[int, ...] = (128, 256),
    branch: str = "main",
    n_commits: int = 12,
) -> Path:
    """A store of ``n_commits`` commits on each machine, one run a commit: every configuration
    about 1 ms (scaled by batch), ``jit`` 20% slower from commit :data:`STEP_AT` on; cold
    compile flat at 0.5 s. Two kernels (``update``, ``predict``): two groups a figure."""
    rng = np.random.default_rng(0)
    st = root / "store"
    for m in machines:
        for i in range(n_commits):
            rows = []
            for kernel in ("update", "predict"):
                for v in variants:
                    for b in batches:
                        slow = 1.2 if (i >= STEP_AT and v == "jit") else 1.0
                        med = 1e-3 * slow * b / 128 * float(rng.lognormal(0, 0.003))
                        rows.append(_row(v, kernel, b, med, float(rng.lognormal(0, 0.003))))
            run_id = f"{store.safe_label(m)}-{i}"
            when = f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00+00:00"
            meta = {
                "schema_version": 1,
                "run_id": run_id,
                "hardware_fingerprint": "fp-x",
                "start_time": when,
                "git": {"commit": COMMITS[i], "commit_time": when, "branch": branch},
            }
            meta["git"]["dirty"] = False
            run = write_run(root / "runs" / run_id, rows, meta=meta)
            store.add(st, run, machine=m)
    return st


def _row(variant: str, kernel: str, batch: int, med: float, compile_f: float) -> dict[str, Any]:
    row = make_row(variant, kernel, samples=[med] * 5, batch_size=batch)
    row.update(
        step_median_s=med,
        step_ci_low_s=med * 0.995,
        step_ci_high_s=med * 1.005,
        cold_compile_s=0.5 * compile_f,
        cold_compile_ci_low_s=0.5 * compile_f * 0.99,
        cold_compile_ci_high_s=0.5 * compile_f * 1.01,
    )
    return row


VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "wbr", "col", "source"})


class Structure(HTMLParser):
    """Every start tag matched by its end tag (void elements aside), tags and attributes kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def parse(text: str) -> Structure:
    p = Structure()
    p.feed(text)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], p.stack
    return p


def figures(p: Structure) -> list[dict[str, str | None]]:
    return [a for t, a in p.tags if t == "figure" and "trend" in (a.get("class") or "")]


def assert_self_contained(text: str) -> None:
    low = text.lower()
    assert "<script" not in low
    for bad in ('src="http', "src='http", 'href="http', "href='http", "@import", "file://"):
        assert bad not in low, bad
    p = parse(text)
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert tag not in ("img", "link", "iframe", "object", "embed", "foreignobject")
        href = attrs.get("href")
        assert href is None or href.startswith("#"), (tag, href)  # within the page only
        assert "src" not in attrs, (tag, attrs)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("page")
    st = file_runs(root)
    out = page.publish(st, root / "site", title="Trends & more")
    return st, out.read_text(encoding="utf-8")


def test_page_has_a_plot_per_group_and_machine(published: tuple[Path, str]) -> None:
    _st, text = published
    p = parse(text)
    figs = figures(p)
    # 2 machines x 2 figures (step, compile) x 2 kernels; 1 branch, 1 layer size, dtype, devices
    assert len(figs) == 8
    assert text.count("<svg") == 8
    got = {(f["data-machine"], f["data-metric"], f["data-kernel"]) for f in figs}
    kinds = ("box-a", "box-b"), ("step", "compile"), ("update", "predict")
    assert got == {(m, f, k) for m in kinds[0] for f in kinds[1] for k in kinds[2]}
    assert len({f["id"] for f in figs}) == 8
    assert "<title>Trends &amp; more</title>" in text
    assert_self_contained(text)
    # the SVGs live in one page: one doctype, no comments, ids unique, references resolve
    assert text.count("<!DOCTYPE") == 1 and "<?xml" not in text and "<!--" not in text
    ids = [a["id"] for _t, a in p.tags if a.get("id")]
    assert len(ids) == len(set(ids))
    refs = [a["href"][1:] for _t, a in p.tags if a.get("href")]
    refs += re.findall(r"url\(#([^)]+)\)", text)
    assert refs and set(refs) <= set(ids)


def test_steps_are_listed_and_marked(published: tuple[Path, str]) -> None:
    _st, text = published
    step = COMMITS[STEP_AT][: page.SHORT]
    summary = text.split('id="changes"', 1)[1].split('id="trends"', 1)[0]
    assert f"<code>{step}</code>" in summary
    assert "x1.2" in summary  # the ratio, about 1.2
    assert summary.count('<tr class="regression">') == 8  # jit x 2 batches x 2 kernels x 2 boxes
    assert "improvement" not in summary
    assert "the check passes" in summary  # the step is not at the newest commit
    figs = figures(parse(text))
    for f in figs:
        marked = f["data-steps"].split() if f["data-steps"] else []
        assert marked == ([step, step] if f["data-metric"] == "step" else []), f
    # every summary row links to its plot
    ids = {f["id"] for f in figs}
    links = re.findall(r'<a href="#([^"]+)">plot</a>', summary)
    assert len(links) == 8 and set(links) <= ids


def test_figure_marks_the_step_at_its_commit(tmp_path: Path) -> None:
    st = file_runs(tmp_path, machines=("box-a",), variants=("jit",), batches=(128,))
    a = changes.analyse(store.load(st).rows, metrics=("step",))
    (key, part), *_ = page.groups(a.points)
    found = page._group_changes(a.changes, key, part)
    fig = page.trend_figure(part, found, page.group_title(key))
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert COMMITS[STEP_AT][: page.SHORT] in ticks
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in dashed] == [STEP_AT]
    assert dashed[0].get_color() == page.KIND_COLOURS["regression"]
    assert abs(found["ratio"].iloc[0] - 1.2) < 0.02
    assert [t.get_text() for t in ax.texts] == [f"×{found['ratio'].iloc[0]:.2f}"]
    assert ax.get_yscale() == "log"
    assert "time per step" in ax.get_ylabel()


def test_newest_commit_regression_fails_the_check_on_the_page(tmp_path: Path) -> None:
    st = file_runs(tmp_path, machines=("box-a",), variants=("jit",), batches=(128,))
    # a 30% slower run at a 13th commit
    rows = [_row("jit", k, 128, 1.2e-3 * 1.3, 1.0) for k in ("update", "predict")]
    meta = {
        "schema_version": 1,
        "run_id": "late",
        "hardware_fingerprint": "fp-x",
        "start_time": "2024-01-02T00:00:00+00:00",
        "git": {"commit": "ab" * 20, "commit_time": "2024-01-02T00:00:00+00:00", "branch": "main"},
    }
    store.add(st, write_run(tmp_path / "late", rows, meta=meta), machine="box-a")
    text = page.publish(st, tmp_path / "site", metrics=("step",)).read_text()
    assert text.count('<tr class="regression failing">') == 2
    verdict = text.split('id="verdict">', 1)[1].split("</p>", 1)[0]
    assert verdict.startswith("2 regression(s)") and "fails" in verdict
    assert text.count("<svg") == 2


def test_store_strings_cannot_inject_markup(tmp_path: Path) -> None:
    st = file_runs(
        tmp_path,
        machines=(HOSTILE,),
        variants=("jit", HOSTILE),
        batches=(128,),
        branch=HOSTILE + '"><img src=x onerror=alert(1)>',
    )
    # the machine label is made safe as a directory name; a hand-made directory is not
    bad = st / "<b>&'\""
    bad.mkdir()
    for f in (st / store.safe_label(HOSTILE)).iterdir():
        f.rename(bad / f.name)
    text = page.publish(st, tmp_path / "site", metrics=("step",)).read_text()
    assert_self_contained(text)
    assert "<img" not in text and "<b>&" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;x" in text  # the branch, escaped
    assert len(figures(parse(text))) == 2


def test_svg_is_checked_and_cleaned() -> None:
    drawn = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><!-- <script>x</script> -->'
        '<defs><path id="g1" d="M0 0"/></defs><use xlink:href="#g1" clip-path="url(#c1)"/></svg>'
    )
    out = page.clean_svg(drawn, "f3", "a <title> & more")
    assert "<!--" not in out and "script" not in out
    assert 'id="f3-g1"' in out and 'href="#f3-g1"' in out and "url(#f3-c1)" in out
    assert "<title>a &lt;title&gt; &amp; more</title>" in out
    for hostile in (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g onload="alert(1)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<use xlink:href="http://example.com/x.svg#a"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g fill="url(http://example.com/a)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
    ):
        with pytest.raises(ValueError):
            page.clean_svg(hostile, "f", "t")


def test_many_lines_split_into_panels(tmp_path: Path) -> None:
    variants = ("jit", "vmap", "scan", "pmap", "sharded")
    st = file_runs(tmp_path, machines=("box-a",), variants=variants, n_commits=4)
    a = changes.analyse(store.load(st).rows, metrics=("step",))
    (_key, part), *_ = page.groups(a.points)
    assert part["config_id"].nunique() == 10
    fig = page.trend_figure(part, a.changes.iloc[:0], "t")
    assert len(fig.axes) == 2
    lines = [len(ax.get_legend().get_texts()) for ax in fig.axes]
    assert lines == [8, 2]
    assert fig.get_figwidth() * 96 <= 1100


def test_many_commits_thin_the_labels(tmp_path: Path) -> None:
    n = 120
    part = _synthetic_points(n)
    fig = page.trend_figure(part, part.iloc[:0], "t")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) <= page.MAX_TICKS + 2
    assert labels[0] == f"{0:012x}" and labels[-1] == f"{n - 1:012x}"


def _synthetic_points(n: int) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "machine": "m",
            "branch": "main",
            "config_id": "c1",
            "metric": "step",
            "commit": [f"{i:012x}{0:028x}" for i in range(n)],
            "commit_time": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "start_time": pd.NaT,
            "value_s": 1e-3,
            "low_s": 0.99e-3,
            "high_s": 1.01e-3,
            "n_runs": 1,
            "label": "jit update 784,10 b128 float32 1dev",
            "variant": "jit",
            "kernel": "update",
            "layer_sizes": "784,10",
            "batch_size": 128,
            "dtype": "float32",
            "n_devices": 1,
            "position": range(n),
        }
    )


def test_no_figure_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = file_runs(tmp_path, machines=("box-a",), variants=("jit",), batches=(128,), n_commits=4)
    made: list[weakref.ref] = []
    draw = page.trend_figure

    def tracked(*args: Any, **kwargs: Any) -> Any:
        fig = draw(*args, **kwargs)
        made.append(weakref.ref(fig))
        return fig

    monkeypatch.setattr(page, "trend_figure", tracked)
    before = _pylab_helpers.Gcf.get_num_fig_managers()
    page.publish(st, tmp_path / "site", metrics=("step",))
    gc.collect()
    assert len(made) == 2
    assert all(r() is None for r in made)
    assert _pylab_helpers.Gcf.get_num_fig_managers() == before


def test_corrupt_file_is_listed(tmp_path: Path) -> None:
    st = file_runs(tmp_path, machines=("box-a",), variants=("jit",), batches=(128,), n_commits=4)
    broken = st / "box-a" / COMMITS[0][:12] / "broken.json"
    broken.write_text("{not json")
    text = page.publish(st, tmp_path / "site", metrics=("step",)).read_text()
    problems = text.split('id="problems"', 1)[1].split("</ul>", 1)[0]
    assert "broken.json" in problems and "not readable JSON" in problems
    assert len(figures(parse(text))) == 2  # the rest is still shown


def test_empty_store_says_nothing_yet(tmp_path: Path) -> None:
    st = store.init(tmp_path / "store")
    out = page.publish(st, tmp_path / "site")
    assert out == tmp_path / "site" / "index.html"
    text = out.read_text()
    p = parse(text)
    assert 'id="nothing"' in text and "Nothing to show yet" in text
    assert figures(p) == []
    assert_self_contained(text)


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        page.publish(tmp_path / "nowhere", tmp_path / "site")
    assert not (tmp_path / "site").exists()
