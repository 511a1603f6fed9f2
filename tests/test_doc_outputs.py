"""The checker behind the docs' printed outputs (tools/doc_outputs.py), and the docs themselves."""

from __future__ import annotations

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


def test_the_docs_markers_parse_and_their_commands_use_the_cli() -> None:
    examples = [e for path in doc_outputs.default_paths() for e in doc_outputs.parse(path)]
    assert len(examples) >= 4
    for example in examples:
        assert any("clbench" in command for command in example.commands()), example.title


@pytest.mark.slow
def test_every_printed_output_in_the_docs_is_what_its_command_prints() -> None:
    assert doc_outputs.check(doc_outputs.default_paths()) == 0
