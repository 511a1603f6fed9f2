"""`clbench report --format html --out DIR`: the self-contained results page, its numbers against
the CSV report, bad input refused before work, and the page loaded in headless Chromium (no
console errors, every figure drawn, a screenshot kept as a test artifact)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.reporting import render_report
from clbench.reporting.html_page import PAGE_NAME, write_results_page

# 2 settings (er, naive) x 2 seeds: the curves of both, then per setting curves, matrix, gap
FIGURES = 1 + 2 * 3
ARTIFACTS = "CLBENCH_TEST_ARTIFACTS"  # a folder to copy the browser screenshot to, when set


@pytest.fixture(scope="module")
def png_page(real_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page with every figure over the SVG size limit: all embedded as PNG."""
    from clbench.reporting import html_page

    limit = html_page.SVG_LIMIT
    html_page.SVG_LIMIT = 0
    try:
        result = write_results_page([real_runs], tmp_path_factory.mktemp("png") / "site")
    finally:
        html_page.SVG_LIMIT = limit
    assert (result.figures, result.svg) == (FIGURES, 0)
    return result.path


@pytest.fixture(scope="module")
def page(real_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "site"
    result = write_results_page([real_runs], out)
    assert result.path == out / PAGE_NAME and result.figures == FIGURES
    return result.path


class _Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(text)
    return parser.tags


def test_page_is_self_contained_with_every_part(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    tags = _tags(text)
    # nothing is fetched: no external script, style sheet, image or font
    for tag, attrs in tags:
        assert tag != "link"
        assert not (tag == "script" and attrs.get("src"))
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"(https?:)?//", value), (tag, value)
    figures = [attrs for tag, attrs in tags if tag == "figure"]
    assert len(figures) == FIGURES
    assert ("body", {"data-figures": str(FIGURES)}) in tags
    # every figure is an inline SVG (small runs: far below the PNG fallback's size)
    assert text.count("<svg ") == FIGURES
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text
    for heading in ("Leaderboard", "Budget: what each setting cost", "Accuracy per task"):
        assert heading in text
    # the budget columns, and each run's config and manifest
    assert "train_time_s" in text and "params_trainable" in text
    assert text.count('<details class="run">') == 4
    assert text.count("<h4>config.yaml</h4>") == 4 and text.count("<h4>manifest.json</h4>") == 4
    assert "stability gap" in text and "accuracy matrix" in text


def test_a_figure_too_large_for_svg_is_an_inline_png(png_page: Path) -> None:
    text = png_page.read_text(encoding="utf-8")
    images = [attrs for tag, attrs in _tags(text) if tag == "img"]
    assert len(images) == FIGURES and "<svg " not in text
    for attrs in images:
        assert (attrs["src"] or "").startswith("data:image/png;base64,")
        assert int(attrs["width"] or 0) > 0 and attrs["alt"]


class _FirstTable(HTMLParser):
    """The first table's header texts (up to the first space: the column name), header
    attributes and, per body row, each cell's ``data-v`` sort key."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.heads: list[dict[str, str | None]] = []
        self.rows: list[list[str | None]] = []
        self.state = "before"  # before, head, body, done
        self.text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.state == "before" and tag == "table":
            self.state = "head"
        elif self.state == "head" and tag == "th":
            self.heads.append(dict(attrs))
            self.text = ""
        elif self.state in ("head", "body") and tag == "tr" and self.heads:
            self.state = "body"
            self.rows.append([])
        elif self.state == "body" and tag == "td":
            self.rows[-1].append(dict(attrs).get("data-v"))

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self.text is not None:
            self.names.append(self.text.split()[0])
            self.text = None
        elif tag == "table" and self.state != "before":
            self.state = "done"


def test_leaderboard_numbers_are_the_csv_report(page: Path, real_runs: Path) -> None:
    records = csv.DictReader(io.StringIO(render_report([real_runs], fmt="csv").text))
    expected = {record["label"]: record for record in records}
    table = _FirstTable()
    table.feed(page.read_text(encoding="utf-8"))
    assert table.names[:3] == ["setting", "n", "final_acc"]
    assert table.heads[2]["data-dir"] == "higher"
    assert "final accuracy" in (table.heads[2]["title"] or "")
    assert [row[0] for row in table.rows] == ["er", "naive"]
    for label, n, *means in table.rows:
        assert n == expected[label]["n"]
        for name, value in zip(table.names[2:], means, strict=True):
            assert float(value) == float(expected[label][f"{name}_mean"])  # full precision
    assert len(table.names) >= 2 + 6  # the default metric columns; budget has its own table


def test_the_command_writes_only_the_page_and_keeps_other_formats(
    real_runs: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / PAGE_NAME).write_text("old page")
    assert main(["report", str(real_runs), "--format", "html", "--out", str(out)]) == 0
    assert "results page, 1 table(s), 2 setting(s), 7 figure(s) (7 SVG, 0 PNG)" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / PAGE_NAME).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # a new folder named without a suffix is made; an .html file stays the table page
    assert main(["report", str(real_runs), "--format", "html", "--out", str(tmp_path / "new")]) == 0
    assert (tmp_path / "new" / PAGE_NAME).is_file()
    table_page = tmp_path / "table.html"
    assert main(["report", str(real_runs), "--out", str(table_page)]) == 0
    text = table_page.read_text(encoding="utf-8")
    assert text == render_report([real_runs], fmt="html").text and "<figure" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}", "--format", "html", "--out", "{out}"], "results: got '{missing}'"),
        (["{runs}", "--format", "html", "--out", "{file}/page"], "--out: got '{file}/page'"),
        (["{runs}", "--format", "html", "--out", "{file}"], "--out: got '{file}'"),
        (["{runs}", "--format", "md", "--out", "{dir}"], "a folder only with --format html"),
        (["{runs}", "--format", "html", "--out", "{out}", "--aggregate"], "with --aggregate"),
        (["{runs}", "--out", "{dir}/r.md", "--window", "5"], "--window: got 5"),
    ],
)
def test_bad_input_exits_2_naming_the_path_before_work(
    real_runs: Path, tmp_path: Path, capsys: Any, args: list[str], message: str
) -> None:
    file = tmp_path / "a_file"
    file.write_text("x")
    (tmp_path / "dir").mkdir()
    names = {
        "missing": str(tmp_path / "missing"),
        "runs": str(real_runs),
        "out": str(tmp_path / "out"),
        "file": str(file),
        "dir": str(tmp_path / "dir"),
    }
    assert main(["report", *(a.format(**names) for a in args)]) == 2
    assert message.format(**names) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "dir").iterdir()) == []


# --- in a real browser -------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(
            "no headless Chromium on PATH (apt-get install chromium; .ci/run installs it when it "
            "can): the results page was not checked in a browser"
        )
    return found


def _chromium(browser: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",  # run the page's scripts and its load event first
        *extra,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _console(stderr: str) -> list[str]:
    """The page's console messages (Chromium logs them as ``INFO:CONSOLE...] "text"``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _page_state(dom: str) -> dict[str, dict[str, str | None]]:
    tags = _tags(dom)
    return {
        "html": next(a for t, a in tags if t == "html"),
        "body": next(a for t, a in tags if t == "body"),
    }


def test_the_browser_check_sees_a_script_error(tmp_path: Path) -> None:
    # the check below must be able to fail: an error thrown by a script is caught both ways
    browser = _browser()
    broken = tmp_path / "broken.html"
    from clbench.reporting.html_page import ERROR_SCRIPT

    broken.write_text(
        f"<!DOCTYPE html><html><head><script>{ERROR_SCRIPT}</script></head><body>"
        '<script>throw new Error("boom")</script><img src="missing.png"/></body></html>'
    )
    run = _chromium(browser, broken, tmp_path / "profile", "--dump-dom")
    state = _page_state(run.stdout)
    assert "boom" in (state["html"].get("data-errors") or "")
    assert "missing.png" in (state["html"].get("data-errors") or "")
    assert any("boom" in line for line in _console(run.stderr))


def test_page_loads_in_chromium_without_errors_and_draws_every_figure(
    page: Path, png_page: Path, tmp_path: Path
) -> None:
    browser = _browser()
    for checked in (page, png_page):  # inline SVG, and the PNG fallback
        run = _chromium(browser, checked, tmp_path / "profile", "--dump-dom")
        assert run.returncode == 0, run.stderr[-2000:]
        assert _console(run.stderr) == []
        state = _page_state(run.stdout)
        assert state["html"].get("data-errors") is None
        assert state["body"].get("data-ready") == "1"  # the page's script ran to its load handler
        # every figure has a size on the page (an <img> is also decoded)
        assert state["body"].get("data-figures-drawn") == str(FIGURES)
        assert run.stdout.count('<figure class="plot') == FIGURES

    shot = tmp_path / "results_page.png"
    run = _chromium(
        browser, page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2400"
    )
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    assert _console(run.stderr) == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1400) and pixels.std() > 0.05  # not a blank page
    artifacts = os.environ.get(ARTIFACTS)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)
