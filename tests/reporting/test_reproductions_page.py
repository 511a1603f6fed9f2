"""tools/reproductions.py: the committed studies file is valid and its suites expand; a page
generated from a real (tiny) sweep carries the suite's report table and interval verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import clbench
from clbench.errors import ConfigError
from clbench.sweeps.suite import load_suite, parse_seeds
from tests.metrics.helpers import toy_records
from tests.sweep.helpers import write_suite
from tools import reproductions


def test_the_committed_studies_load_and_their_suites_expand():
    intro, studies = reproductions.read_studies(reproductions.STUDIES)
    assert intro and len(studies) >= 4
    for study in studies:
        assert study.claims, study.key
        clbench.sweep(study.suite, dry_run=True)  # validates (runs without data are skipped)
        seeds = parse_seeds(load_suite(study.suite).suite.seeds)
        assert len(seeds) >= 5, f"{study.key}: {seeds}"


def studies_file(tmp_path: Path, suite: Path, claims: list[dict]) -> Path:
    path = tmp_path / "studies.yaml"
    study = {
        "key": "tiny",
        "title": "A tiny study",
        "suite": str(suite),
        "claim": "ER beats fine-tuning.",
        "differences": ["synthetic data"],
        "claims": claims,
    }
    path.write_text(yaml.safe_dump({"intro": "Intro.", "studies": [study]}, sort_keys=False))
    return path


def test_a_page_from_a_sweep_shows_its_table_and_verdicts(tmp_path):
    suite = write_suite(
        tmp_path,
        grid={"strategy.name": ["er", "naive"]},
        seeds="0-2",
        report={"group_by": ["strategy.name"], "metrics": ["final_acc", "forgetting"]},
    )
    claims = [
        {
            "text": "ER beats naive",
            "metric": "final_acc",
            "rows": {"strategy.name": "er"},
            "against": {"strategy.name": "naive"},
        },
        {"text": "DER ran", "metric": "final_acc", "rows": {"strategy.name": "der"}},
    ]
    path = studies_file(tmp_path, suite, claims)
    intro, studies = reproductions.read_studies(path)
    before = reproductions.render_page(intro, studies)
    assert "_Not run yet" in before and before.count("not run") >= 2

    assert clbench.sweep(suite, jobs=1).ok
    page = reproductions.render_page(intro, studies)
    frame = clbench.load(tmp_path / "out")
    table = clbench.report(
        tmp_path / "out", group_by=["strategy.name"], metrics=["final_acc", "forgetting"]
    ).to_markdown()
    assert table.strip() in page  # the suite's own report, verbatim
    assert "6 finished runs, seeds 0–2, " in page
    from clbench.reporting.claims import Claim, decide

    verdict = decide(frame, Claim.from_dict(claims[0]))
    assert verdict.verdict in ("holds", "does not hold", "inconclusive")
    row = next(line for line in page.splitlines() if line.startswith("| ER beats naive"))
    assert f"**{verdict.verdict}**" in row and "(paired)" in row
    assert f"{verdict.comparison.difference:+.3f}" in row
    assert "| 1. A tiny study | DER ran | not run |" in page

    out = tmp_path / "page.md"
    assert reproductions.main(["--studies", str(path), "--out", str(out)]) == 0
    assert reproductions.main(["--studies", str(path), "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "edited\n")
    assert reproductions.main(["--studies", str(path), "--out", str(out), "--check"]) == 1


@pytest.mark.parametrize(
    "study, field",
    [
        ({"title": "t", "suite": "x.yaml", "claims": []}, "studies[0].key"),
        ({"key": "k", "title": "t", "suite": "nope.yaml", "claims": []}, "studies[0].suite"),
        (
            {"key": "k", "title": "t", "suite": "SUITE", "claims": [{"text": "t"}]},
            "studies[0].claims[0].metric",
        ),
        (
            {"key": "k", "title": "t", "suite": "SUITE", "claims": [], "colour": 1},
            "studies[0].colour",
        ),
    ],
)
def test_a_bad_studies_file_names_the_field(tmp_path, study, field):
    suite = write_suite(tmp_path)
    study = {k: (str(suite) if v == "SUITE" else v) for k, v in study.items()}
    path = tmp_path / "studies.yaml"
    path.write_text(yaml.safe_dump({"studies": [study]}))
    with pytest.raises(ConfigError) as info:
        reproductions.read_studies(path)
    assert info.value.field.endswith(field)
    assert reproductions.main(["--studies", str(path), "--out", str(tmp_path / "p.md")]) == 2


def test_phase_curves_from_a_hand_made_accuracy_matrix(tmp_path):
    # R[phase][task] with every task evaluated from phase 0 (forward transfer rows); task 1 is
    # current in phase 1, task 2 in phase 2
    matrix = [[0.9, 0.1, 0.2], [0.6, 0.8, 0.1], [0.5, 0.7, 1.0]]
    rows = [(k, k, dict(enumerate(accs))) for k, accs in enumerate(matrix)]  # one step a phase
    toy_records(rows, n=10).to_parquet(tmp_path / "records.parquet")
    accuracy, forgetting = reproductions.phase_curves(tmp_path)
    assert accuracy == pytest.approx([0.9, 0.7, (0.5 + 0.7 + 1.0) / 3])
    assert forgetting[0] != forgetting[0]  # NaN: nothing learned before phase 0
    assert forgetting[1:] == pytest.approx([0.3, ((0.9 - 0.5) + (0.8 - 0.7)) / 2])


@pytest.mark.parametrize(
    "suite", sorted((reproductions.ROOT / "configs/papers/studies/gpu").glob("*.yaml")), ids=str
)
def test_the_full_scale_gpu_suites_validate(suite):
    clbench.sweep(suite, dry_run=True)  # missing data: its runs are skipped, not an error
