"""`bench report`: tables, plots, Markdown and self-contained HTML from run directories.

The fixture in ``tests/fixtures/report/`` (written by its ``make_fixture.py``) holds two small
runs, a laptop CPU and a GPU box. The full report is built once per module (matplotlib is the
slow part); the edge cases (one backend, one device count, an errored variant; a run with
nothing but errors) are built from filtered copies in ``tmp_path``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bench
from bench import cli
from bench.report import build as report
from bench.report import figure, plots, render, tables, versus
from bench.results import schema
from tests.helpers import FIXTURES, bench_env

FIXTURES = FIXTURES / "report"
PNG = b"\x89PNG\r\n\x1a\n"
INJECTED = "<script>alert(1)</script>"
INJECTED_ERROR = "boom <img src=x onerror=alert(2)> | pipe"
TABLES = ("summary", "step_times", "compile_costs", "break_even", "scaling", "peers")
TABLES += ("machines", "errors", "results_merged")
PLOTS = ("step_time", "throughput", "compile_time", "break_even", "roofline", "scaling")
PLOTS += ("dispatch_overhead", "peers", "machines")


class Images(HTMLParser):
    """Collects ``<img src>`` and every start tag of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_run(d: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def fixture_run(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = read_jsonl(FIXTURES / name / "results.jsonl")
    return rows, json.loads((FIXTURES / name / "metadata.json").read_text())


def cli_report(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["report", *argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-machine report, with hostile strings in the laptop's host and an error."""
    root = tmp_path_factory.mktemp("full")
    laptop = shutil.copytree(FIXTURES / "laptop", root / "laptop")
    shutil.copytree(FIXTURES / "gpubox", root / "gpubox")
    meta = json.loads((laptop / "metadata.json").read_text())
    meta["host"] = INJECTED
    (laptop / "metadata.json").write_text(json.dumps(meta))
    rows = read_jsonl(laptop / "results.jsonl")
    for r in rows:
        if r["status"] == "error":
            r["error"] = INJECTED_ERROR
    write_run(laptop, rows, meta)
    return report.build_report([laptop, root / "gpubox"], root / "out")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The laptop run cut to one device count, vmap errored everywhere and no peers, through
    the CLI; returns the output directory and what the CLI printed."""
    root = tmp_path_factory.mktemp("edge")
    rows, meta = fixture_run("laptop")
    rows = [r for r in rows if r["n_devices"] == 1 and r["framework"] == "jax"]
    for r in rows:
        if r["variant"] == "vmap":
            r.update(status="error", error="vmap failed: shapes", step_median_s=None)
    run = write_run(root / "single", rows, meta)
    code, out, err = cli_report([str(run), "--out", str(root / "out")])
    assert code == 0, err
    return root / "out", out


# --------------------------------------------------------------------------- the full report


@pytest.mark.parametrize("name", TABLES)
def test_every_table_is_written_and_not_empty(full: Path, name: str) -> None:
    table = pd.read_csv(full.parent / "tables" / f"{name}.csv")
    assert len(table) > 0


@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_is_a_png(full: Path, name: str) -> None:
    data = (full.parent / "plots" / f"{name}.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 5000


def test_html_parses_and_embeds_every_plot(full: Path) -> None:
    parser = Images()
    parser.feed(full.read_text())
    parser.close()
    assert len(parser.srcs) == len(PLOTS) == len(list((full.parent / "plots").glob("*.png")))
    for src in parser.srcs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(PNG)
    assert "script" not in parser.tags  # self-contained, nothing executable
    assert "Nothing: every table and plot was made." in full.read_text()


def test_strings_from_results_and_metadata_are_escaped(full: Path) -> None:
    text = full.read_text()
    assert INJECTED not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "boom &lt;img src=x onerror=alert(2)&gt;" in text
    md = full.with_name("report.md").read_text()
    assert INJECTED not in md and "<img src=x" not in md
    assert "\\| pipe" in md  # a | in a cell does not break the Markdown table


def test_markdown_references_every_plot(full: Path) -> None:
    md = full.with_name("report.md").read_text()
    for name in PLOTS:
        assert f"](plots/{name}.png)" in md
    assert "## Left out" in md


def test_fastest_variant_is_marked(full: Path) -> None:
    df = pd.concat([bench.load(full.parent.parent / n) for n in ("laptop", "gpubox")])
    table = tables.step_times(df)
    for _, group in table.groupby(["machine", "layer_sizes", "kernel", "dtype"]):
        for col in (c for c in group.columns if c.startswith("batch ")):
            cells = group[col][group[col] != "—"]
            if len(cells):
                assert sum(tables.FASTEST in c for c in cells) == 1
    big = table[
        (table["machine"] == "cpu:cpu@laptop")
        & (table["layer_sizes"] == "784,1024,1024,10")
        & (table["kernel"] == "update")
    ]
    ok = tables.one_device_one_model(tables.ok_rows(df))
    ok = ok[
        (ok["machine"] == "cpu:cpu@laptop")
        & (ok["layer_sizes"] == "784,1024,1024,10")
        & (ok["kernel"] == "update")
        & (ok["batch_size"] == 1024)
    ]
    fastest = ok.loc[ok["step_median_s"].idxmin(), "label"]
    starred = big[big["batch 1024"].str.contains(tables.FASTEST)]["variant"].tolist()
    assert starred == [fastest]


def test_machines_are_merged_with_a_machine_column(full: Path) -> None:
    merged = pd.read_csv(full.parent / "tables" / "machines.csv")
    assert {"cpu:cpu@laptop step", "gpu:NVIDIA H200@gpubox speed ratio"} <= set(merged.columns)
    ratios = pd.to_numeric(merged["gpu:NVIDIA H200@gpubox speed ratio"], errors="coerce")
    assert (ratios > 1).all()  # the GPU box is faster on every shared configuration
    steps = pd.read_csv(full.parent / "tables" / "step_times.csv")
    assert set(steps["machine"]) == {"cpu:cpu@laptop", "gpu:NVIDIA H200@gpubox"}


def test_peers_table_compares_one_device_with_one_device(full: Path) -> None:
    peers = pd.read_csv(full.parent / "tables" / "peers.csv")
    laptop = peers[peers["host"] == "laptop"].iloc[0]
    assert (laptop["devices"], laptop["precision"], laptop["batch_size"]) == (1, "highest", 1024)
    rows = bench.load(FIXTURES / "laptop")
    cell = rows[(rows["layer_sizes"] == laptop["layer_sizes"]) & (rows["batch_size"] == 1024)]
    cell = cell[(cell["framework"] == "jax") & (cell["kernel"] == "update")]
    # the 4-device shard_map is faster than any one-device variant: it is not the one compared
    fastest = cell.loc[cell["step_median_s"].idxmin()]
    assert (fastest["variant"], fastest["n_devices"]) == ("shard_map", 4)
    one = cell[(cell["n_devices"] == 1) & (cell["grad_layout"] == "tuned")]
    assert laptop["jax tuned"] == one.loc[one["step_median_s"].idxmin(), "variant"]
    stock = cell[(cell["n_devices"] == 1) & (cell["grad_layout"] == "stock")]
    want = stock.loc[stock["step_median_s"].idxmin(), "variant"]
    assert laptop["jax stock"] == (want if want == "notebook" else f"{want} (stock)")
    assert laptop["numpy / jax tuned"].endswith("✓")
    assert laptop["numpy / jax stock"].endswith("✓")
    ratios = [str(laptop[c]) for c in peers.columns if c.endswith(" / jax tuned")]
    ratios = [r for r in ratios if r != "—"]  # a peer this host did not run
    won = sum(r.endswith("✓") for r in ratios)
    assert laptop["tuned jax wins"].endswith(f"({won}/{len(ratios)})")


# --------------------------------------------------------------------------- edge cases


def test_single_backend_single_device_count_errored_variant(edge: tuple[Path, str]) -> None:
    out, printed = edge
    html_path = out / "report.html"
    assert str(html_path) in printed
    text = html_path.read_text()
    left = text[text.index('id="left-out"') :]
    assert "plot scaling.png</b>: scaling: only one device count (1) in these runs" in left
    assert "machine comparison: only one machine (cpu:cpu@laptop)" in left
    assert versus.NO_PEERS in left
    assert (out / "plots" / "step_time.png").exists()
    assert not (out / "plots" / "scaling.png").exists()
    parser = Images()
    parser.feed(text)
    assert len(parser.srcs) == len(list((out / "plots").glob("*.png"))) > 0
    errors = pd.read_csv(out / "tables" / "errors.csv")
    assert (errors["error or reason"] == "vmap failed: shapes").sum() >= 3
    steps = pd.read_csv(out / "tables" / "step_times.csv")
    assert "vmap" not in set(steps["variant"])


def test_a_run_with_only_errors_still_reports(tmp_path: Path) -> None:
    rows, meta = fixture_run("gpubox")
    rows = rows[:5]
    for r in rows:
        r.update(status="error", error="XlaRuntimeError: no GPU", step_median_s=None)
    run = write_run(tmp_path / "bad", rows, meta)
    html_path = report.build_report([run], tmp_path / "out")
    text = html_path.read_text()
    assert "XlaRuntimeError: no GPU" in text
    for name in PLOTS:
        assert f"plot {name}.png</b>" in text
    assert "<img" not in text


def test_default_out(tmp_path: Path) -> None:
    assert report.default_out([tmp_path / "a"]) == tmp_path / "a"
    several = report.default_out([tmp_path / "a", tmp_path / "b"])
    assert several == tmp_path.resolve() / "compare-a+b"


def test_two_runs_of_one_machine_are_told_apart(tmp_path: Path) -> None:
    rows, meta = fixture_run("laptop")
    rows = [r for r in rows if r["layer_sizes"] == "784,10" and r["status"] == "ok"]
    before = write_run(tmp_path / "before", rows, meta)
    after = write_run(tmp_path / "after", rows, meta)
    runs = report.load_runs([before, after])
    assert set(runs[1].rows["machine"]) == {"cpu:cpu@laptop [after]"}
    ratio = versus.machine_ratio_data(pd.concat([r.rows for r in runs]))
    assert np.allclose(ratio["speed_ratio"], 1.0) and len(ratio) == len(rows)


def test_different_schema_version_is_refused(tmp_path: Path) -> None:
    rows, meta = fixture_run("gpubox")
    for r in rows:
        r["schema_version"] = 2
    meta["schema_version"] = 2
    new = write_run(tmp_path / "v2", rows, meta)
    with pytest.raises(schema.SchemaError, match="schema version 2 is not one this tool reads"):
        report.build_report([FIXTURES / "laptop", new], tmp_path / "out")
    code, _, err = cli_report([str(FIXTURES / "laptop"), str(new), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "v2" in err and "schema version 2" in err


def test_missing_directory_exits_2(tmp_path: Path) -> None:
    code, _, err = cli_report([str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == 2 and "nope is not a directory" in err


# --------------------------------------------------------------------------- pure functions


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {
        "framework": "jax",
        "kernel": "update",
        "backend": "cpu",
        "device_kind": "cpu",
        "host": "h",
        "n_processes": 1,
        "n_devices": 1,
        "layer_sizes": "784,10",
        "batch_size": 128,
        "dtype": "float32",
        "precision": "highest",
        "grad_layout": "tuned",
        "steps_per_call": 1,
        "work_multiplier": 1,
        "status": "ok",
        "lower_s": 0.0,
        "compile_s": 0.0,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def test_break_even_on_a_hand_made_frame() -> None:
    df = frame(
        [
            {"variant": "jit", "trace_s": 0.1, "step_median_s": 0.010},
            {"variant": "scan", "trace_s": 0.6, "compile_s": 0.5, "step_median_s": 0.008},
            {"variant": "vmap", "trace_s": 0.5, "step_median_s": 0.012},
            {"variant": "sharded", "trace_s": 0.3, "n_devices": 4, "step_median_s": 0.004},
        ]
    )
    be = tables.break_even(df).set_index("variant")
    assert be.loc["jit", "break_even"] == "—" and np.isnan(be.loc["jit", "break_even_steps"])
    assert be.loc["scan", "break_even_steps"] == pytest.approx(1.0 / 0.002)
    assert be.loc["scan", "break_even"] == "500"
    assert be.loc["vmap", "break_even"] == "never" and np.isinf(be.loc["vmap", "break_even_steps"])
    assert be.loc["sharded ×4", "break_even_steps"] == pytest.approx(0.2 / 0.006)
    assert be.loc["sharded ×4", "break_even"] == "34"
    assert set(be["reference"]) == {"jit"}


def test_scaling_on_a_hand_made_frame() -> None:
    df = frame(
        [
            {"variant": "pmap", "n_devices": 1, "step_median_s": 0.012},
            {"variant": "pmap", "n_devices": 2, "step_median_s": 0.008},
            {"variant": "pmap", "n_devices": 4, "n_processes": 2, "step_median_s": 0.005},
        ]
    )
    data = tables.scaling_data(df).set_index("n_devices")
    assert data.loc[2, "speedup"] == pytest.approx(1.5)
    assert data.loc[4, "efficiency"] == pytest.approx(0.012 / (4 * 0.005))
    assert data.loc[4, "devices"] == "2×2"
    path, reason = plots.scaling(df[df["n_devices"] == 1], Path("unused.png"))
    assert path is None and reason == "scaling: only one device count (1) in these runs"


def test_the_fastest_and_the_notebook_speedup_hold_one_device_one_model() -> None:
    """A 4-device row and an ensemble (4 models) are quicker per call than the one-device jit
    here, but not the same work: neither takes the ★ nor gets a speed-up over the notebook."""
    df = frame(
        [
            {"variant": "notebook", "grad_layout": "stock", "step_median_s": 0.004},
            {"variant": "jit", "step_median_s": 0.002},
            {"variant": "shard_map", "n_devices": 4, "step_median_s": 0.001},
            {"variant": "ensemble", "work_multiplier": 4, "step_median_s": 0.0015},
        ]
    ).assign(
        step_ci_low_s=lambda d: d["step_median_s"], step_ci_high_s=lambda d: d["step_median_s"]
    )
    cells = tables.step_times(df).set_index("variant")["batch 128"]
    starred = [v for v, cell in cells.items() if tables.FASTEST in cell]
    assert starred == ["jit"]
    speedup = versus.notebook_speedup(df).set_index("variant")["batch 128"].to_dict()
    assert speedup == {"jit": "×2.00"}


def test_colours_are_fixed_per_variant() -> None:
    """Every variant of the catalogue (peers included) has its own colour, whatever its label;
    a variant the table does not know gets a spare colour that does not change from one
    process to the next (a report's colours must match the last report's)."""
    from bench import catalog

    known = list(catalog.ALL_VARIANTS)
    assert set(known) <= set(plots.VARIANT_COLOURS), set(known) - set(plots.VARIANT_COLOURS)
    assert len(set(plots.VARIANT_COLOURS.values())) == len(plots.VARIANT_COLOURS)
    for v in known:
        assert plots.colour(f"{v} ×4 (stock)") == plots.colour(v) == plots.VARIANT_COLOURS[v]
    code = "from bench.report import figure; print(figure.colour('new-variant'))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env=bench_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert seen == {plots.colour("new-variant")}
    assert plots.colour("new-variant") not in plots.VARIANT_COLOURS.values()


def test_line_styles_tell_peers_and_stock_apart() -> None:
    assert figure.line_style("jit") == "-"
    assert figure.line_style("jit (stock)") == ":"  # same colour as jit: the style tells them apart
    assert figure.line_style("notebook") == "-"
    assert figure.line_style("torch-eager", "torch") == "--"


def pixels_of(png: Path, hex_colour: str, left_fraction: float = 1.0) -> np.ndarray:
    """Row indices of the pixels of ``png`` drawn in exactly ``hex_colour`` (left part only)."""
    import matplotlib.image

    img = matplotlib.image.imread(str(png))[..., :3]
    img = img[:, : int(img.shape[1] * left_fraction)]
    want = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    rows, _cols = np.nonzero(np.all(np.abs(img - want) < 1.5 / 255, axis=-1))
    return rows


def test_step_time_plot_draws_each_variant_where_its_times_are(tmp_path: Path) -> None:
    """The pixels: each variant's line in its colour, the slower one higher up (log time axis),
    and no pixel of a variant that was not measured."""
    rows = [
        {"variant": v, "batch_size": b, "step_median_s": t * b / 32}
        for v, t in (("jit", 1e-4), ("vmap", 1e-2))
        for b in (32, 128, 1024)
    ]
    df = frame(rows).assign(step_ci_low_s=lambda d: d["step_median_s"] * 0.9)
    df["step_ci_high_s"] = df["step_median_s"] * 1.1
    path, reason = plots.step_time(df, tmp_path / "step.png")
    assert path is not None, reason
    jit = pixels_of(path, plots.VARIANT_COLOURS["jit"], left_fraction=0.7)
    vmap = pixels_of(path, plots.VARIANT_COLOURS["vmap"], left_fraction=0.7)
    assert jit.size > 100 and vmap.size > 100
    assert vmap.mean() < jit.mean() - 50  # 100x slower: far above (rows count down)
    assert pixels_of(path, plots.VARIANT_COLOURS["sharded"]).size == 0


def test_markdown_table_escapes() -> None:
    md = render.markdown_table(pd.DataFrame({"a|b": ["x|y", "<b>"], "c": [None, 1.5]}))
    assert md.splitlines()[0] == "| a\\|b | c |"
    assert "| x\\|y | — |" in md and "&lt;b&gt;" in md


def test_rows_measured_in_a_slow_spell_are_marked(tmp_path: Path) -> None:
    rows, meta = fixture_run("laptop")
    spoiled = next(r for r in rows if r["variant"] == "vmap" and r["status"] == "ok")
    spoiled.update(unstable=True, canary_ratio=1.7, load_retries=2)
    run = write_run(tmp_path / "laptop", rows, meta)
    frame = bench.load(run)
    steps = tables.step_times(frame)
    vmap = steps[steps["variant"] == "vmap"].astype(str)
    assert vmap.apply(lambda col: col.str.contains(tables.UNSTABLE)).to_numpy().sum() == 1
    errs = tables.errors(frame)
    (line,) = errs[errs["status"] == "unstable"].to_dict(orient="records")
    assert "vmap" in line["what"] and "canary ×1.70 after 2 retries" in line["error or reason"]
