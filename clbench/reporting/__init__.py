"""Reports over many run folders: tables of means and confidence intervals in Markdown, LaTeX,
CSV and HTML.

`render_report` is the entry point (`clbench report` and the sweep's leaderboard call it). The
pieces: `frame` (run folders -> one pandas row per run), `table` (split, group, statistics, best
groups, baseline deltas), `significance` (intervals, paired/Welch t-tests, Holm), `comparability`
(which rows, and which columns of a row, may be compared), `columns` (direction, schedule
dependence and gap pair counts per metric), `formats` (the four renderers), `command` (the CLI).
"""

from clbench.reporting.report import ReportResult, render_report

__all__ = ["ReportResult", "render_report"]
