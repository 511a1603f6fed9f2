"""`clbench plot`: curves, gap, bars and matrix figures of run folders, checked against
hand-computed seed statistics; the `--schedule` mode; bad input refused before work."""

from __future__ import annotations

import json
import shutil
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


def _lines(ax: Any) -> dict[str, Any]:
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def test_curves_average_seeds_with_a_std_band(hand_runs: dict[str, Path]) -> None:
    er_only = hand_runs["a0"].parent / "er"
    er_only.mkdir()
    for key in ("a0", "a1"):
        shutil.move(hand_runs[key], er_only / hand_runs[key].name)
    fig = draw_curves(_settings(er_only))
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
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.775, 0.8])
    assert "n/a" in [t.get_text() for t in fig.axes[1].texts]


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
    from clbench.engine.runner import run_name
    from clbench.sweep.executors import RunTask, execute_run

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
