"""`clbench.report`: the leaderboard tables of `clbench report`, as an object for notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clbench.api.load import Paths, expand_paths

if TYPE_CHECKING:
    import pandas as pd

    from clbench.reporting.report import ReportResult


@dataclass(frozen=True)
class Report:
    """Tables of means with confidence intervals, one row per setting; each ``to_*`` renders
    them exactly as ``clbench report --format ...`` does."""

    result: ReportResult

    @property
    def skipped(self) -> str | None:
        """What was left out and why (unfinished or corrupted folders), or None."""
        return self.result.skipped

    def to_frame(self) -> pd.DataFrame:
        """One row per table row, the columns of ``--format csv``."""
        from clbench.reporting.formats import csv_frame

        return csv_frame(self.result.tables)

    def to_csv(self) -> str:
        return self._render("csv")

    def to_markdown(self) -> str:
        return self._render("md")

    def to_latex(self) -> str:
        return self._render("latex")

    def to_html(self) -> str:
        return self._render("html")

    def _repr_markdown_(self) -> str:  # Jupyter shows the Markdown table
        return self.to_markdown()

    def _render(self, fmt: str) -> str:
        from clbench.reporting.formats import RENDERERS

        return RENDERERS[fmt](self.result.tables)


def report(
    results: Paths | Any,
    *,
    group_by: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    sort_by: str | None = None,
    split_by: Sequence[str] = (),
    treatment: Sequence[str] = (),
    ci: str | None = None,
    confidence: float | None = None,
    include_partial: bool = False,
    strict: bool = False,
) -> Report:
    """Tables over the runs under ``results`` (folders, globs, or a `Results` from
    `clbench.sweeps`), with the options of ``clbench report`` (same names, ``sort_by`` for
    ``--sort``): rows grouped by ``group_by`` (default: the keys that vary), ``metrics`` columns
    (``["all"]`` for every one), ``baseline`` deltas, ``ci`` ``t`` | ``bootstrap`` | ``none``,
    ``treatment`` keys varied on purpose (``["scenario.kernel"]``: a row per kernel, compared
    for best values, not footnoted as another scenario)."""
    from clbench.reporting.report import render_report

    paths = getattr(results, "paths", None)
    result = render_report(
        paths if paths is not None else expand_paths(results),
        group_by=group_by,
        metrics=metrics,
        fmt="csv",
        baseline=baseline,
        include_partial=include_partial,
        strict=strict,
        split_by=split_by,
        treatment=treatment,
        sort_by=sort_by,
        ci=ci,
        confidence=confidence,
    )
    return Report(result)
