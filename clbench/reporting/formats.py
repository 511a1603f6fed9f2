"""Report tables -> text: GitHub Markdown, LaTeX (booktabs), CSV and a standalone HTML page.

Markdown, LaTeX and HTML share one grid of cell texts (``mean [CI low, CI high]``, or
``mean ± std`` with ``--ci none``; the top group in bold; footnote markers on labels and cells); a
`Style` supplies each format's escaping and markup, and `legend` says what a cell and the bold
mean, so a bracket is never mistaken for a std. CSV is for machines: plain numbers, with mean,
std, n, interval, best flag, comparability and the baseline delta with its test, per metric in
columns of their own.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clbench.reporting.columns import ColumnSpec
from clbench.reporting.significance import BOOTSTRAP_RESAMPLES, Comparison, Stat
from clbench.reporting.table import Row, Table
from clbench.results.labels import value_text

if TYPE_CHECKING:
    import pandas as pd

LABEL_HEADER = "setting"
P_FLOOR = 0.001  # smaller p-values print as p<0.001


def _percent(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def legend(tables: Sequence[Table]) -> str:
    """What the cells, the bold and the deltas mean, for the tables' interval and confidence."""
    ci, confidence = (tables[0].ci, tables[0].confidence) if tables else ("t", 0.95)
    level = _percent(confidence)
    if ci == "none":
        cells = "mean ± sample std (ddof=1)"
    else:
        method = (
            "Student t" if ci == "t" else f"BCa bootstrap, {BOOTSTRAP_RESAMPLES} resamples, seed 0"
        )
        cells = f"mean [{level} confidence interval of the mean, {method}]"
    text = (
        f"{cells} over the n runs of each row (one run: no interval; (n=k): only k runs define "
        "the value); ↑ higher / ↓ lower is better; bold: not significantly worse than the best "
        "row, the best mean among comparable rows of 2+ runs (two-sided t-test: paired over the "
        "seeds when both rows hold the same seeds, else Welch; Holm-corrected over the rows "
        f"tested; α = {1 - confidence:.3g}); a single run is never bold"
    )
    if any(t.baseline is not None for t in tables):
        interval = "" if ci == "none" else f" [{level} interval of the difference]"
        text += (
            f"; Δ: row mean - baseline mean{interval}, p of the same t-test against the baseline, "
            "Holm-corrected over the rows of the table"
        )
    return text


class Style:
    """Plain text; subclasses escape and mark up for one format."""

    pm = " ± "
    missing = "–"
    delta = "Δ"

    def escape(self, text: str) -> str:
        return text

    def bold(self, text: str) -> str:
        return text

    def sup(self, text: str) -> str:
        return text

    def arrow(self, direction: str | None) -> str:
        return {"higher": " ↑", "lower": " ↓"}.get(direction or "", "")

    def number(self, text: str) -> str:
        return text


class MarkdownStyle(Style):
    _superscripts = str.maketrans("0123456789,", "⁰¹²³⁴⁵⁶⁷⁸⁹˒")

    def escape(self, text: str) -> str:
        return re.sub(r"([\\|*])", r"\\\1", text)

    def bold(self, text: str) -> str:
        return f"**{text}**"

    def sup(self, text: str) -> str:
        return text.translate(self._superscripts)


# Characters LaTeX reads as markup, and the symbols of the shared grid, as LaTeX source.
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "–": "--",
    "Δ": r"$\Delta$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "α": r"$\alpha$",
    "<": r"$<$",
    ">": r"$>$",
}


class LatexStyle(Style):
    pm = r" $\pm$ "
    missing = "--"
    delta = r"$\Delta$"
    _pattern = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))

    def escape(self, text: str) -> str:
        return self._pattern.sub(lambda m: _LATEX_SPECIAL[m.group(0)], text)

    def bold(self, text: str) -> str:
        return rf"\textbf{{{text}}}"

    def sup(self, text: str) -> str:
        return rf"\textsuperscript{{{text}}}"

    def arrow(self, direction: str | None) -> str:
        return {"higher": r" $\uparrow$", "lower": r" $\downarrow$"}.get(direction or "", "")

    def number(self, text: str) -> str:
        """A minus sign, not a hyphen."""
        return "$-$" + text[1:] if text.startswith("-") else text


class HtmlStyle(Style):
    def escape(self, text: str) -> str:
        return html.escape(text)

    def bold(self, text: str) -> str:
        return f"<strong>{text}</strong>"

    def sup(self, text: str) -> str:
        return f"<sup>{text}</sup>"


# --- the shared grid ---------------------------------------------------------------------------


def _number(value: float, spec: ColumnSpec, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if spec.is_count:
        decimals = 0 if float(value).is_integer() else 1
        return f"{value:{sign},.{decimals}f}"
    return f"{value:{sign}.{spec.decimals}f}"


def _interval(low: float, high: float, spec: ColumnSpec, style: Style, signed: bool = False) -> str:
    numbers = (style.number(_number(v, spec, signed=signed)) for v in (low, high))
    return " [" + ", ".join(numbers) + "]"


def _stat_text(stat: Stat, spec: ColumnSpec, row_n: int, style: Style, ci: str) -> str:
    if stat.mean is None:
        return style.missing
    text = style.number(_number(stat.mean, spec))
    if spec.is_count and spec.direction is None:
        pass  # a configured amount (updates, memory slots, parameters): its spread is no finding
    elif ci == "none":
        if stat.std is not None:
            text += style.pm + style.number(_number(stat.std, spec))
    elif stat.ci_low is not None and stat.ci_high is not None:
        text += _interval(stat.ci_low, stat.ci_high, spec, style)
    if stat.n < row_n:
        text += f" (n={stat.n})"
    return text


def _p_text(p: float, style: Style) -> str:
    return style.escape(f"p<{P_FLOOR:g}" if p < P_FLOOR else f"p={p:.3f}")


def _delta_text(delta: float, test: Comparison | None, spec: ColumnSpec, style: Style) -> str:
    text = style.number(_number(delta, spec, signed=True))
    if test is None:
        return text
    if test.ci_low is not None and test.ci_high is not None:
        text += _interval(test.ci_low, test.ci_high, spec, style, signed=True)
    p = test.p_holm if test.p_holm is not None else test.p
    return f"{text} {_p_text(p, style)}"


def _markers(table: Table, notes: Sequence[str], style: Style) -> str:
    numbers = [str(table.footnotes().index(note) + 1) for note in notes]
    return style.sup(",".join(numbers)) if numbers else ""


def _label_cell(table: Table, row: Row, style: Style) -> str:
    return style.escape(row.label) + _markers(table, row.notes, style)


def _header(table: Table, style: Style, prefix: str = "") -> list[str]:
    return [
        style.escape(LABEL_HEADER),
        "n",
        *(prefix + style.escape(c.name) + style.arrow(c.direction) for c in table.columns),
    ]


def main_grid(table: Table, style: Style) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the main table: mean and interval, the top group in bold."""
    rows = []
    for row in table.rows:
        cells = [_label_cell(table, row, style), str(row.n)]
        for column in table.columns:
            text = _stat_text(row.stats[column.name], column, row.n, style, table.ci)
            text = style.bold(text) if column.name in row.best else text
            cells.append(text + _markers(table, row.cell_notes.get(column.name, []), style))
        rows.append(cells)
    return _header(table, style), rows


def delta_grid(table: Table, style: Style) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the ablation table: each row's mean minus the baseline's, with the
    interval of the difference and the Holm-corrected p-value."""
    rows = []
    for row in table.rows:
        if row is table.baseline:
            continue
        cells = [_label_cell(table, row, style), str(row.n)]
        for column in table.columns:
            delta = row.deltas.get(column.name)
            test = row.vs_baseline.get(column.name)
            cells.append(
                style.missing if delta is None else _delta_text(delta, test, column, style)
            )
        rows.append(cells)
    return _header(table, style, prefix=style.delta + " "), rows


def _baseline_title(table: Table, style: Style) -> str:
    assert table.baseline is not None
    return f"{style.delta} vs baseline {style.bold(style.escape(table.baseline.label))}"


# --- Markdown ----------------------------------------------------------------------------------


def markdown_grid(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def to_markdown(tables: Sequence[Table]) -> str:
    style = MarkdownStyle()
    lines: list[str] = []
    for table in tables:
        if table.title:
            lines += [f"### {style.escape(table.title)}", ""]
        lines += [*markdown_grid(*main_grid(table, style)), ""]
        for number, note in enumerate(table.footnotes(), 1):
            lines.append(f"- {style.sup(str(number))} {style.escape(note)}")
        lines += [f"- {style.escape(note)}" for note in table.notes]
        if table.footnotes() or table.notes:
            lines.append("")
        if table.baseline is not None:
            lines += [_baseline_title(table, style) + ":", ""]
            lines += [*markdown_grid(*delta_grid(table, style)), ""]
    lines.append(f"_{style.escape(legend(tables))}._")
    return "\n".join(lines) + "\n"


# --- LaTeX -------------------------------------------------------------------------------------


def latex_tabular(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(" & ".join(cells) + r" \\" for cells in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]


def to_latex(tables: Sequence[Table]) -> str:
    """booktabs tabulars (``\\usepackage{booktabs}``), each followed by its footnotes."""
    style = LatexStyle()
    lines = ["% clbench report; what cells, bold and deltas mean: the note after the tables"]
    for table in tables:
        if table.title:
            lines.append(rf"\noindent\textbf{{{style.escape(table.title)}}}\par\smallskip")
        lines += latex_tabular(*main_grid(table, style))
        notes = [
            style.sup(str(number)) + "~" + style.escape(note)
            for number, note in enumerate(table.footnotes(), 1)
        ]
        notes += [style.escape(note) for note in table.notes]
        if notes:
            lines.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(notes) + r"\par}")
        if table.baseline is not None:
            lines.append(rf"\par\medskip\noindent {_baseline_title(table, style)}\par\smallskip")
            lines += latex_tabular(*delta_grid(table, style))
        lines.append(r"\par\bigskip")
    lines.append(r"{\footnotesize " + style.escape(legend(tables)) + r".\par}")
    return "\n".join(lines) + "\n"


# --- HTML --------------------------------------------------------------------------------------

PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "thead th{border-bottom:2px solid #333}"
    ".notes,.legend{font-size:.9em;color:#444}"
)


def html_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>"]
    lines.append("<tbody>")
    lines += ["<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cells in rows]
    lines += ["</tbody>", "</table>"]
    return lines


def to_html(tables: Sequence[Table]) -> str:
    """A standalone page; its markup is also well-formed XML (XHTML-compatible)."""
    style = HtmlStyle()
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"/><title>clbench report</title>',
        f"<style>{PAGE_CSS}</style></head>",
        "<body>",
    ]
    for table in tables:
        if table.title:
            lines.append(f"<h2>{style.escape(table.title)}</h2>")
        lines += html_table(*main_grid(table, style))
        for number, note in enumerate(table.footnotes(), 1):
            lines.append(f'<p class="notes">{style.sup(str(number))} {style.escape(note)}</p>')
        lines += [f'<p class="notes">{style.escape(note)}</p>' for note in table.notes]
        if table.baseline is not None:
            lines.append(f"<h3>{_baseline_title(table, style)}</h3>")
            lines += html_table(*delta_grid(table, style))
    lines += [f'<p class="legend">{style.escape(legend(tables))}.</p>', "</body>", "</html>"]
    return "\n".join(lines) + "\n"


# --- CSV ---------------------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return value
    return value_text(value)


def _cell_record(table: Table, row: Row, column: ColumnSpec, with_deltas: bool) -> dict[str, Any]:
    stat = row.stats[column.name]
    name = column.name
    vs_best = row.vs_best.get(name)
    record: dict[str, Any] = {
        f"{name}_mean": stat.mean,
        f"{name}_std": stat.std,
        f"{name}_n": stat.n,
        f"{name}_ci_low": stat.ci_low,
        f"{name}_ci_high": stat.ci_high,
        f"{name}_best": name in row.best,
        # Holm-corrected p of the test against the column's top row (empty: the top, or untested)
        f"{name}_p_vs_best": vs_best.p_holm if vs_best is not None else None,
        f"{name}_comparable": row.comparable_on(column),
    }
    if with_deltas:
        test = row.vs_baseline.get(name)
        record.update(
            {
                f"{name}_delta": row.deltas.get(name),
                f"{name}_delta_ci_low": test.ci_low if test else None,
                f"{name}_delta_ci_high": test.ci_high if test else None,
                f"{name}_delta_p": test.p if test else None,
                f"{name}_delta_p_holm": test.p_holm if test else None,
                f"{name}_delta_test": test.test if test else None,
            }
        )
    return record


def to_csv(tables: Sequence[Table]) -> str:
    """`csv_frame` as CSV text."""
    buffer = io.StringIO()
    csv_frame(tables).to_csv(buffer, index=False)
    return buffer.getvalue()


def csv_frame(tables: Sequence[Table]) -> pd.DataFrame:
    """One row per table row: split and group keys, n, then per metric ``<m>_mean``, ``_std``,
    ``_n``, ``_ci_low``, ``_ci_high``, ``_best``, ``_p_vs_best``, ``_comparable`` (and ``_delta``,
    ``_delta_ci_low``, ``_delta_ci_high``, ``_delta_p``, ``_delta_p_holm``, ``_delta_test`` with
    a baseline), then ``baseline``, ``comparable``, ``notes``, ``ci`` and ``confidence``."""
    import pandas as pd

    with_deltas = any(t.baseline is not None for t in tables)
    records = []
    for table in tables:
        for row in table.rows:
            record: dict[str, Any] = {k: plain_value(v) for k, v in table.split.items()}
            record["label"] = row.label
            record.update({k: plain_value(v) for k, v in row.keys.items()})
            record["n"] = row.n
            for column in table.columns:
                record.update(_cell_record(table, row, column, with_deltas))
            record["baseline"] = row is table.baseline
            record["comparable"] = row.comparable
            cell_notes = [
                f"{column.name}: {note}"
                for column in table.columns
                for note in row.cell_notes.get(column.name, [])
            ]
            record["notes"] = "; ".join([*row.notes, *dict.fromkeys(cell_notes)])
            record["ci"] = table.ci
            record["confidence"] = table.confidence
            records.append(record)
    split_keys = [k for t in tables for k in t.split]
    group_keys = [k for t in tables for k in t.group_by]
    order = list(dict.fromkeys([*split_keys, "label", *group_keys, *records[0]])) if records else []
    # object dtype: an integer key that some rows lack stays 200, not 200.0
    return pd.DataFrame(records, columns=order, dtype=object)


RENDERERS: dict[str, Callable[[Sequence[Table]], str]] = {
    "md": to_markdown,
    "latex": to_latex,
    "csv": to_csv,
    "html": to_html,
}
