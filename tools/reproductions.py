"""Write docs/reproductions.md from the studies' results: one section per paper claim.

The studies are listed in configs/papers/studies/reproductions.yaml: for each, the paper's claim
and setting, ours and every difference (prose), the sweep suite that runs it, and the claims to
decide (`clbench.reporting.claims`). For each study this script reads the suite's finished runs,
renders the suite's own `clbench report` table (the same options as `clbench sweep --report`)
and decides every claim from its 95% interval. No number in the page is typed by hand: rerun a
suite, then this script, and the page follows.

    python tools/reproductions.py            # write docs/reproductions.md
    python tools/reproductions.py --check    # exit 1 if docs/reproductions.md is out of date
    python tools/reproductions.py --studies other.yaml --out /tmp/page.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clbench.errors import ConfigError
from clbench.reporting.claims import Claim, Verdict, decide, matching
from clbench.sweeps.suite import LoadedSuite, load_suite

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ROOT / "configs/papers/studies/reproductions.yaml"
PAGE = ROOT / "docs/reproductions.md"
PROSE = ("claim", "paper", "ours", "differences", "findings", "gpu", "per_phase")


@dataclass(frozen=True)
class Study:
    """One section: prose fields, the suite and its claims."""

    key: str
    title: str
    suite: Path
    prose: dict[str, Any]
    claims: list[Claim]


def read_studies(path: Path) -> tuple[str, list[Study]]:
    """The page's introduction and its studies; errors name the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "not valid YAML", str(exc).splitlines()[0]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("studies"), list):
        raise ConfigError(f"{path}: studies", raw, "a list of studies")
    studies = []
    for i, item in enumerate(raw["studies"]):
        where = f"{path}: studies[{i}]"
        for key in ("key", "title", "suite", "claims"):
            if key not in item:
                raise ConfigError(f"{where}.{key}", None, "required")
        unknown = sorted(set(item) - {"key", "title", "suite", "claims", *PROSE})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", item[unknown[0]], "a study field")
        suite = ROOT / item["suite"]
        if not suite.exists():
            raise ConfigError(f"{where}.suite", item["suite"], "an existing suite file")
        claims = [Claim.from_dict(c, f"{where}.claims[{j}]") for j, c in enumerate(item["claims"])]
        prose = {k: item[k] for k in PROSE if k in item}
        studies.append(Study(item["key"], item["title"], suite, prose, claims))
    return str(raw.get("intro", "")), studies


def _fmt(value: float | None, signed: bool = False) -> str:
    """Accuracies to 3 decimals; large counts (multiply-accumulates) in 4 significant digits."""
    if value is None:
        return "–"
    spec = ".4g" if abs(value) >= 1e4 else ".3f"
    return format(value, ("+" if signed else "") + spec)


def _interval(low: float | None, high: float | None, signed: bool = False) -> str:
    if low is None or high is None:
        return ""
    return f" [{_fmt(low, signed)}, {_fmt(high, signed)}]"


def _selector(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "–"
    return ", ".join(f"{k}={v}" for k, v in selector.items())


def verdict_row(v: Verdict) -> str:
    c = v.claim
    value = f"{_fmt(v.value.mean)}{_interval(v.value.ci_low, v.value.ci_high)} (n={v.value.n})"
    if c.against is None:
        difference, p = "–", "–"
    else:
        ref = v.reference
        value += f" vs {_fmt(ref.mean)} (n={ref.n})" if ref is not None else ""
        cmp = v.comparison
        difference = (
            "–"
            if cmp is None
            else (f"{_fmt(cmp.difference, True)}{_interval(cmp.ci_low, cmp.ci_high, True)}")
        )
        p = "–" if cmp is None else f"{cmp.p:.3g} ({cmp.test})"
    runs = _selector(dict(c.rows))
    if c.against is not None:
        runs += f" vs {_selector(dict(c.against))}"
    cells = [
        c.text,
        f"`{c.metric}` {c.expect} than {c.threshold:g}" + (" (difference)" if c.against else ""),
        runs,
        value,
        difference,
        p,
        f"**{v.verdict}**: {v.reason}",
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def study_results(loaded: LoadedSuite) -> tuple[Any, str | None]:
    """(one row per finished run, the suite's report in Markdown) or (empty, None)."""
    import pandas as pd

    import clbench

    root = loaded.root if loaded.root.is_absolute() else ROOT / loaded.root
    if not root.exists():
        return pd.DataFrame(), None
    frame = clbench.load(root)
    if frame.empty:
        return frame, None
    options = loaded.suite.report
    settings = {
        "group_by": options.group_by,
        "metrics": options.metrics,
        "sort_by": options.sort_by,
        "split_by": options.split_by,
        "treatment": options.treatment,
        "ci": options.ci,
        "confidence": options.confidence,
        "include_partial": options.include_partial,
    }
    try:
        table = clbench.report(root, **settings)
    except ConfigError:
        if not options.treatment:
            raise
        # a study still running may not vary its treatment yet (one kernel finished so far)
        table = clbench.report(root, **{**settings, "treatment": []})
    return frame, table.to_markdown()


def planned_runs(suite: Path) -> int:
    """How many runs the suite expands to here (runs whose data is missing are not counted)."""
    import contextlib
    import io

    import clbench

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return len(clbench.sweep(suite, dry_run=True).paths)


def study_minutes(paths: Sequence[str]) -> tuple[float, float]:
    """Minutes of training and evaluation summed over the runs (each summary's budget; a resumed
    run counts only its own work), and minutes from the first run's start (its manifest) to the
    last run's end (its status), which also counts waits and a sweep resumed later."""
    import json
    from datetime import datetime

    work, starts, ends = 0.0, [], []
    for path in paths:
        budget = json.loads((Path(path) / "summary.json").read_text())["budget"]
        work += budget.get("train_time_s", 0.0) + budget.get("eval_time_s", 0.0)
        created = json.loads((Path(path) / "manifest.json").read_text())["created"]
        starts.append(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
        ends.append(json.loads((Path(path) / "status.json").read_text())["time"])
    return work / 60, (max(ends) - min(starts)) / 60


def phase_curves(run: Path) -> tuple[list[float], list[float]]:
    """Accuracy over the tasks seen so far and forgetting so far after each phase, from the
    run's full-test-set accuracies R[phase][task] (`RecordArrays.full_acc` of its records). A
    task is seen from the first phase in which it is the current task (not from its first
    evaluation: streams that evaluate every task from the start would count it as seen at once);
    forgetting after phase k is the mean over tasks introduced before k of R[intro][task] -
    R[k][task]."""
    import numpy as np

    from clbench.metrics.records import record_arrays
    from clbench.results.reader import RunFolder

    ra = record_arrays(RunFolder(run).records())
    r = ra.full_acc
    intro: dict[int, int] = {}
    for phase, task in enumerate(ra.phase_task.tolist()):
        intro.setdefault(task, phase)
    accuracy, forgetting = [], []
    for k in range(ra.n_phases):
        seen = [t for t, p in intro.items() if p <= k]
        accuracy.append(float(np.nanmean(r[k, seen])) if seen else float("nan"))
        drops = [r[intro[t], t] - r[k, t] for t in seen if intro[t] < k]
        forgetting.append(float(np.nanmean(drops)) if drops else float("nan"))
    return accuracy, forgetting


def per_phase_tables(frame: Any, spec: dict[str, Any]) -> list[str]:
    """Mean over seeds of accuracy and forgetting after each phase, one row per ``rows`` value
    among the runs matching ``select``."""
    import pandas as pd

    chosen = matching(frame, spec.get("select", {}))
    if chosen.empty:
        return []
    curves: dict[str, list[tuple[list[float], list[float]]]] = {}
    for label, path in zip(chosen[spec["rows"]], chosen["path"], strict=True):
        curves.setdefault(str(label), []).append(phase_curves(Path(path)))
    phases = max(len(c[0]) for runs in curves.values() for c in runs)
    head = "| " + spec["rows"] + " | " + " | ".join(str(k + 1) for k in range(phases)) + " |"
    rule = "|---" + "|---:" * phases + "|"
    out = []
    for index, name in ((0, "accuracy on the tasks seen so far"), (1, "forgetting so far")):
        out += [
            f"**{name.capitalize()} after each phase** (mean over seeds; "
            f"{_selector(spec.get('select'))}):",
            "",
            head,
            rule,
        ]
        for label, runs in sorted(curves.items()):
            means = pd.DataFrame([c[index] for c in runs]).mean()  # NaN where no seed has one
            cells = ["–" if pd.isna(v) else f"{v:.3f}" for v in means]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def render_study(study: Study, number: int) -> tuple[str, list[Verdict]]:
    loaded = load_suite(study.suite)
    frame, table = study_results(loaded)
    verdicts = [decide(frame, claim) for claim in study.claims]
    suite = study.suite.relative_to(ROOT) if study.suite.is_relative_to(ROOT) else study.suite
    report = Path("results/studies") / f"{study.suite.stem}.md"
    out = [f"## {number}. {study.title}", ""]
    labels = {
        "claim": "Claim",
        "paper": "The paper's setting and number",
        "ours": "Our setting",
    }
    for key, label in labels.items():
        if key in study.prose:
            out += [f"**{label}.** {study.prose[key].strip()}", ""]
    if "differences" in study.prose:
        out += ["**Differences from the paper, and why:**", ""]
        out += [f"- {d.strip()}" for d in study.prose["differences"]] + [""]
    out += [
        "**Run it** (the page's numbers come from these runs):",
        "",
        "```",
        f"clbench sweep {suite} --jobs 2 --report {report}",
        "python tools/reproductions.py",
        "```",
        "",
    ]
    if table is None:
        out += [f"_Not run yet: no finished run under `{loaded.root}`._", ""]
    else:
        seeds = sorted(set(frame["seed"].tolist()))
        work, span = study_minutes(frame["path"].tolist())
        planned = planned_runs(study.suite)
        if planned > len(frame):
            out += [
                f"_Incomplete: {len(frame)} of the suite's {planned} runs have finished, so some "
                "rows have fewer than 5 seeds or none; the command above finishes the rest "
                "(finished runs are skipped)._",
                "",
            ]
        out += [
            f"**Results** ({len(frame)} finished runs, seeds {seeds[0]}–{seeds[-1]}, "
            f"{work:.0f} minutes of training and evaluation summed over runs, {span:.0f} "
            "minutes from the first start to the last end; the suite's `clbench report`):",
            "",
            table.strip(),
            "",
        ]
    out += [
        "**Verdicts** (95% intervals: of the mean, or of the difference, paired over seeds "
        "when both sides hold the same seeds):",
        "",
        "| claim | test | runs | value [95% CI] | difference [95% CI] | p | verdict |",
        "|---|---|---|---|---|---|---|",
        *[verdict_row(v) for v in verdicts],
        "",
    ]
    if "findings" in study.prose and table is not None:
        out += [f"**What it shows.** {study.prose['findings'].strip()}", ""]
    if "per_phase" in study.prose and table is not None:
        out += per_phase_tables(frame, study.prose["per_phase"])
    if "gpu" in study.prose:
        out += [f"**At full scale.** {study.prose['gpu'].strip()}", ""]
    return "\n".join(out), verdicts


def render_page(intro: str, studies: Sequence[Study]) -> str:
    sections, summary = [], []
    for number, study in enumerate(studies, start=1):
        text, verdicts = render_study(study, number)
        sections.append(text)
        summary += [f"| {number}. {study.title} | {v.claim.text} | {v.verdict} |" for v in verdicts]
    head = [
        "# Reproductions: the seed papers' claims, decided with confidence intervals",
        "",
        "<!-- generated by `python tools/reproductions.py` from "
        "configs/papers/studies/reproductions.yaml and the studies' runs; do not edit -->",
        "",
        intro.strip(),
        "",
        "| study | claim | verdict |",
        "|---|---|---|",
        *summary,
        "",
    ]
    return "\n".join(head + sections).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=STUDIES, help="the studies file")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    try:
        intro, studies = read_studies(args.studies)
    except ConfigError as exc:
        print(f"reproductions: error: {exc}", file=sys.stderr)
        return 2
    page = render_page(intro, studies)
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != page:
            print(f"{args.out} is out of date: run python tools/reproductions.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(page)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
