"""Rerun the commands behind the printed outputs in the docs and compare (or rewrite) them.

A printed output in a Markdown file is checked when a marker comment stands right before its
fenced block::

    <!-- check: clbench sweep configs/sweeps/gtep_digits.yaml --jobs 2 -->
    ```
    GTEP selection (max mean final_acc over tuning seeds):
    ...
    ```

The marker's commands (one per line after ``check:``; every line but the last is set-up) run with
``bash -e`` in a fresh folder that holds a link to the repository's ``configs/``, so
``results/...`` paths in the output are the same on every machine. The last command's stdout and
stderr together must match the block. Before a transcript block (its first line ``$ COMMAND``,
then that command's output, then the next ``$`` line...) every marker line is set-up (a bare
``<!-- check -->`` has none) and each ``$`` line runs in turn.

Matching is exact after stripping trailing white space, except for ``...``: a line that is only
``...`` stands for any number of lines, and ``...`` inside a line for any text, as in doctest's
ELLIPSIS. A marker with ``check(exit=N):`` expects that exit code (default 0; transcripts accept
any). Set-up shared by several markers runs once per invocation.

    python tools/doc_outputs.py                 # check README.md and docs/**/*.md, exit 1 on a diff
    python tools/doc_outputs.py --update        # rewrite the blocks from the fresh outputs
    python tools/doc_outputs.py --only gtep     # markers whose commands contain "gtep"
    python tools/doc_outputs.py docs/methods    # these files, or the Markdown files under a folder
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(
    r"^<!-- check(?:\(exit=(?P<exit>\d+)\))?(?::(?P<body>.*?))?\s*(?P<end>-->)?\s*$"
)
ELLIPSIS = "..."


@dataclass
class Example:
    """One checked block: where it is, the commands that make it and what it shows."""

    path: Path
    line: int  # 1-based line of the marker
    setup: list[str]
    command: str | None  # None: a transcript block (its own "$ " lines are the commands)
    expected: list[str]
    block_start: int  # 0-based index of the first content line of the fenced block
    block_end: int  # 0-based index of the closing fence
    exit_code: int | None

    @property
    def title(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"

    def commands(self) -> list[str]:
        if self.command is not None:
            return [*self.setup, self.command]
        return [line[2:] for line in self.expected if line.startswith("$ ")]


def parse(path: Path) -> list[Example]:
    """Every marked block of a Markdown file; a marker not followed by a fence is an error."""
    lines = path.read_text().splitlines()
    examples = []
    i = 0
    while i < len(lines):
        match = MARKER.match(lines[i])
        if not match:
            i += 1
            continue
        marker_line = i
        body = [match.group("body") or ""]
        while not match.group("end") and not lines[i].rstrip().endswith("-->"):
            i += 1
            if i == len(lines):
                raise ValueError(f"{path}:{marker_line + 1}: check marker is never closed by -->")
            body.append(lines[i].removesuffix("-->").rstrip() if "-->" in lines[i] else lines[i])
        commands = [c.strip() for c in body if c.strip()]
        i += 1
        if i >= len(lines) or not lines[i].startswith("```"):
            raise ValueError(
                f"{path}:{marker_line + 1}: a check marker must stand right before ```"
            )
        start = i + 1
        end = next((j for j in range(start, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path}:{start}: fenced block is never closed")
        expected = lines[start:end]
        transcript = bool(expected) and expected[0].startswith("$ ")
        if not commands and not transcript:
            raise ValueError(f"{path}:{marker_line + 1}: a bare check marker needs '$ ' lines")
        examples.append(
            Example(
                path=path,
                line=marker_line + 1,
                setup=commands if transcript else commands[:-1],
                command=None if transcript else commands[-1],
                expected=expected,
                block_start=start,
                block_end=end,
                exit_code=int(match.group("exit")) if match.group("exit") else None,
            )
        )
        i = end + 1
    return examples


def _line_matches(pattern: str, actual: str) -> bool:
    if ELLIPSIS not in pattern:
        return pattern == actual
    parts = [re.escape(p) for p in pattern.split(ELLIPSIS)]
    return re.fullmatch(".*".join(parts), actual, flags=re.DOTALL) is not None


def matches(expected: Sequence[str], actual: Sequence[str]) -> bool:
    """Whether ``actual`` lines fit ``expected`` with doctest-style ellipses."""
    expected = [e.rstrip() for e in expected]
    actual = [a.rstrip() for a in actual]

    def fit(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if expected[e] == ELLIPSIS:
            return any(fit(e + 1, k) for k in range(a, len(actual) + 1))
        return a < len(actual) and _line_matches(expected[e], actual[a]) and fit(e + 1, a + 1)

    return fit(0, 0)


class Workspace:
    """Fresh folders with the repository's configs linked in; one per distinct set-up."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="clbench-doc-")
        self._ready: dict[tuple[str, ...], Path] = {}
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100", "NO_COLOR": "1"}

    def folder(self, setup: Sequence[str]) -> Path:
        key = tuple(setup)
        if key not in self._ready:
            folder = Path(self._tmp.name) / f"w{len(self._ready)}"
            folder.mkdir()
            (folder / "configs").symlink_to(ROOT / "configs")
            for command in setup:
                done = self.run(command, folder)
                if done.returncode != 0:
                    raise RuntimeError(
                        f"set-up failed ({done.returncode}): {command}\n{done.stdout}"
                    )
            self._ready[key] = folder
        return self._ready[key]

    def run(self, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def close(self) -> None:
        self._tmp.cleanup()


def produce(example: Example, workspace: Workspace) -> tuple[list[str], str | None]:
    """The block as the commands print it now, and a problem with the exit code, if any."""
    folder = workspace.folder(example.setup)
    if example.command is not None:
        done = workspace.run(example.command, folder)
        wanted = example.exit_code or 0
        problem = None
        if done.returncode != wanted:
            problem = f"exit code {done.returncode}, expected {wanted}"
        return done.stdout.splitlines(), problem
    out: list[str] = []
    for line in example.expected:
        if not line.startswith("$ "):
            continue
        out.append(line)
        out += workspace.run(line[2:], folder).stdout.splitlines()
    return out, None


def check(paths: Sequence[Path], update: bool = False, only: str | None = None) -> int:
    """Check (or rewrite) every marked block; the number of blocks that did not match."""
    failures = 0
    workspace = Workspace()
    try:
        for path in paths:
            examples = [
                e for e in parse(path) if only is None or any(only in c for c in e.commands())
            ]
            lines = path.read_text().splitlines()
            for example in reversed(examples):  # bottom up, so earlier line numbers stay valid
                actual, problem = produce(example, workspace)
                ok = matches(example.expected, actual) and problem is None
                print(f"{'ok  ' if ok else 'DIFF'} {example.title}  {example.commands()[-1]}")
                if ok:
                    continue
                if problem:
                    print(f"     {problem}")
                if update and problem is None:
                    lines[example.block_start : example.block_end] = actual
                    continue
                failures += 1
                diff = difflib.unified_diff(
                    example.expected, actual, "documented", "now", lineterm="", n=1
                )
                print("\n".join(f"     {d}" for d in diff))
            if update:
                path.write_text("\n".join(lines) + "\n")
    finally:
        workspace.close()
    return failures


def default_paths(root: Path = ROOT) -> list[Path]:
    """The README and every Markdown page under ``docs/``, subfolders included, in path order."""
    return [root / "README.md", *markdown_files(root / "docs")]


def markdown_files(folder: Path) -> list[Path]:
    """The ``*.md`` files under ``folder`` at any depth, sorted; none if it does not exist."""
    return sorted(p for p in folder.rglob("*.md") if p.is_file()) if folder.is_dir() else []


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder stands for the Markdown files under it."""
    return [f for p in paths for f in (markdown_files(p) if p.is_dir() else [p])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="Markdown files or folders of them (default: README.md and docs/**/*.md)",
    )
    parser.add_argument("--update", action="store_true", help="rewrite blocks that differ")
    parser.add_argument("--only", metavar="TEXT", help="only markers whose commands contain TEXT")
    args = parser.parse_args(argv)
    paths = expand([p.resolve() for p in args.files]) if args.files else default_paths()
    if not paths:
        parser.error(f"no Markdown files in {' '.join(map(str, args.files))}")
    failures = check(paths, update=args.update, only=args.only)
    if failures:
        print(f"{failures} printed output(s) differ from what their commands print now")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
