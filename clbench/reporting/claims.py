"""Claims decided by confidence intervals: a paper's statement checked against a study's runs.

A claim names a metric and the runs it is about (``rows``: config and tag values, e.g.
``{"tags.method": "er", "scenario.name": "class_incremental"}``), either alone (the claim is
about the value: "the hidden gap is above 0") or against other runs (``against``: the claim is
about the difference rows - against: "VBM-ER's final accuracy is higher than ER's"). The
verdict follows from the 95% interval (`clbench.reporting.significance`: Student t of the mean,
or of the paired per-seed differences when both sides hold the same seeds, else Welch's):

- ``holds``: the whole interval lies on the claimed side of ``threshold`` (default 0);
- ``does not hold``: the whole interval lies on the other side, or touches the threshold from it;
- ``inconclusive``: the interval contains the threshold, or fewer than 2 runs on a side.

A non-inferiority claim ("k-FPF is not more than 1 point below FPF") is ``expect: higher`` of
the difference with ``threshold: -0.01``. No correction across the claims of a study is made:
each verdict is a 95% statement on its own, and the tables show every p-value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from clbench.errors import ConfigError
from clbench.reporting.significance import Comparison, Stat, compare, summarize

if TYPE_CHECKING:
    import pandas as pd

Expect = Literal["higher", "lower"]
VerdictName = Literal["holds", "does not hold", "inconclusive", "not run"]


@dataclass(frozen=True)
class Claim:
    """One statement to decide: ``metric`` of the ``rows`` runs (minus the ``against`` runs)
    is ``expect`` (higher or lower) than ``threshold``."""

    text: str
    metric: str
    rows: Mapping[str, Any]
    expect: Expect = "higher"
    against: Mapping[str, Any] | None = None
    threshold: float = 0.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "claim") -> Claim:
        allowed = {"text", "metric", "rows", "expect", "against", "threshold"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", raw[unknown[0]], f"one of {sorted(allowed)}")
        for key in ("text", "metric", "rows"):
            if key not in raw:
                raise ConfigError(f"{where}.{key}", None, "required")
        expect = raw.get("expect", "higher")
        if expect not in ("higher", "lower"):
            raise ConfigError(f"{where}.expect", expect, "higher or lower")
        for key in ("rows", "against"):
            value = raw.get(key)
            if value is not None and (not isinstance(value, Mapping) or not value):
                raise ConfigError(f"{where}.{key}", value, "a mapping of config keys to values")
        return cls(
            text=str(raw["text"]),
            metric=str(raw["metric"]),
            rows=dict(raw["rows"]),
            expect=expect,
            against=dict(raw["against"]) if raw.get("against") is not None else None,
            threshold=float(raw.get("threshold", 0.0)),
        )


@dataclass(frozen=True)
class Verdict:
    """The decision on a claim with the numbers behind it: the claim's runs (``value``), the
    reference runs (``reference``, with ``against``) and their difference (``comparison``)."""

    claim: Claim
    verdict: VerdictName
    reason: str
    value: Stat = field(default_factory=lambda: Stat(None, None, 0))
    reference: Stat | None = None
    comparison: Comparison | None = None

    @property
    def interval(self) -> tuple[float | None, float | None]:
        """The interval the verdict is read from: of the difference, or of the value."""
        if self.claim.against is not None:
            c = self.comparison
            return (None, None) if c is None else (c.ci_low, c.ci_high)
        return self.value.ci_low, self.value.ci_high


def matching(frame: pd.DataFrame, selector: Mapping[str, Any]) -> pd.DataFrame:
    """The runs (rows of ``frame``) whose columns hold every value of ``selector``; numbers
    match numbers (``5`` matches ``5.0``), anything else matches as text."""
    return frame[_matches(frame, selector)]


def _matches(frame: pd.DataFrame, selector: Mapping[str, Any]) -> Any:
    mask = frame.index == frame.index  # all True
    for key, wanted in selector.items():
        if key not in frame.columns:
            return frame.index != frame.index  # no run has the key: none selected
        mask &= frame[key].map(lambda v, w=wanted: _same(v, w)).to_numpy()
    return mask


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float | int) and not isinstance(wanted, bool):
        try:
            return float(value) == float(wanted)
        except (TypeError, ValueError):
            return False
    return str(value) == str(wanted)


def runs_of(frame: pd.DataFrame, selector: Mapping[str, Any], metric: str) -> Stat:
    """The metric over the runs that match ``selector`` (one value per run), with their seeds."""
    if frame.empty or metric not in frame.columns:
        return Stat(None, None, 0)
    chosen = matching(frame, selector)
    return summarize(chosen[metric].tolist(), chosen["seed"].tolist())


def _side(low: float, high: float, expect: Expect, threshold: float) -> VerdictName:
    above, below = low > threshold, high <= threshold
    if expect == "lower":
        above, below = high < threshold, low >= threshold
    if above:
        return "holds"
    if below:
        return "does not hold"
    return "inconclusive"


def decide(frame: pd.DataFrame, claim: Claim) -> Verdict:
    """Decide ``claim`` on the runs of ``frame`` (one row per run, as `clbench.load` gives)."""
    value = runs_of(frame, claim.rows, claim.metric)
    word = "above" if claim.expect == "higher" else "below"
    if claim.against is None:
        if value.n == 0:
            return Verdict(claim, "not run", "no finished run matches", value)
        if value.ci_low is None or value.ci_high is None:
            return Verdict(claim, "inconclusive", f"{value.n} run: no interval", value)
        verdict = _side(value.ci_low, value.ci_high, claim.expect, claim.threshold)
        return Verdict(claim, verdict, _reason(verdict, "the interval", word, claim), value)
    reference = runs_of(frame, claim.against, claim.metric)
    if value.n == 0 or reference.n == 0:
        return Verdict(claim, "not run", "no finished run matches a side", value, reference)
    comparison = compare(value, reference)
    if comparison is None or comparison.ci_low is None or comparison.ci_high is None:
        return Verdict(
            claim, "inconclusive", "fewer than 2 runs on a side", value, reference, comparison
        )
    verdict = _side(comparison.ci_low, comparison.ci_high, claim.expect, claim.threshold)
    reason = _reason(verdict, "the interval of the difference", word, claim)
    return Verdict(claim, verdict, reason, value, reference, comparison)


def _reason(verdict: VerdictName, what: str, word: str, claim: Claim) -> str:
    at = f"{claim.threshold:g}"
    if verdict == "holds":
        return f"{what} lies {word} {at}"
    if verdict == "does not hold":
        other = "below" if word == "above" else "above"
        return f"{what} lies {other} {at} (or touches it)"
    return f"{what} contains {at}"
