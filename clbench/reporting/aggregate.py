"""Aggregates over scenarios (`clbench report --aggregate`), after Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021).

Per method, the interquartile mean (IQM) of a metric over all runs of all scenarios, and for each
pair of methods the probability of improvement P(X > Y): the chance that a run of X beats a run of
Y on the same scenario (Mann-Whitney U / (n·m), ties count 1/2), averaged over scenarios. Both come
with 95% percentile intervals of a stratified bootstrap: each resample redraws the runs within
every scenario (and, for P(X > Y), those of X and Y independently), so scenarios never trade runs.

A *scenario* is what made the numbers: by default the comparability keys that vary between the
runs (`comparability.is_comparability_key`: data, scenario, evaluation protocol, metric options,
epochs). A *method* is what the report's rows are: by default the other identifying keys that
vary (strategy and its hyperparameters), labelled as the report labels rows. Every method needs
runs on every scenario; a gap is an error naming both, since an aggregate over another set of
scenarios is another number. Scores are not normalised: accuracies already share [0, 1], and a
per-scenario min-max over the methods at hand would change every method's number whenever a
method is added. P(X > Y) is rank-based per scenario, so it needs no normalisation at all.
"""

from __future__ import annotations

import html
import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats

from clbench.errors import ClbenchError, ConfigError
from clbench.reporting.columns import ALL_METRICS, ColumnSpec, column_spec
from clbench.reporting.comparability import NO_EFFECT_ON_NUMBERS, is_comparability_key
from clbench.reporting.formats import (
    PAGE_CSS,
    HtmlStyle,
    LatexStyle,
    MarkdownStyle,
    Style,
    html_table,
    latex_tabular,
    markdown_grid,
    plain_value,
)
from clbench.reporting.frame import RunFrame
from clbench.reporting.table import PHASE_KEY, partition, split_title
from clbench.results.labels import label_key_order, setting_labels, value_text
from clbench.results.reader import varying_keys

DEFAULT_AGGREGATE_METRICS = ("final_acc", "min_acc")
DEFAULT_REPS = 2000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
IQM_CUT = 0.25  # trim_mean cuts this share at each end: the middle half is averaged
POI_DECIMALS = 2


@dataclass(frozen=True)
class AggregateOptions:
    """``scenario_keys``: the keys that tell scenarios apart (None: the varying comparability
    keys); ``reps`` bootstrap resamples drawn with ``seed``."""

    scenario_keys: tuple[str, ...] | None = None
    reps: int = DEFAULT_REPS
    seed: int = DEFAULT_SEED
    confidence: float = CONFIDENCE

    def __post_init__(self) -> None:
        if self.reps < 1:
            raise ConfigError("--bootstrap-reps", self.reps, "a positive number of resamples")
        if not 0 < self.confidence < 1:
            raise ConfigError("confidence", self.confidence, "a level between 0 and 1")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval (None where no run could be redrawn)."""

    estimate: float
    low: float | None = None
    high: float | None = None


@dataclass
class Method:
    label: str
    keys: dict[str, Any]  # the method key values shared by its runs
    runs: list[int]  # frame rows, all scenarios
    iqm: dict[str, Interval] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)  # runs that define each metric


@dataclass
class Aggregate:
    """One aggregate: methods x metrics over the scenarios of one split (e.g. one GTEP phase)."""

    split: dict[str, Any]
    method_keys: list[str]
    scenario_keys: list[str]
    scenarios: list[str]  # scenario labels
    columns: list[ColumnSpec]
    methods: list[Method]  # best IQM of the first metric first
    # metric -> (row, column) method indices -> P(row better than column)
    improvement: dict[str, dict[tuple[int, int], Interval]]
    options: AggregateOptions

    @property
    def title(self) -> str | None:
        return split_title(self.split)


# --- the statistics --------------------------------------------------------------------------


def iqm(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Interquartile mean of all values of all samples, along the last axis (batches allowed)."""
    pooled = np.concatenate([np.asarray(s, dtype=float) for s in samples], axis=-1)
    return scipy.stats.trim_mean(pooled, IQM_CUT, axis=-1)


def probability_of_improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over scenarios of P(a run of x > a run of y) = U / (n·m), ties counting 1/2;
    ``x[s]`` and ``y[s]`` are the scores on scenario s (last axis: runs)."""
    if len(x) != len(y) or not x:
        raise ValueError("x and y need scores on the same, non-empty list of scenarios")
    per_scenario = []
    for xs, ys in zip(x, y, strict=True):
        # U is the same whatever the p-value method; asymptotic skips the exact distribution
        u = scipy.stats.mannwhitneyu(xs, ys, axis=-1, method="asymptotic").statistic
        per_scenario.append(u / (np.shape(xs)[-1] * np.shape(ys)[-1]))
    return np.mean(per_scenario, axis=0)


def stratified_interval(
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    samples: Sequence[np.ndarray],
    reps: int,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
) -> Interval:
    """``statistic`` of ``samples`` with a percentile interval of the stratified bootstrap that
    redraws each sample (a scenario's runs) on its own, with replacement and at its own size.

    ``statistic`` gets one array per sample, runs on the last axis. A one-run sample redraws to
    itself, so it is held fixed (scipy.stats.bootstrap wants two values per sample); with only
    such samples there is nothing to redraw and the interval is None.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    estimate = float(statistic(samples))
    redrawn = [i for i, s in enumerate(samples) if len(s) > 1]
    if not redrawn:
        return Interval(estimate)

    def resampled(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        batch = drawn[0].shape[:-1]
        parts = [np.broadcast_to(s, (*batch, len(s))) for s in samples]
        for i, values in zip(redrawn, drawn, strict=True):
            parts[i] = values
        return statistic(parts)

    result = scipy.stats.bootstrap(
        [samples[i] for i in redrawn],
        resampled,
        n_resamples=reps,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        # percentile, as rliable: BCa's jackknife is unstable for the jumpy IQM and U statistics
        method="percentile",
        # random_state, not rng: rng needs scipy >= 1.15 and pyproject allows 1.11
        random_state=rng,
    )
    interval = result.confidence_interval
    return Interval(estimate, float(interval.low), float(interval.high))


def _rng(seed: int, *names: str) -> np.random.Generator:
    """One stream per estimate, fixed by the seed and what is estimated: a method's interval
    does not change when another method joins the report."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


# --- runs -> aggregates ----------------------------------------------------------------------


def select_metrics(metrics: Sequence[str] | None, available: Sequence[str]) -> list[ColumnSpec]:
    """The aggregated metrics: each needs a direction (P(X > Y) asks which run is better)."""
    ranked = [m for m in available if column_spec(m).direction is not None]
    if not metrics:
        names = [m for m in DEFAULT_AGGREGATE_METRICS if m in ranked]
        if not names:
            raise ConfigError("--metrics", None, f"one of the runs' metrics: {', '.join(ranked)}")
    elif list(metrics) == [ALL_METRICS]:
        names = ranked
    else:
        for name in metrics:
            if name not in ranked:
                allowed = "a metric where higher or lower is better (reporting/columns.py): "
                raise ConfigError("--metrics", name, allowed + ", ".join([*ranked, ALL_METRICS]))
        names = list(dict.fromkeys(metrics))
    return [column_spec(name) for name in names]


def build_aggregates(
    runs: RunFrame,
    columns: Sequence[ColumnSpec],
    options: AggregateOptions,
    group_by: Sequence[str] | None = None,
    split_by: Sequence[str] = (),
    treatment: Sequence[str] = (),
) -> list[Aggregate]:
    """One aggregate per split (``tags.phase`` always splits: tuning and evaluation runs are
    never pooled); methods by ``group_by`` (None: the varying keys that are not scenario keys)
    and the ``treatment`` keys, which are never scenario keys: a study's kernels are compared
    as methods over the scenarios, not pooled into them."""
    phase = [PHASE_KEY] if PHASE_KEY in runs.tag_keys else []
    split_keys = list(dict.fromkeys([*phase, *split_by]))
    aggregates = []
    for split_values, members in partition(runs, range(len(runs.frame)), split_keys):
        varying = varying_keys([runs.configs[i] for i in members])
        if options.scenario_keys is None:
            scenario_keys = label_key_order(
                [k for k in varying if is_comparability_key(k) and k not in treatment]
            )
        else:
            scenario_keys = [k for k in options.scenario_keys if k not in split_keys]
        if group_by is None:
            method_keys = label_key_order(
                [
                    k
                    for k in varying
                    if k not in scenario_keys
                    and (k in treatment or not is_comparability_key(k))
                    and k not in NO_EFFECT_ON_NUMBERS
                ]
            )
        else:
            method_keys = list(dict.fromkeys([*group_by, *treatment]))
            method_keys = [k for k in method_keys if k not in split_keys]
            both = [k for k in method_keys if k in scenario_keys]
            if both:
                raise ConfigError("--group-by", both[0], "a key that is not a scenario key")
        split = dict(zip(split_keys, split_values, strict=True))
        aggregates.append(
            _aggregate(
                runs,
                members,
                split,
                method_keys,
                scenario_keys,
                columns,
                options,
                show_all=group_by is not None,
            )
        )
    return aggregates


def _aggregate(
    runs: RunFrame,
    members: list[int],
    split: dict[str, Any],
    method_keys: list[str],
    scenario_keys: list[str],
    columns: Sequence[ColumnSpec],
    options: AggregateOptions,
    show_all: bool = False,
) -> Aggregate:
    scenario_groups = partition(runs, members, scenario_keys)
    scenario_labels = _labels(
        runs, [dict(zip(scenario_keys, v, strict=True)) for v, _ in scenario_groups], scenario_keys
    )
    scenario_of = {i: s for s, (_, rows) in enumerate(scenario_groups) for i in rows}
    methods = [
        Method(label="", keys=dict(zip(method_keys, values, strict=True)), runs=rows)
        for values, rows in partition(runs, members, method_keys)
    ]
    labels = _labels(
        runs, [m.keys for m in methods], method_keys, [m.runs for m in methods], show_all
    )
    for method, label in zip(methods, labels, strict=True):
        method.label = label

    scores: dict[str, list[list[np.ndarray]]] = {}  # metric -> method -> scenario -> runs
    for column in columns:
        per_method = []
        for method in methods:
            per_scenario: list[list[float]] = [[] for _ in scenario_groups]
            for i in method.runs:
                value = runs.frame.at[i, column.name]
                if not np.isnan(value):
                    per_scenario[scenario_of[i]].append(float(value))
            per_method.append([np.array(v) for v in per_scenario])
        _check_complete(column.name, methods, scenario_labels, per_method)
        scores[column.name] = per_method
        for method, samples in zip(methods, per_method, strict=True):
            method.n[column.name] = sum(len(s) for s in samples)
            method.iqm[column.name] = stratified_interval(
                iqm, samples, options.reps, _rng(options.seed, "iqm", column.name, method.label)
            )

    if columns:  # a leaderboard: best IQM of the first metric first (stable on ties)
        first = columns[0]
        sign = -1.0 if first.direction == "higher" else 1.0
        order = sorted(
            range(len(methods)), key=lambda i: sign * methods[i].iqm[first.name].estimate
        )
        methods = [methods[i] for i in order]
        scores = {name: [per_method[i] for i in order] for name, per_method in scores.items()}
    improvement = {
        column.name: _improvements(column, methods, scores[column.name], options)
        for column in columns
    }
    return Aggregate(
        split=split,
        method_keys=method_keys,
        scenario_keys=scenario_keys,
        scenarios=scenario_labels,
        columns=list(columns),
        methods=methods,
        improvement=improvement,
        options=options,
    )


def _improvements(
    column: ColumnSpec,
    methods: list[Method],
    scores: list[list[np.ndarray]],
    options: AggregateOptions,
) -> dict[tuple[int, int], Interval]:
    """P(row better than column) for every ordered pair; P(Y > X) = 1 - P(X > Y) exactly
    (U_xy + U_yx = n·m), so each pair is bootstrapped once."""
    # a lower-is-better metric is ranked on its negation: "better" means lower
    sign = -1.0 if column.direction == "lower" else 1.0
    scenarios = len(scores[0]) if scores else 0
    found: dict[tuple[int, int], Interval] = {}
    for a in range(len(methods)):
        for b in range(a + 1, len(methods)):
            samples = [sign * s for s in scores[a]] + [sign * s for s in scores[b]]
            forward = stratified_interval(
                lambda parts: probability_of_improvement(parts[:scenarios], parts[scenarios:]),
                samples,
                options.reps,
                _rng(options.seed, "poi", column.name, methods[a].label, methods[b].label),
                options.confidence,
            )
            found[a, b] = forward
            found[b, a] = Interval(
                1.0 - forward.estimate,
                None if forward.high is None else 1.0 - forward.high,
                None if forward.low is None else 1.0 - forward.low,
            )
    return found


def _check_complete(
    metric: str,
    methods: list[Method],
    scenarios: list[str],
    scores: list[list[np.ndarray]],
) -> None:
    gaps = [
        (method, scenarios[s])
        for method, per_scenario in zip(methods, scores, strict=True)
        for s, values in enumerate(per_scenario)
        if len(values) == 0
    ]
    if not gaps:
        return
    shown = "; ".join(f"{m.label!r} on {s!r}" for m, s in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    raise ClbenchError(
        f"--aggregate: no runs with a defined {metric}: {shown}{more}. Every method needs runs "
        "on every scenario; restrict RESULTS, or choose methods with --group-by and scenarios "
        "with --aggregate-by"
    )


def _labels(
    runs: RunFrame,
    settings: list[dict[str, Any]],
    keys: list[str],
    members: list[list[int]] | None = None,
    show_all: bool = False,
) -> list[str]:
    """Report labels (`setting_labels`; ``show_all``: keys the user chose are all named); where
    the keys say nothing, the strategy names of the runs (methods) or "all runs" (one scenario)."""
    labels = setting_labels(settings, keys, show_all)
    for index, label in enumerate(labels):
        if not label and members is not None and "strategy.name" in runs.config_keys:
            names = (value_text(runs.key_value(i, "strategy.name")) for i in members[index])
            labels[index] = " / ".join(dict.fromkeys(names))
        elif not label:
            labels[index] = "all runs"
    return labels


# --- rendering -------------------------------------------------------------------------------

LABEL_HEADER = "setting"
IMPROVEMENT_HEADER = "P(row > column)"


def legend(options: AggregateOptions) -> str:
    """What the numbers are, printed under every aggregate."""
    level = f"{options.confidence * 100:g}%"
    return (
        "IQM: interquartile mean (scipy.stats.trim_mean, 25% cut at each end) of all runs of all "
        "scenarios pooled, scores not normalised; P(row > column): chance that a run of the row "
        "beats a run of the column on the same scenario (Mann-Whitney U/(n·m), ties count 1/2), "
        f"averaged over scenarios; [low, high]: {level} percentile interval of a stratified "
        f"bootstrap ({options.reps} resamples of the runs within each scenario, seed "
        f"{options.seed}; none where every scenario has one run); ↑ higher / ↓ lower is better"
    )


def _interval_text(interval: Interval, decimals: int, style: Style) -> str:
    def number(value: float) -> str:
        return style.number(f"{value:.{decimals}f}")

    text = number(interval.estimate)
    if interval.low is not None and interval.high is not None:
        text += f" [{number(interval.low)}, {number(interval.high)}]"
    return text


def iqm_grid(aggregate: Aggregate, style: Style) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the IQM table: one row per method."""
    level = f"{aggregate.options.confidence * 100:g}%"
    header = [
        style.escape(LABEL_HEADER),
        "n",
        "scenarios",
        *(
            style.escape(f"{c.name} IQM [{level} CI]") + style.arrow(c.direction)
            for c in aggregate.columns
        ),
    ]
    rows = []
    for method in aggregate.methods:
        cells = [style.escape(method.label), str(len(method.runs)), str(len(aggregate.scenarios))]
        for column in aggregate.columns:
            text = _interval_text(method.iqm[column.name], column.decimals, style)
            if method.n[column.name] < len(method.runs):
                text += f" (n={method.n[column.name]})"
            cells.append(text)
        rows.append(cells)
    return header, rows


def improvement_grid(
    aggregate: Aggregate, column: ColumnSpec, style: Style
) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the P(row > column) matrix of one metric; the diagonal is empty."""
    labels = [style.escape(m.label) for m in aggregate.methods]
    found = aggregate.improvement[column.name]
    rows = []
    for a, label in enumerate(labels):
        cells = [label]
        for b in range(len(labels)):
            cells.append(
                style.missing if a == b else _interval_text(found[a, b], POI_DECIMALS, style)
            )
        rows.append(cells)
    return [style.escape(IMPROVEMENT_HEADER), *labels], rows


def _scenarios_line(aggregate: Aggregate, style: Style) -> str:
    names = "; ".join(style.escape(s) for s in aggregate.scenarios)
    return f"Over {len(aggregate.scenarios)} scenario(s): {names}"


def _improvement_title(column: ColumnSpec, style: Style) -> str:
    return style.escape(f"P(row better than column), {column.name}") + style.arrow(column.direction)


def aggregate_markdown(aggregates: Sequence[Aggregate]) -> str:
    style = MarkdownStyle()
    lines: list[str] = []
    for aggregate in aggregates:
        if aggregate.title:
            lines += [f"### {style.escape(aggregate.title)}", ""]
        lines += [_scenarios_line(aggregate, style) + ":", ""]
        lines += [*markdown_grid(*iqm_grid(aggregate, style)), ""]
        for column in aggregate.columns:
            lines += [_improvement_title(column, style) + ":", ""]
            lines += [*markdown_grid(*improvement_grid(aggregate, column, style)), ""]
    if aggregates:
        lines.append(f"_{style.escape(legend(aggregates[0].options))}._")
    return "\n".join(lines) + "\n"


def aggregate_latex(aggregates: Sequence[Aggregate]) -> str:
    """booktabs tabulars (``\\usepackage{booktabs}``), as the report's tables."""
    style = LatexStyle()
    lines = []
    if aggregates:
        lines.append("% clbench report --aggregate: " + legend(aggregates[0].options))
    for aggregate in aggregates:
        if aggregate.title:
            lines.append(rf"\noindent\textbf{{{style.escape(aggregate.title)}}}\par\smallskip")
        lines.append(rf"\noindent {_scenarios_line(aggregate, style)}\par\smallskip")
        lines += latex_tabular(*iqm_grid(aggregate, style))
        for column in aggregate.columns:
            lines.append(
                rf"\par\medskip\noindent {_improvement_title(column, style)}\par\smallskip"
            )
            lines += latex_tabular(*improvement_grid(aggregate, column, style))
        lines.append(r"\par\bigskip")
    return "\n".join(lines) + "\n"


def aggregate_html(aggregates: Sequence[Aggregate]) -> str:
    """A standalone page, well-formed XML as the report's."""
    style = HtmlStyle()
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"/><title>clbench report --aggregate</title>',
        f"<style>{PAGE_CSS}</style></head>",
        "<body>",
    ]
    for aggregate in aggregates:
        if aggregate.title:
            lines.append(f"<h2>{style.escape(aggregate.title)}</h2>")
        lines.append(f"<p>{_scenarios_line(aggregate, style)}</p>")
        lines += html_table(*iqm_grid(aggregate, style))
        for column in aggregate.columns:
            lines.append(f"<h3>{_improvement_title(column, style)}</h3>")
            lines += html_table(*improvement_grid(aggregate, column, style))
    if aggregates:
        lines.append(f'<p class="legend">{html.escape(legend(aggregates[0].options))}.</p>')
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def aggregate_csv(aggregates: Sequence[Aggregate]) -> str:
    """Long format, full precision: ``kind`` ``iqm`` rows (a method's IQM, ``n`` runs over
    ``scenarios``) and ``improvement`` rows (P(``label`` > ``versus``)), each with ``estimate``,
    ``low`` and ``high`` (empty: no interval)."""
    import pandas as pd

    records = []
    for aggregate in aggregates:
        split = {k: plain_value(v) for k, v in aggregate.split.items()}
        for column in aggregate.columns:
            base = {**split, "metric": column.name, "direction": column.direction}
            for a, method in enumerate(aggregate.methods):
                keys = {k: plain_value(v) for k, v in method.keys.items()}
                interval = method.iqm[column.name]
                records.append(
                    base
                    | {"kind": "iqm", "label": method.label, "versus": None}
                    | keys
                    | {"n": method.n[column.name], "scenarios": len(aggregate.scenarios)}
                    | _interval_record(interval)
                )
                for b, other in enumerate(aggregate.methods):
                    if a != b:
                        records.append(
                            base
                            | {"kind": "improvement", "label": method.label}
                            | {"versus": other.label}
                            | keys
                            | {"n": None, "scenarios": len(aggregate.scenarios)}
                            | _interval_record(aggregate.improvement[column.name][a, b])
                        )
    split_keys = [k for a in aggregates for k in a.split]
    first = ["kind", "metric", "direction", "label", "versus"]
    order = list(dict.fromkeys([*split_keys, *first, *(k for r in records for k in r)]))
    buffer = io.StringIO()
    pd.DataFrame(records, columns=order, dtype=object).to_csv(buffer, index=False)
    return buffer.getvalue()


def _interval_record(interval: Interval) -> dict[str, float | None]:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


AGGREGATE_RENDERERS: dict[str, Callable[[Sequence[Aggregate]], str]] = {
    "md": aggregate_markdown,
    "latex": aggregate_latex,
    "csv": aggregate_csv,
    "html": aggregate_html,
}
