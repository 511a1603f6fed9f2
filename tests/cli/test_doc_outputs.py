"""The checker behind the docs' printed outputs (tools/doc_outputs.py), and the docs themselves."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tools import doc_outputs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text)
    return path


def test_ellipsis_lines_and_ellipsis_in_a_line() -> None:
    assert doc_outputs.matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert doc_outputs.matches(["a", "...", "d"], ["a", "d"])
    assert doc_outputs.matches(["x .../data, ... end"], ["x /tmp/w0/data, /more end"])
    assert not doc_outputs.matches(["a", "...", "d"], ["a", "b", "c"])
    assert not doc_outputs.matches(["a", "b"], ["a", "c"])
    assert not doc_outputs.matches(["x ... end"], ["y 1 end"])
    assert doc_outputs.matches(["a  "], ["a"])  # trailing white space is not significant


def test_markers_commands_setup_and_transcripts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "text\n<!-- check: echo hi -->\n```\nhi\n```\n"
        "<!-- check(exit=3):\nprintf 'x\\n' > f\ncat f; exit 3\n-->\n```\nx\n```\n"
        "<!-- check -->\n```\n$ echo one\none\n$ echo two\ntwo\n```\n",
    )
    first, second, third = doc_outputs.parse(path)
    assert (first.setup, first.command, first.expected) == ([], "echo hi", ["hi"])
    assert second.setup == ["printf 'x\\n' > f"] and second.command == "cat f; exit 3"
    assert second.exit_code == 3
    assert third.command is None and third.commands() == ["echo one", "echo two"]
    assert doc_outputs.check([path]) == 0


def test_a_wrong_output_or_exit_code_is_reported_and_update_rewrites_it(tmp_path: Path) -> None:
    path = write(
        tmp_path, "<!-- check: echo new -->\n```\nold\n```\n<!-- check: exit 1 -->\n```\n```\n"
    )
    assert doc_outputs.check([path]) == 2
    assert doc_outputs.check([path], update=True) == 1  # the exit code cannot be rewritten
    assert "```\nnew\n```" in path.read_text()


def test_a_marker_must_precede_a_block(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="right before"):
        doc_outputs.parse(write(tmp_path, "<!-- check: echo hi -->\ntext\n"))
    with pytest.raises(ValueError, match="needs '\\$ ' lines"):
        doc_outputs.parse(write(tmp_path, "<!-- check -->\n```\nhi\n```\n"))


def test_the_default_paths_are_the_readme_and_every_page_under_docs(tmp_path: Path) -> None:
    for name in ("README.md", "docs/a.md", "docs/methods/b.md", "docs/methods/deep/c.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# page\n")
    (tmp_path / "docs/notes.txt").write_text("not Markdown")
    (tmp_path / "other.md").write_text("outside docs/")
    found = [p.relative_to(tmp_path).as_posix() for p in doc_outputs.default_paths(tmp_path)]
    assert found == ["README.md", "docs/a.md", "docs/methods/b.md", "docs/methods/deep/c.md"]
    assert doc_outputs.expand([tmp_path / "docs/methods", tmp_path / "other.md"]) == [
        tmp_path / "docs/methods/b.md",
        tmp_path / "docs/methods/deep/c.md",
        tmp_path / "other.md",
    ]
    real = doc_outputs.default_paths()
    assert doc_outputs.ROOT / "docs/methods/er.md" in real  # the repository's nested pages too


def test_the_docs_markers_parse_and_their_commands_use_the_cli() -> None:
    examples = [e for path in doc_outputs.default_paths() for e in doc_outputs.parse(path)]
    assert len(examples) >= 4
    for example in examples:
        assert any("clbench" in command for command in example.commands()), example.title


@pytest.mark.slow
def test_every_printed_output_in_the_docs_is_what_its_command_prints() -> None:
    assert doc_outputs.check(doc_outputs.default_paths()) == 0


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to hyphens,
    repeated headings numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text()):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = "".join(
            c for c in heading.group(1).lower() if c in " -_" or unicodedata.category(c)[0] in "LN"
        ).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_the_docs_links_point_at_existing_pages_and_headings() -> None:
    root = doc_outputs.ROOT
    broken = []
    for page in doc_outputs.default_paths():
        for line in _prose(page.read_text()):
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
                if re.match(r"[a-z]+:", target):  # https:, mailto:: not checked offline
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (page.parent / file_part).resolve() if file_part else page
                if not linked.exists():
                    broken.append(f"{page.relative_to(root)}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                    broken.append(f"{page.relative_to(root)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_stays_an_overview() -> None:
    lines = (doc_outputs.ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250, "move reference material to docs/ (docs/README.md is the index)"
