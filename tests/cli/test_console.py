"""The run summary on the console: rich's table at a terminal, plain aligned text elsewhere."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from clbench.cli.console import plain_table, print_summary, summary_rows

SUMMARY = {
    "run_id": "er-class_incremental-digits-s0-abc",
    "eval_every": 5,
    "eval_schedule": "every",
    "metrics": {"final_acc": 0.5, "bwt": -0.125, "per_task_final_acc": [0.25, 0.75]},
    "budget": {"updates": 470, "train_time_s": 1.25, "eval_time_s": 0.5},
}


def test_rows_hold_the_headline_metrics_the_run_has_then_its_budget():
    rows = summary_rows(SUMMARY)
    assert [r[0] for r in rows] == ["final_acc", "bwt", "updates", "train / eval time"]
    assert rows[1][1] == "-0.1250"
    assert rows[2] == ("updates", "470", "evaluations every 5 update(s)")
    assert rows[3][1] == "1.2s / 0.5s"


def test_plain_table_aligns_names_left_and_values_right():
    lines = plain_table([("a", "1.5", "one"), ("longer", "-10.25", "two")])
    assert lines == [
        "metric   value  meaning",
        "a          1.5  one",
        "longer  -10.25  two",
    ]


def test_off_a_terminal_the_summary_is_plain_text(capsys):
    print_summary(SUMMARY, Path("results/x"), skipped=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "er-class_incremental-digits-s0-abc (already finished; not re-run)"
    assert out[1].split() == ["metric", "value", "meaning"]
    assert out[2].split()[:2] == ["final_acc", "0.5000"]
    assert out[-2] == "per-task final accuracy: ['0.2500', '0.7500']"
    assert out[-1] == "results: results/x"
    assert not any(ch in "".join(out) for ch in "┃│┏")


def test_at_a_terminal_rich_draws_the_table(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    print_summary(SUMMARY, Path("results/[x]"))
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without colours
    assert "┃ metric" in out and "│ final_acc" in out and "0.5000" in out
    assert "results: results/[x]" in out  # a path is not read as rich markup
