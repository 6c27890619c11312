"""The runs behind one claim, and what a verdict page says about them (used by reproduce.judging).

    arm = Arms.of(claim, results)       # finished values by seed, failed seeds, the seeds tested
    arm.differences(+1.0)               # oriented differences, a failed run at the worst value
    scale_mismatch(exp, results)        # why sizes cannot be compared with the paper's (None: they can)

A failed run (diverged or raised) is judged, not dropped: it counts at the worst value either arm
reached on the claim's metric (optimlab.stats.inference.failed_at_worst), over the seeds both arms
attempted, so a failure never turns a 10-seed claim into "too few seeds" and an optimizer that
diverges can be contradicted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from optimlab.experiments.results import RunResult
from optimlab.reproduce.catalog import Claim, PaperExperiment
from optimlab.stats import inference

__all__ = [
    "SKEW_WARN",
    "Arms",
    "run_value",
    "values_by_seed",
    "failed_seeds",
    "oriented",
    "scale_mismatch",
    "sample_notes",
]

SKEW_WARN = 1.0  # |sample skewness| of the differences above which the page says what skew does to the t-test


def run_value(r: RunResult, metric: str) -> float:
    """A finished run's value of a catalogue metric (train_accuracy: the last epoch's)."""
    assert r.history is not None
    if metric == "train_accuracy":
        return float(r.history.train_acc[-1]) if r.history.train_acc else math.nan
    return float(r.history.final.get(metric, math.nan))


def values_by_seed(results: Sequence[RunResult], label: str, metric: str) -> dict[int, float]:
    """seed -> value for the finished, non-diverged runs of `label`."""
    return {r.seed: run_value(r, metric) for r in results if r.label == label and r.done and not r.diverged}


def failed_seeds(results: Sequence[RunResult], label: str) -> set[int]:
    return {r.seed for r in results if r.label == label and (not r.done or r.diverged)}


def oriented(claim: Claim) -> float:
    """+1 when higher is better for the claim's metric, −1 when lower is."""
    return 1.0 if claim.better == "higher" else -1.0


@dataclass
class Arms:
    """One claim's runs: finished values by seed, failed seeds, and the seeds the test uses."""

    mine: dict[int, float]
    base: dict[int, float]
    fail_mine: set[int]
    fail_base: set[int]

    @classmethod
    def of(cls, c: Claim, results: Sequence[RunResult]) -> Arms:
        return cls(
            values_by_seed(results, c.optimizer, c.metric),
            values_by_seed(results, c.baseline, c.metric),
            failed_seeds(results, c.optimizer),
            failed_seeds(results, c.baseline),
        )

    @property
    def has_failures(self) -> bool:
        """A failed run among the tested seeds: the claim's direction p is then the sign-flip test's."""
        return bool((self.fail_mine | self.fail_base) & set(self.seeds))

    @property
    def seeds(self) -> list[int]:  # attempted by both arms
        return sorted((set(self.mine) | self.fail_mine) & (set(self.base) | self.fail_base))

    def differences(self, sign: float, failures: bool = True) -> list[float]:
        """Oriented differences over the test's seeds (failures=False: only seeds both finished)."""
        if not failures:
            return [sign * (self.mine[s] - self.base[s]) for s in sorted(set(self.mine) & set(self.base))]
        seeds = self.seeds
        a = np.array([sign * self.mine[s] if s in self.mine else np.nan for s in seeds])
        b = np.array([sign * self.base[s] if s in self.base else np.nan for s in seeds])
        return list(inference.failed_at_worst(a, b)) if seeds else []


def scale_mismatch(exp: PaperExperiment, results: Sequence[RunResult]) -> str | None:
    """Why these runs' differences cannot be compared with the paper's in size (None: they can). The
    rule reads the design only (data set, network, width, epochs, step cap against the paper-scale
    config), never the outcomes, so which tests a family plans is fixed before looking."""
    paper = exp.experiment_dict("paper")
    ran = [r.config for r in results if r.done]
    if not ran:
        return None
    why = []
    if exp.paper.model:
        why.append(f"the paper's networks ({exp.paper.model}) are not the ones trained here")
    for key, what in (("dataset", "data set"), ("model", "network"), ("width", "width"), ("epochs", "epochs")):
        want = paper.get(key, 1.0 if key == "width" else None)
        got = sorted({str(getattr(c, key)) for c in ran})
        if want is not None and got != [str(want)]:
            why.append(f"{what} {', '.join(got)} (paper: {want})")
    caps = sorted({c.max_steps_per_epoch for c in ran if c.max_steps_per_epoch is not None})
    if caps and paper.get("max_steps_per_epoch") is None:
        why.append(f"at most {caps[0]} steps per epoch")
    return "; ".join(why) or None


def sample_notes(c: Claim, arm: Arms, d: np.ndarray, min_seeds: int) -> list[str]:
    """What the page says about failed seeds and skew."""
    notes = []
    tested = set(arm.seeds)
    for label, bad in ((c.optimizer, arm.fail_mine), (c.baseline, arm.fail_base)):
        if bad & tested:
            notes.append(
                f"{label}: seed(s) {sorted(bad & tested)} diverged or failed and count at the worst value "
                "either arm reached"
            )
    x = d[np.isfinite(d)]
    if x.size >= min_seeds and not inference.is_tied(x):
        skew = float(stats.skew(x, bias=False))  # of the oriented differences: > 0 = long tail toward better
        if abs(skew) > SKEW_WARN:
            tail = "better" if skew > 0 else "worse"
            notes.append(
                f"the per-seed differences are skewed (sample skewness {oriented(c) * skew:+.2f}, long tail toward "
                f"{tail} seeds): under skew the t-test's false verdicts point away from the long tail, mostly "
                "from samples that do not look skewed, so this note is no safeguard (docs/statistics.md)"
            )
    return notes
