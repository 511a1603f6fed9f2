"""The results page: ``clbench report RESULTS --format html --out DIR`` writes ``DIR/index.html``.

One self-contained file that opens from disk, offline, and can be mailed: no script, style sheet,
font or image is fetched. It holds, per report table, the leaderboard (the same `Table` objects
and cell texts as ``--format md``/``csv``, so the numbers agree) and the budget columns, both
sortable by a click on a column header; the accuracy-vs-update curves of all settings; and per
setting its curves with seed bands, the stability-gap zoom after each task boundary, the accuracy
matrix and every run's ``config.yaml`` and ``manifest.json`` one click away.

Figures are inline SVG: vector graphics stay sharp at any zoom and in print, their text can be
searched, and an inline SVG needs no decoder, library or network. A figure whose SVG would exceed
`SVG_LIMIT` bytes (curves of thousands of evaluations) is embedded as a PNG instead (base64,
`PNG_DPI`), which keeps the page small enough to open quickly. An interactive chart library was
not used: it would have to be inlined (hundreds of KB of JavaScript) to work offline, and the
matplotlib figures are the same ones `clbench plot` draws.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.errors import ConfigError, CorruptedResultError
from clbench.metrics.directions import readable_name
from clbench.reporting.formats import HtmlStyle, delta_grid, legend, main_grid
from clbench.reporting.table import Row, Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clbench.reporting.report import ReportResult
    from clbench.results.reader import RunFolder

PAGE_NAME = "index.html"
SVG_LIMIT = 400_000  # bytes of one inline SVG; a larger figure is embedded as PNG
PNG_DPI = 150  # drawn at 150 dpi, shown at 96 px per inch: sharp on high-density screens
CSS_DPI = 96


@dataclass
class PageResult:
    """What `write_results_page` wrote."""

    path: Path
    report: ReportResult
    figures: int  # figures embedded
    svg: int  # of which inline SVG (the rest PNG)
    size: int  # bytes of the page


def check_page_folder(out: Path) -> None:
    """Refuse, before any work, a ``--out`` the page cannot be written to: a file, a folder
    under a file, or a folder (or its nearest existing parent) without write permission."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder for the results page (this is a file)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError("--out", str(out), f"a folder that can be made ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("--out", str(out), f"a writable folder ({existing} is not writable)")
    page = out / PAGE_NAME
    if page.exists() and (page.is_dir() or not os.access(page, os.W_OK)):
        raise ConfigError("--out", str(out), f"a folder where {PAGE_NAME} can be replaced")


def write_results_page(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    window: int | None = None,
    **report_options: Any,
) -> PageResult:
    """Build the report of ``paths`` (``report_options``: those of `render_report`, not
    ``fmt``/``aggregate``) and write the page to ``out/index.html`` atomically; nothing else in
    ``out`` is touched. Missing ``paths`` and an unwritable ``out`` are refused first."""
    from clbench.engine.run_dir import atomic_write
    from clbench.plotting.gap import DEFAULT_WINDOW
    from clbench.reporting.report import render_report

    if isinstance(paths, str | Path):
        paths = [paths]
    for raw in paths:
        if not Path(raw).exists():
            raise ConfigError("results", str(raw), "an existing run folder or results folder")
    out = Path(out)
    check_page_folder(out)
    result = render_report(paths, fmt="csv", **report_options)
    page = _Page(result, [str(p) for p in paths], out, window or DEFAULT_WINDOW)
    text = page.render()
    path = out / PAGE_NAME
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return PageResult(path, result, page.figures, page.svg, len(text.encode("utf-8")))


# --- figures -----------------------------------------------------------------------------------


def embed_figure(fig: Figure, alt: str) -> tuple[str, bool]:
    """``fig`` as inline ``<svg>`` markup, or as a base64 PNG ``<img>`` when the SVG would be
    over `SVG_LIMIT` bytes; returns the markup and whether it is SVG."""
    from clbench.plotting.figure import figure_bytes

    svg = figure_bytes(fig, "svg").decode("utf-8")
    if len(svg) <= SVG_LIMIT:
        svg = svg[svg.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
        label = f'<svg role="img" aria-label="{html.escape(alt)}" '
        return label + svg.removeprefix("<svg").lstrip(), True
    png = base64.b64encode(figure_bytes(fig, "png", dpi=PNG_DPI)).decode("ascii")
    width = round(fig.get_figwidth() * CSS_DPI)
    return (
        f'<img alt="{html.escape(alt)}" width="{width}" src="data:image/png;base64,{png}"/>',
        False,
    )


# --- the page ----------------------------------------------------------------------------------

PAGE_CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0;background:#fff}
main{max-width:1360px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:40px 0 8px;padding-bottom:4px;
border-bottom:1px solid var(--line)}h3{font-size:16px;margin:28px 0 6px}
h4{font-size:14px;margin:18px 0 6px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.meta,.notes,.legend,figcaption,.hint{color:var(--muted)}
.meta{margin:0 0 12px}.legend,.notes{font-size:12.5px;max-width:1100px}
nav.toc{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:8px 14px;
margin:12px 0 8px;font-size:13px}
nav.toc ol{margin:4px 0;padding-left:20px}nav.toc li{margin:1px 0}
nav.toc ol.cols{columns:3 22em;column-gap:24px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:8px 0;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;
vertical-align:top}
thead th{white-space:normal;vertical-align:bottom}
.ci{font-size:11px;color:var(--muted);font-weight:normal}
td strong .ci{font-weight:normal}
th:first-child,td:first-child{text-align:left;white-space:normal;min-width:14em}
thead th{border-bottom:2px solid var(--ink);background:#fff;position:sticky;top:0}
tbody tr:nth-child(even){background:var(--soft)}tbody tr:hover{background:#eaf2fc}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{color:var(--accent)}
table.sortable th::after{content:" \\2195";color:#b0b8c1;font-size:11px}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:var(--accent)}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:var(--accent)}
td strong{font-weight:650}
figure{margin:10px 0 18px}figure svg,figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12.5px;margin-top:2px;max-width:900px}
.pair{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start}
.pair figure.wide{flex:1 1 620px;max-width:900px}.pair figure.narrow{flex:0 1 420px}
section.setting{border-top:1px solid var(--line);margin-top:26px}
details.run{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px 10px}
details.run summary{cursor:pointer}details.run[open]{background:var(--soft)}
.files{display:flex;flex-wrap:wrap;gap:8px 24px}.files>div{flex:1 1 420px;min-width:0}
pre{background:#fff;border:1px solid var(--line);border-radius:4px;padding:8px;font-size:12px;
max-height:420px;overflow:auto}
code{font-size:12.5px}
""".strip()

# Records any error (script, or a resource that failed to load) on <html data-errors>: the
# browser test reads it back from the DOM; it runs first so it sees every later error.
ERROR_SCRIPT = """
window.addEventListener("error", function (event) {
  var root = document.documentElement, target = event.target || {};
  var text = event.message || ("failed to load " + (target.src || target.href || target.tagName));
  root.setAttribute("data-errors", (root.getAttribute("data-errors") || "") + text + "\\n");
}, true);
""".strip()

# Sortable columns (numbers by their data-v value, missing values last; the first click on a
# metric sorts best first by its direction) and, once loaded, how many figures have a size.
SORT_SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell ? cell.getAttribute("data-v") : null;
    return v === null || v === "" ? null : v;
  }
  function sort(th) {
    var row = th.parentNode, table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(row.children, th);
    var numeric = th.getAttribute("data-type") === "number";
    var state = th.getAttribute("aria-sort"), ascending;
    if (state) { ascending = state !== "ascending"; }
    else { ascending = numeric ? th.getAttribute("data-dir") === "lower" : true; }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(row.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.tabIndex = 0;
    th.title = (th.title ? th.title + "; " : "") + "click to sort";
    th.addEventListener("click", function () { sort(th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(th); }
    });
  });
  window.addEventListener("load", function () {
    var drawn = 0;
    document.querySelectorAll("figure.plot").forEach(function (figure) {
      var image = figure.querySelector("svg, img");
      if (!image) { return; }
      var box = image.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && (image.tagName !== "IMG" || image.naturalWidth > 0)) {
        drawn += 1;
      }
    });
    document.body.setAttribute("data-figures-drawn", String(drawn));
    document.body.setAttribute("data-ready", "1");
  });
})();
""".strip()


FIGURES_LEGEND = (
    "Lines are the mean over a setting's seeds; shaded bands are ±1 sample standard deviation "
    "(ddof=1) over the seeds. Bands are not clipped to [0, 1]: they are a spread, not possible "
    "accuracies, and clipping would hide how far seeds disagree (dotted lines mark 0 and 1 where "
    "a band passes them). Curves use the continual-evaluation subsets, dashed lines are task "
    "boundaries; the accuracy matrix uses the full test sets at phase ends."
)
TABLE_HINT = "Click a column header to sort; a setting's name leads to its figures and runs."


def _e(text: Any) -> str:
    return html.escape(str(text))


def _number(value: float | None) -> str:
    """A sort key written at full precision (``repr``), empty when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def _stack_interval(cell: str) -> str:
    """The interval of a cell (`` [low, high]``) on a second, smaller line: the mean stays the
    first thing read and a leaderboard of many columns fits the page width. The text is
    unchanged: only a line break and a span are added."""
    return re.sub(r" (\[[^\]<]*\])", r'<br/><span class="ci">\1</span>', cell, count=1)


class _Page:
    """The page of one report: rendered once by `render`."""

    def __init__(self, report: ReportResult, paths: list[str], out: Path, window: int) -> None:
        self.report = report
        self.paths = paths
        self.out = out
        self.window = window
        self.figures = 0
        self.svg = 0
        self.style = HtmlStyle()
        budget = set(report.runs.budget_columns) | set(report.runs.strategy_columns)
        self.is_budget = budget.__contains__

    # --- pieces --------------------------------------------------------------------------------

    def figure(self, fig: Figure, alt: str, caption: str, css: str = "") -> str:
        markup, is_svg = embed_figure(fig, alt)
        self.figures += 1
        self.svg += is_svg
        return f'<figure class="plot {css}">{markup}<figcaption>{caption}</figcaption></figure>'

    def sortable_table(
        self,
        table: Table,
        grid: tuple[list[str], list[list[str]]],
        rows: list[Row],
        keep: list[int],
    ) -> str:
        """The columns ``keep`` (indices into the grid) of a main or delta grid, with sort keys:
        the label, n, then each metric's mean (or delta)."""
        header, cells = grid
        heads = []
        for index in keep:
            if index == 0:
                heads.append(f'<th data-type="text">{header[0]}</th>')
            elif index == 1:
                heads.append(f'<th data-type="number" title="runs in the row">{header[1]}</th>')
            else:
                column = table.columns[index - 2]
                hint = readable_name(column.name)
                if column.direction:
                    hint += f": {column.direction} is better"
                heads.append(
                    f'<th data-type="number" data-dir="{column.direction or ""}" '
                    f'title="{_e(hint)}">{header[index]}</th>'
                )
        body = []
        for row, row_cells in zip(rows, cells, strict=True):
            tds = []
            for index in keep:
                if index == 0:
                    anchor = self.anchor(table, row)
                    tds.append(
                        f'<td data-v="{_e(row.label)}"><a href="#{anchor}">{row_cells[0]}</a></td>'
                    )
                elif index == 1:
                    tds.append(f'<td data-v="{row.n}">{row_cells[1]}</td>')
                else:
                    name = table.columns[index - 2].name
                    is_delta = rows is not table.rows
                    value = row.deltas.get(name) if is_delta else row.stats[name].mean
                    cell = _stack_interval(row_cells[index])
                    tds.append(f'<td data-v="{_number(value)}">{cell}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        return (
            '<div class="scroll"><table class="sortable"><thead><tr>'
            + "".join(heads)
            + "</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table></div>"
        )

    def anchor(self, table: Table, row: Row) -> str:
        index = self.report.tables.index(table)
        return f"setting-{index + 1}-{table.rows.index(row) + 1}"

    def settings_of(self, table: Table) -> list[tuple[Row, Any]]:
        """Each row as a plotting `Setting` of its runs that have records (None: none has)."""
        from clbench.plotting.run_data import has_records
        from clbench.plotting.settings import Setting

        found = []
        for row in table.rows:
            runs = [self.report.folders[i] for i in row.runs]
            drawable = [run for run in runs if has_records(run)]
            found.append((row, Setting(row.label, drawable) if drawable else None))
        return found

    # --- sections ------------------------------------------------------------------------------

    def render(self) -> str:
        tables = self.report.tables
        body = [self.header()]
        for number, table in enumerate(tables, 1):
            body.append(self.table_section(number, table))
        return "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en">',
                "<head>",
                '<meta charset="utf-8"/>',
                '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
                f"<title>{_e(self.title())}</title>",
                f"<script>{ERROR_SCRIPT}</script>",
                f"<style>{PAGE_CSS}</style>",
                "</head>",
                f'<body data-figures="{self.figures}">',
                "<main>",
                *body,
                "</main>",
                f"<script>{SORT_SCRIPT}</script>",
                "</body>",
                "</html>",
                "",
            ]
        )

    def title(self) -> str:
        return "clbench results: " + ", ".join(self.paths)

    def header(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            made_by = f"clbench {version('clbench')}"
        except PackageNotFoundError:
            made_by = "clbench"
        report = self.report
        rows = sum(len(t.rows) for t in report.tables)
        runs = len(report.runs.frame)
        sources = ", ".join(f"<code>{_e(p)}</code>" for p in self.paths)
        lines = [
            "<header>",
            "<h1>Results</h1>",
            f'<p class="meta">{runs} run(s) in {rows} setting(s) from {sources}; '
            f"made by {_e(made_by)} (<code>clbench report --format html</code>).</p>",
        ]
        if report.skipped:
            lines.append(f'<p class="meta">{_e(report.skipped)}.</p>')
        toc = []
        cols = ' class="cols"'  # many settings: the list flows into columns
        for number, table in enumerate(report.tables, 1):
            name = f"Table {number}: {table.title}" if table.title else "Leaderboard"
            settings = "".join(
                f'<li><a href="#{self.anchor(table, row)}">{_e(row.label)}</a></li>'
                for row in table.rows
            )
            toc.append(
                f'<li><a href="#table-{number}">{_e(name)}</a> · '
                f'<a href="#curves-{number}">curves</a>'
                f"<ol{cols if len(table.rows) > 8 else ''}>{settings}</ol></li>"
            )
        lines.append(
            '<nav class="toc"><strong>Contents</strong><ol>' + "".join(toc) + "</ol></nav>"
        )
        lines.append("</header>")
        return "\n".join(lines)

    def table_section(self, number: int, table: Table) -> str:
        from clbench.plotting.curves import draw_curves

        style = self.style
        name = f"Table {number}: {table.title}" if table.title else "Leaderboard"
        parts = [
            f'<section id="table-{number}">',
            f"<h2>{_e(name)}</h2>",
            f'<p class="hint">{_e(TABLE_HINT)}</p>',
        ]
        grid = main_grid(table, style)
        metric_keep = [0, 1] + [
            i + 2 for i, c in enumerate(table.columns) if not self.is_budget(c.name)
        ]
        budget_keep = [0, 1] + [
            i + 2 for i, c in enumerate(table.columns) if self.is_budget(c.name)
        ]
        if len(metric_keep) > 2:
            parts.append(self.sortable_table(table, grid, table.rows, metric_keep))
        notes = [
            f'<p class="notes">{style.sup(str(n))} {_e(note)}</p>'
            for n, note in enumerate(table.footnotes(), 1)
        ]
        notes += [f'<p class="notes">{_e(note)}</p>' for note in table.notes]
        parts += notes
        parts.append(f'<p class="legend">{_e(legend([table]))}.</p>')
        if len(budget_keep) > 2:
            parts.append("<h3>Budget: what each setting cost</h3>")
            parts.append(self.sortable_table(table, grid, table.rows, budget_keep))
        if table.baseline is not None:
            parts.append(f"<h3>{_e('Δ vs baseline')} {_e(table.baseline.label)}</h3>")
            rows = [row for row in table.rows if row is not table.baseline]
            dgrid = delta_grid(table, style)
            keep = list(range(len(dgrid[0])))
            parts.append(self.sortable_table(table, dgrid, rows, keep))

        settings = self.settings_of(table)
        drawable = [s for _, s in settings if s is not None]
        parts.append(f'<h3 id="curves-{number}">Accuracy per task, all settings</h3>')
        parts.append(f'<p class="legend">{_e(FIGURES_LEGEND)}</p>')
        if len(drawable) > 1:
            fig = draw_curves(drawable)
            parts.append(
                self.figure(
                    fig,
                    "accuracy per task of every setting",
                    "Up to 8 settings share one panel per task; more settings get a panel each, "
                    "best final accuracy first.",
                )
            )
        elif drawable:
            parts.append('<p class="hint">One setting: its curves are below.</p>')
        else:
            parts.append('<p class="hint">No run has records.parquet: no curves.</p>')
        for row, setting in settings:
            parts.append(self.setting_section(table, row, setting))
        parts.append("</section>")
        return "\n".join(parts)

    def setting_section(self, table: Table, row: Row, setting: Any) -> str:
        from clbench.plotting.curves import draw_curves
        from clbench.plotting.gap import NoBoundaryError, draw_gap
        from clbench.plotting.matrix import draw_matrix

        runs = [self.report.folders[i] for i in row.runs]
        seeds = ", ".join(str(self.report.runs.key_value(i, "seed")) for i in row.runs)
        parts = [
            f'<section class="setting" id="{self.anchor(table, row)}">',
            f"<h3>{_e(row.label)}</h3>",
            f'<p class="meta">{row.n} run(s), seeds {_e(seeds)}</p>',
        ]
        if setting is None:
            parts.append('<p class="hint">No run of this setting has records: no figures.</p>')
        else:
            if setting.seeds < len(runs):
                parts.append(
                    f'<p class="hint">Figures over the {setting.seeds} run(s) with records.</p>'
                )
            curves = self.figure(
                draw_curves([setting], title="accuracy per task (evaluation subset)"),
                f"accuracy per task, {row.label}",
                "Per-task accuracy against updates, seed mean with ±1 std band.",
                "wide",
            )
            matrix = self.figure(
                draw_matrix([setting]),
                f"accuracy matrix, {row.label}",
                "Full-test-set accuracy on task j after phase i (seed mean).",
                "narrow",
            )
            parts.append(f'<div class="pair">{curves}{matrix}</div>')
            try:
                gap = draw_gap([setting], self.window)
            except NoBoundaryError:
                parts.append('<p class="hint">One phase only: no task boundary to zoom on.</p>')
            else:
                parts.append(
                    self.figure(
                        gap,
                        f"stability gap, {row.label}",
                        f"The first updates (window {self.window}) after each task boundary: the "
                        "old tasks' accuracy drop (stability gap) and recovery.",
                    )
                )
        parts.append("<h4>Runs</h4>")
        parts += [self.run_details(run) for run in runs]
        parts.append("</section>")
        return "\n".join(parts)

    def run_details(self, run: RunFolder) -> str:
        config = _text_of(run.file("config.yaml"))
        try:
            manifest = json.dumps(run.manifest, indent=2)
        except CorruptedResultError as exc:
            manifest = f"({exc})"
        final = ""
        if run.finished and run.file("summary.json").is_file():
            value = run.summary["metrics"].get("final_acc")
            if isinstance(value, int | float):
                final = f" · final_acc {value:.3f}"
        link = Path(os.path.relpath(run.path.resolve(), self.out.resolve())).as_posix()
        return (
            '<details class="run"><summary>'
            f"<code>{_e(run.path.name)}</code> · seed {_e(run.config.get('seed'))} · "
            f"{_e(run.status)}{_e(final)}</summary>"
            f'<p>Folder: <a href="{_e(link)}/">{_e(link)}</a></p><div class="files">'
            f"<div><h4>config.yaml</h4><pre>{_e(config)}</pre></div>"
            f"<div><h4>manifest.json</h4><pre>{_e(manifest)}</pre></div>"
            "</div></details>"
        )


def _text_of(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
