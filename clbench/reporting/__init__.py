"""Reports over many run folders: mean ± std tables in Markdown, LaTeX, CSV and HTML.

`render_report` is the entry point (`clbench report` and the sweep's leaderboard call it). The
pieces: `frame` (run folders -> one pandas row per run), `table` (split, group, mean ± std, best,
baseline deltas), `comparability` (which rows may be compared), `columns` (which direction is
better per metric), `formats` (the four renderers), `command` (the CLI).
"""

from clbench.reporting.report import ReportResult, render_report

__all__ = ["ReportResult", "render_report"]
