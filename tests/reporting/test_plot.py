"""`clbench plot`: curves, gap, bars and matrix figures of run folders, checked against
hand-computed seed statistics; the `--schedule` mode; bad input refused before work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.plotting.bars import metric_table
from clbench.plotting.curves import draw_curves, plot_task_curves
from clbench.plotting.gap import draw_gap
from clbench.plotting.matrix import draw_matrix, mean_matrix
from clbench.plotting.settings import group_settings, setting_labels
from clbench.results.reader import load_runs
from tests.helpers import fast_overrides
from tests.reporting.helpers import write_hand_runs

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF"


@pytest.fixture
def hand_runs(real_runs: Path, tmp_path: Path) -> dict[str, Path]:
    return write_hand_runs(real_runs, tmp_path / "hand")


def _settings(root: Path, group_by: tuple[str, ...] = ()):
    return group_settings(load_runs([root]).finished, group_by)


def _er_only(hand_runs: dict[str, Path]) -> Path:
    """A results folder holding only the two ER seeds of ``hand_runs``."""
    er_only = hand_runs["a0"].parent / "er"
    er_only.mkdir()
    for key in ("a0", "a1"):
        shutil.move(hand_runs[key], er_only / hand_runs[key].name)
    return er_only


def _lines(ax: Any) -> dict[str, Any]:
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def test_curves_average_seeds_with_a_std_band(hand_runs: dict[str, Path]) -> None:
    fig = draw_curves(_settings(_er_only(hand_runs)))
    (ax,) = fig.axes
    lines = _lines(ax)
    assert set(lines) == {"task 0", "task 1"}
    # task 0: mean of (0, 5, 10, 6, 8) and (2, 7, 10, 4, 6) over n = 10
    np.testing.assert_allclose(lines["task 0"].get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(lines["task 0"].get_ydata(), [0.1, 0.6, 1.0, 0.5, 0.7])
    # task 1 starts after the boundary: the pre-update row at step 2 is left out
    np.testing.assert_allclose(lines["task 1"].get_xdata(), [3, 4])
    np.testing.assert_allclose(lines["task 1"].get_ydata(), [0.5, 0.8])
    # the ±1 std band (ddof=1) of task 0: upper edge mean + std at each step
    band = ax.collections[0].get_paths()[0].vertices
    std = np.std([[0, 0.5, 1, 0.6, 0.8], [0.2, 0.7, 1, 0.4, 0.6]], axis=0, ddof=1)
    for x, expected in zip(range(5), np.array([0.1, 0.6, 1.0, 0.5, 0.7]) + std, strict=True):
        assert max(y for bx, y in band if bx == x) == pytest.approx(expected)
    boundaries = [ln.get_xdata()[0] for ln in ax.lines if ln.get_label() == "_boundary"]
    assert boundaries == [2]


def test_several_settings_get_one_panel_per_task(hand_runs: dict[str, Path]) -> None:
    fig = draw_curves(_settings(hand_runs["a0"].parent))
    assert [ax.get_title() for ax in fig.axes] == ["task 0", "task 1"]
    lines = _lines(fig.axes[0])
    assert set(lines) == {"er (2 seeds)", "naive (1 seed)"}
    np.testing.assert_allclose(lines["er (2 seeds)"].get_ydata(), [0.1, 0.6, 1.0, 0.5, 0.7])
    np.testing.assert_allclose(lines["naive (1 seed)"].get_ydata(), [0.0, 0.5, 1.0, 0.6, 0.8])


def test_gap_zooms_on_old_tasks_after_the_boundary(hand_runs: dict[str, Path]) -> None:
    fig = draw_gap(_settings(hand_runs["a0"].parent), window=1)
    assert len(fig.axes) == 2  # 2 settings x 1 boundary
    lines = _lines(fig.axes[0])
    assert set(lines) == {"task 0"}  # task 1 is the new task of phase 1
    np.testing.assert_allclose(lines["task 0"].get_xdata(), [0, 1])
    np.testing.assert_allclose(lines["task 0"].get_ydata(), [1.0, 0.5])


def test_matrix_is_the_seed_mean_of_the_phase_end_evaluations(hand_runs: dict[str, Path]) -> None:
    settings = _settings(hand_runs["a0"].parent)
    expected = [[0.9, 0.05], [0.6, 0.95]]  # mean of [[1, .1], [.7, .9]] and [[.8, 0], [.5, 1]]
    np.testing.assert_allclose(mean_matrix(settings[0]).to_numpy(), expected)
    fig = draw_matrix(settings)
    er_ax = fig.axes[0]
    np.testing.assert_allclose(er_ax.images[0].get_array(), expected)
    assert sorted(t.get_text() for t in er_ax.texts) == ["0.05", "0.60", "0.90", "0.95"]


def test_bars_show_mean_and_std_over_seeds(hand_runs: dict[str, Path]) -> None:
    settings = _settings(hand_runs["a0"].parent)
    table = metric_table(settings, ["final_acc", "fwt"]).set_index(["setting", "metric"])
    assert table.loc[("er", "final_acc"), "mean"] == pytest.approx(0.775)
    assert table.loc[("er", "final_acc"), "std"] == pytest.approx(0.05 / np.sqrt(2))
    assert table.loc[("naive", "final_acc"), "std"] == 0.0
    assert table.loc[("er", "fwt"), "n"] == 0  # undefined in every seed
    from clbench.plotting.bars import draw_bars

    fig = draw_bars(settings, ["final_acc", "fwt"])
    lengths = [p.get_width() for p in fig.axes[0].patches]  # horizontal bars, settings in order
    assert lengths == pytest.approx([0.775, 0.8])
    assert "n/a" in [t.get_text() for t in fig.axes[1].texts]
    # readable names, and which direction is better
    assert [ax.get_title() for ax in fig.axes] == ["final accuracy ↑", "forward transfer ↑"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["er", "naive"]


def test_setting_labels_name_only_what_differs() -> None:
    er = {"strategy": {"name": "er", "buffer_size": 200}, "train": {"lr": 0.1}}
    er_big = {"strategy": {"name": "er", "buffer_size": 500}, "train": {"lr": 0.1}}
    naive = {"strategy": {"name": "naive"}, "train": {"lr": 0.1}}
    assert setting_labels([er, naive]) == ["er", "naive"]
    # the same labels as report rows (clbench.results.labels)
    assert setting_labels([er, er_big, naive]) == [
        "er (buffer_size=200)",
        "er (buffer_size=500)",
        "naive",
    ]
    slow = {"strategy": {"name": "er", "buffer_size": 200}, "train": {"lr": 0.01}}
    assert setting_labels([er, slow]) == ["train.lr=0.1", "train.lr=0.01"]
    assert setting_labels([er, naive], ["train.lr"]) == ["train.lr=0.1", "train.lr=0.1"]


def test_group_by_pools_runs_by_the_given_keys(real_runs: Path) -> None:
    settings = _settings(real_runs, ("strategy.name",))
    assert [(s.label, s.seeds) for s in settings] == [("er", 2), ("naive", 2)]
    (pooled,) = _settings(real_runs, ("scenario.name",))
    assert pooled.seeds == 4


def test_plot_command_writes_every_kind_as_png(
    real_runs: Path, tmp_path: Path, capsys: Any
) -> None:
    before = sorted(p.relative_to(real_runs) for p in real_runs.rglob("*"))
    out = tmp_path / "figs"
    assert main(["plot", str(real_runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for kind in ("curves", "gap", "bars", "matrix"):
        path = out / f"{kind}.png"
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000
        assert f"{path}: {kind}, 2 setting(s), 4 run(s)" in printed
    assert sorted(p.relative_to(real_runs) for p in real_runs.rglob("*")) == before


def test_plot_command_pdf_single_file_and_partial_runs(
    real_runs: Path, tmp_path: Path, capsys: Any
) -> None:
    results = tmp_path / "results"
    shutil.copytree(real_runs, results)
    partial = next(results.iterdir())
    (partial / "status.json").write_text(json.dumps({"status": "interrupted"}))
    (partial / "summary.json").unlink()

    pdf = tmp_path / "one" / "curves.pdf"
    assert main(["plot", str(results), "--kind", "curves", "--out", str(pdf)]) == 0
    printed = capsys.readouterr().out
    assert pdf.read_bytes()[:4] == PDF
    assert "skipped 1 partial run(s) (1 interrupted)" in printed
    assert "3 run(s)" in printed

    out = tmp_path / "with_partial"
    args = ["plot", str(results), "--include-partial", "--format", "pdf", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert (out / "matrix.pdf").read_bytes()[:4] == PDF
    assert "curves, 2 setting(s), 4 run(s)" in printed  # records kept: the partial run is drawn
    assert "bars: left out 1 run(s) without summary.json" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.png"], "--out: got 'x.png'"),
        (["--kind", "bars", "--out", "x.png", "--format", "pdf"], "--format: got 'pdf'"),
        (["--out", "x.jpg"], "--out: got 'x.jpg'"),
        (["--metrics", "accuracy"], "--metrics: got 'accuracy'; allowed: one of: aia"),
        (["--group-by", "strategy.nam"], "--group-by: got 'strategy.nam'"),
        (["--log"], "--log only applies to --schedule"),
        (["--kind", "curves", "--window", "5"], "--window only applies to --kind gap"),
    ],
)
def test_bad_options_are_refused_before_drawing(
    real_runs: Path, tmp_path: Path, capsys: Any, monkeypatch: Any, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(real_runs), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "plots").exists() and not (tmp_path / "x.png").exists()


def test_plot_needs_runs_or_schedule(tmp_path: Path, capsys: Any) -> None:
    assert main(["plot"]) == 2
    assert "--schedule" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["plot", "--schedule", "--kind", "bars"]) == 2
    assert "--kind only apply to run figures" in capsys.readouterr().err


def test_schedule_mode_takes_a_config_file_and_overrides(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(
        "scenario: {name: class_incremental, n_experiences: 2}\n"
        "model: {name: mlp}\nstrategy: {name: naive}\n"
    )
    out = tmp_path / "schedule.pdf"
    overrides = [o for o in fast_overrides(tmp_path / "results") if "n_experiences" not in o]
    assert main(["plot", "--schedule", str(config), "--out", str(out), *overrides]) == 0
    assert out.read_bytes()[:4] == PDF
    assert "2 tasks x 2 phases" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_run_writes_accuracy_png_through_the_plotting_package(tmp_path: Path) -> None:
    outcome = run_job(
        build_config(None, fast_overrides(tmp_path, **{"output.plot": "true"})),
        progress=False,
        figure=plot_task_curves,
    )
    assert (outcome.path / "accuracy.png").read_bytes()[:8] == PNG
    records = pd.read_parquet(outcome.path / "records.parquet")
    ends = outcome.summary["budget"]["phase_end_steps"]
    fig = plot_task_curves(records, ends, tmp_path / "again.pdf", "title")
    assert sorted(_lines(fig.axes[0])) == ["task 0", "task 1", "task 2", "task 3"]
    assert (tmp_path / "again.pdf").read_bytes()[:4] == PDF


def test_the_commands_hand_the_engine_its_figure(tmp_path: Path) -> None:
    # the engine draws nothing itself (it sits below clbench.plotting): `clbench run` and the
    # sweep's workers pass plot_task_curves; a bare run_job without one writes no image
    from clbench.config import run_name
    from clbench.sweeps.executors import RunTask, execute_run

    plot = {"output.plot": "true", "train.epochs": 1}
    assert main(["run", "--quiet", *fast_overrides(tmp_path / "cli", **plot)]) == 0
    (run,) = (tmp_path / "cli").iterdir()
    assert (run / "accuracy.png").read_bytes()[:8] == PNG

    config = build_config(None, fast_overrides(tmp_path / "sweep", **plot))
    task = RunTask(run_name(config), config.model_dump(mode="json"), str(Path.cwd()))
    assert execute_run(task).status == "finished"
    assert (tmp_path / "sweep" / task.run_id / "accuracy.png").read_bytes()[:8] == PNG

    bare = run_job(build_config(None, fast_overrides(tmp_path / "bare", **plot)), progress=False)
    assert not (bare.path / "accuracy.png").exists()


# --- figures that scale, and figures for notebooks ---------------------------------------------

MAX_PX = 3000  # no figure may be wider than this at the saved resolution


def _width_px(fig: Any) -> float:
    from clbench.plotting.figure import SAVE_DPI

    return fig.get_figwidth() * SAVE_DPI


def _many(real_runs: Path, count: int):
    """``count`` settings, each one real run under its own label (the figures only read a
    setting's label and runs), with distinct final accuracies: setting i has 0.01 * i."""
    from clbench.plotting.settings import Setting
    from clbench.results.reader import RunFolder

    runs = load_runs([real_runs]).finished
    settings = []
    for i in range(count):
        run = RunFolder(runs[i % len(runs)].path)
        run.__dict__["summary"] = {  # a cached_property: this copy's summary only
            **run.summary,
            "metrics": {**run.summary["metrics"], "final_acc": 0.01 * i},
        }
        settings.append(Setting(f"er (buffer_size={10 * i}, train.lr=0.05)", [run]))
    return settings


def test_figures_never_change_the_global_backend(real_runs: Path, tmp_path: Path) -> None:
    # in a fresh interpreter, as a notebook would be: a backend chosen by the user stays chosen,
    # pyplot is never imported, and every plotting function returns a Figure
    script = """
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np

matplotlib.use("pdf")
before = matplotlib.get_backend()
from matplotlib.figure import Figure

from clbench.plotting.bars import draw_bars
from clbench.plotting.curves import draw_curves, plot_task_curves
from clbench.plotting.figure import save_figure
from clbench.plotting.gap import draw_gap
from clbench.plotting.matrix import draw_matrix
from clbench.plotting.schedule import draw_schedule, plot_schedule
from clbench.plotting.settings import group_settings
from clbench.results.reader import load_runs

runs = load_runs([sys.argv[1]]).finished
settings = group_settings(runs)
out = Path(sys.argv[2])
plan = SimpleNamespace(
    count_matrix=lambda: np.eye(3, dtype=int) * 5,
    phases=[SimpleNamespace(current_task=i) for i in range(3)],
    scenario="class_incremental",
    dataset="synthetic",
)
figures = [
    draw_curves(settings),
    draw_curves(settings[:1]),
    draw_gap(settings),
    draw_bars(settings, ["final_acc", "forgetting"]),
    draw_matrix(settings),
    draw_schedule(plan),
    plot_schedule(plan, out / "schedule.png"),
    plot_task_curves(runs[0].records(), runs[0].summary["budget"]["phase_end_steps"],
                     out / "accuracy.png"),
]
save_figure(figures[0], out / "curves.svg")
assert all(isinstance(f, Figure) for f in figures), figures
assert matplotlib.get_backend() == before == "pdf", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
print("ok", len(figures))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(real_runs), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok 8"
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")


def test_many_settings_facet_and_keep_the_figures_readable(real_runs: Path) -> None:
    from clbench.plotting.bars import draw_bars

    settings = _many(real_runs, 26)
    bars = draw_bars(settings, ["final_acc", "forgetting"])
    assert _width_px(bars) <= 1920
    assert len(bars.axes) == 2
    assert len(bars.axes[0].patches) == 26  # every setting, as a horizontal bar
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert labels[0] == "er (buffer_size=250, train.lr=0.05)"  # sorted: best final_acc on top
    assert "sorted by final_acc, best on top" in bars.get_suptitle()

    curves = draw_curves(settings)
    assert _width_px(curves) <= 1920
    assert len(curves.axes) == 26  # one panel per setting, not 26 lines in one panel
    assert curves.axes[0].get_title().startswith("er (buffer_size=250")  # best first
    assert len(_lines(curves.axes[0])) == 4  # its 4 tasks

    gap = draw_gap(settings, window=5)
    assert _width_px(gap) <= MAX_PX
    assert len(gap.axes) == 8 * 3  # the best 8 settings x 3 boundaries
    assert "(best 8 of 26 settings by final_acc)" in gap.get_suptitle()

    matrix = draw_matrix(settings)
    assert _width_px(matrix) <= 1920
    assert len(matrix.axes) == 16 + 1  # the best 16 panels, in rows of 4, and the colour bar

    crowd = draw_curves(_many(real_runs, 40))
    assert len(crowd.axes) == 32 and "(best 32 of 40 settings by final_acc)" in (
        crowd.get_suptitle()
    )


def test_plot_command_says_which_settings_it_left_out(
    real_runs: Path, tmp_path: Path, capsys: Any
) -> None:
    results = tmp_path / "results"
    source = next(p for p in real_runs.iterdir() if p.name.startswith("er-"))
    for lr in range(1, 11):  # 10 settings: one run folder each, train.lr differing
        dst = results / f"run-{lr}"
        shutil.copytree(source, dst)
        (dst / "digests.json").unlink()  # the config is edited: read unverified
        config = (dst / "config.yaml").read_text()
        (dst / "config.yaml").write_text(re.sub(r"\n  lr: [^\n]+", f"\n  lr: {lr / 100}", config))
    out = tmp_path / "figs"
    assert main(["plot", str(results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gap: 10 settings are too many for one readable figure; drawn: the 8 with the best " in (
        printed
    )
    assert "--group-by KEY" in printed and "curves: 10 settings" not in printed
    for kind in ("curves", "gap", "bars", "matrix"):
        assert (out / f"{kind}.png").is_file()


def test_gap_title_says_how_many_updates_are_shown(hand_runs: dict[str, Path]) -> None:
    settings = _settings(hand_runs["a0"].parent)
    # the phase after the boundary at step 2 ends at step 4: 2 updates, whatever the window
    fig = draw_gap(settings, window=100)
    assert fig.get_suptitle().startswith(
        "stability gap: up to 2 updates after each task boundary (window 100, cut at the end "
        "of each phase)"
    )
    assert fig.axes[0].get_xlim() == (0, 2)
    fig = draw_gap(settings, window=1)
    assert fig.get_suptitle().startswith("stability gap: the first 1 update after each task")
    assert fig.axes[0].get_xlim() == (0, 1)


def test_seed_bands_are_not_clipped_to_the_unit_interval(hand_runs: dict[str, Path]) -> None:
    fig = draw_curves(_settings(_er_only(hand_runs)))
    (ax,) = fig.axes
    # task 0 at step 0: accuracies 0 and 0.2, mean 0.1, std 0.141: the band reaches -0.041
    lowest = 0.1 - np.std([0.0, 0.2], ddof=1)
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(lowest)
    assert ax.get_ylim()[0] < lowest  # the axis shows the whole band
    limits = [ln.get_ydata()[0] for ln in ax.lines if ln.get_label() == "_limit"]
    assert sorted(limits) == [0, 1]  # 0 and 1 marked, since a band passes them
    assert "not clipped to [0, 1]" in ax.get_title()


def test_schedule_colour_bar_sits_next_to_the_heatmap() -> None:
    from types import SimpleNamespace

    from clbench.plotting.schedule import draw_schedule

    for phases in (5, 500):  # a small figure and one at the width cap
        counts = np.zeros((phases, 10), dtype=int)
        counts[np.arange(phases), np.arange(phases) % 10] = 100
        plan = SimpleNamespace(
            count_matrix=lambda c=counts: c,
            phases=[SimpleNamespace(current_task=i % 10) for i in range(phases)],
            scenario="recurrence",
            dataset="digits",
        )
        fig = draw_schedule(plan, log_scale=True)
        fig.draw_without_rendering()
        heatmap, bar = fig.axes
        gap_in = (bar.get_position().x0 - heatmap.get_position().x1) * fig.get_figwidth()
        assert 0 < gap_in < 0.3, phases  # no empty band between the two
        assert _width_px(fig) <= 1920
        assert bar.get_ylabel() == "training samples (log)"
