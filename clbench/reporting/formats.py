"""Report tables -> text: GitHub Markdown, LaTeX (booktabs), CSV and a standalone HTML page.

Markdown, LaTeX and HTML share one grid of cell texts (``mean ± std``, best in bold, footnote
markers); a `Style` supplies each format's escaping and markup. CSV is for machines: plain numbers,
with mean, std, n, a best flag and the baseline delta of every metric in columns of their own.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

from clbench.reporting.columns import ColumnSpec
from clbench.reporting.table import Row, Stat, Table
from clbench.results.labels import value_text

LABEL_HEADER = "setting"
LEGEND = (
    "mean ± std over the n runs of each row (sample std; one run: no std; (n=k): only k runs "
    "define the value); ↑ higher / ↓ lower is better; the best comparable value per column is "
    "in bold"
)


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


def _stat_text(stat: Stat, spec: ColumnSpec, row_n: int, style: Style) -> str:
    if stat.mean is None:
        return style.missing
    text = style.number(_number(stat.mean, spec))
    if stat.std is not None:
        text += style.pm + style.number(_number(stat.std, spec))
    if stat.n < row_n:
        text += f" (n={stat.n})"
    return text


def _label_cell(table: Table, row: Row, style: Style) -> str:
    numbers = [str(table.footnotes().index(note) + 1) for note in row.notes]
    return style.escape(row.label) + (style.sup(",".join(numbers)) if numbers else "")


def _header(table: Table, style: Style, prefix: str = "") -> list[str]:
    return [
        style.escape(LABEL_HEADER),
        "n",
        *(prefix + style.escape(c.name) + style.arrow(c.direction) for c in table.columns),
    ]


def main_grid(table: Table, style: Style) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the mean ± std table, best values in bold."""
    rows = []
    for row in table.rows:
        cells = [_label_cell(table, row, style), str(row.n)]
        for column in table.columns:
            text = _stat_text(row.stats[column.name], column, row.n, style)
            cells.append(style.bold(text) if column.name in row.best else text)
        rows.append(cells)
    return _header(table, style), rows


def delta_grid(table: Table, style: Style) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the ablation table: each row's mean minus the baseline's."""
    rows = []
    for row in table.rows:
        if row is table.baseline:
            continue
        cells = [_label_cell(table, row, style), str(row.n)]
        for column in table.columns:
            delta = row.deltas.get(column.name)
            text = style.missing if delta is None else _number(delta, column, signed=True)
            cells.append(style.number(text))
        rows.append(cells)
    return _header(table, style, prefix=style.delta + " "), rows


def _baseline_title(table: Table, style: Style) -> str:
    assert table.baseline is not None
    return f"{style.delta} vs baseline {style.bold(style.escape(table.baseline.label))}"


# --- Markdown ----------------------------------------------------------------------------------


def _markdown_grid(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def to_markdown(tables: Sequence[Table]) -> str:
    style = MarkdownStyle()
    lines: list[str] = []
    for table in tables:
        if table.title:
            lines += [f"### {style.escape(table.title)}", ""]
        lines += [*_markdown_grid(*main_grid(table, style)), ""]
        for number, note in enumerate(table.footnotes(), 1):
            lines.append(f"- {style.sup(str(number))} {style.escape(note)}")
        if table.footnotes():
            lines.append("")
        if table.baseline is not None:
            lines += [_baseline_title(table, style) + ":", ""]
            lines += [*_markdown_grid(*delta_grid(table, style)), ""]
    lines.append(f"_{style.escape(LEGEND)}._")
    return "\n".join(lines) + "\n"


# --- LaTeX -------------------------------------------------------------------------------------


def _latex_tabular(header: list[str], rows: list[list[str]]) -> list[str]:
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
    lines = [r"% clbench report: mean \pm std over the n runs of each row; best comparable in bold"]
    for table in tables:
        if table.title:
            lines.append(rf"\noindent\textbf{{{style.escape(table.title)}}}\par\smallskip")
        lines += _latex_tabular(*main_grid(table, style))
        notes = [
            style.sup(str(number)) + "~" + style.escape(note)
            for number, note in enumerate(table.footnotes(), 1)
        ]
        if notes:
            lines.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(notes) + r"\par}")
        if table.baseline is not None:
            lines.append(rf"\par\medskip\noindent {_baseline_title(table, style)}\par\smallskip")
            lines += _latex_tabular(*delta_grid(table, style))
        lines.append(r"\par\bigskip")
    return "\n".join(lines) + "\n"


# --- HTML --------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "thead th{border-bottom:2px solid #333}"
    ".notes,.legend{font-size:.9em;color:#444}"
)


def _html_table(header: list[str], rows: list[list[str]]) -> list[str]:
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
        f"<style>{_CSS}</style></head>",
        "<body>",
    ]
    for table in tables:
        if table.title:
            lines.append(f"<h2>{style.escape(table.title)}</h2>")
        lines += _html_table(*main_grid(table, style))
        for number, note in enumerate(table.footnotes(), 1):
            lines.append(f'<p class="notes">{style.sup(str(number))} {style.escape(note)}</p>')
        if table.baseline is not None:
            lines.append(f"<h3>{_baseline_title(table, style)}</h3>")
            lines += _html_table(*delta_grid(table, style))
    lines += [f'<p class="legend">{style.escape(LEGEND)}.</p>', "</body>", "</html>"]
    return "\n".join(lines) + "\n"


# --- CSV ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return value
    return value_text(value)


def to_csv(tables: Sequence[Table]) -> str:
    """One row per table row: split and group keys, n, then ``<metric>.mean/.std/.n/.best``
    (and ``.delta`` with a baseline), ``baseline``, ``comparable`` and ``notes``."""
    import pandas as pd

    with_deltas = any(t.baseline is not None for t in tables)
    records = []
    for table in tables:
        for row in table.rows:
            record: dict[str, Any] = {k: _plain(v) for k, v in table.split.items()}
            record["label"] = row.label
            record.update({k: _plain(v) for k, v in row.keys.items()})
            record["n"] = row.n
            for column in table.columns:
                stat = row.stats[column.name]
                record[f"{column.name}.mean"] = stat.mean
                record[f"{column.name}.std"] = stat.std
                record[f"{column.name}.n"] = stat.n
                record[f"{column.name}.best"] = column.name in row.best
                if with_deltas:
                    record[f"{column.name}.delta"] = row.deltas.get(column.name)
            record["baseline"] = row is table.baseline
            record["comparable"] = row.comparable
            record["notes"] = "; ".join(row.notes)
            records.append(record)
    split_keys = [k for t in tables for k in t.split]
    group_keys = [k for t in tables for k in t.group_by]
    order = list(dict.fromkeys([*split_keys, "label", *group_keys, *records[0]])) if records else []
    buffer = io.StringIO()
    # object dtype: an integer key that some rows lack stays 200, not 200.0
    pd.DataFrame(records, columns=order, dtype=object).to_csv(buffer, index=False)
    return buffer.getvalue()


RENDERERS: dict[str, Callable[[Sequence[Table]], str]] = {
    "md": to_markdown,
    "latex": to_latex,
    "csv": to_csv,
    "html": to_html,
}
