"""Overall sweep progress: a rich bar on a terminal, one plain line per finished run otherwise."""

from __future__ import annotations

import sys
from types import TracebackType

from clbench.engine.progress import ProgressBar
from clbench.sweeps.executors import RunResult


class SweepProgress:
    def __init__(self, total: int, label: str, bar: bool | None = None) -> None:
        self.total, self.done = total, 0
        self.label = label
        use_bar = bar if bar is not None else sys.stderr.isatty()
        self._bar = ProgressBar(total, label) if use_bar else None

    def __enter__(self) -> SweepProgress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def advance(self, result: RunResult) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {result.status:<8} {result.run_id}"
        if result.seconds:
            line += f" ({result.seconds:.1f} s)"
        if result.error:
            line += f": {result.error}"
        if self._bar is not None:
            self._bar.print(line)
            self._bar.advance()
        else:
            print(line, file=sys.stderr, flush=True)
