"""A judgement: what optimlab.judge found, shown as compare's table and written as report.md and judgement.json.

The table is optimlab.report.markdown.compare_table, the one compare prints, with the minimum
detectable effect added after the decision and the step-time column dropped when no run measured
one (a CSV has none). Numbers are formatted by optimlab.report.display: a metric optimlab shows in %
(its fractions: accuracy, mIoU, ...) in % with differences in points, any other metric as
given, in the user's own unit. judgement.json always holds the numbers as given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optimlab
from optimlab.judging.records import JudgeError, known_metric
from optimlab.report.display import fmt_value, markdown_table
from optimlab.report.markdown import compare_table, table_notes
from optimlab.stats import inference
from optimlab.stats.summary import Summary

__all__ = ["Judgement", "VERDICT_KEYS"]

# judgement.json: one object per compared optimizer with exactly these keys (diff = optimizer − baseline)
VERDICT_KEYS = ("optimizer", "baseline", "metric", "n", "diff", "ci_low", "ci_high", "p", "p_holm", "decision")
MDE_HEADER = "MDE (80% power)"
STEP_HEADER = "step ms"


@dataclass
class Judgement:
    """What judge found: the statistics (`summary`), and how to show and write them."""

    source: str  # the file, folder or "records" judged
    baseline: str
    metric: str
    lower_is_better: bool
    direction: str  # which way wins, and why (a sentence fragment)
    summary: Summary
    runs: list[Any]  # the RunRecords judged, baseline first
    notes: list[str] = field(default_factory=list)  # failed runs, unpaired seeds, comparisons without a test

    @property
    def dataset(self) -> str:
        return str(self.runs[0].dataset)

    @property
    def model(self) -> str:
        return str(self.runs[0].model)

    def verdicts(self) -> list[dict[str, Any]]:
        """judgement.json's content: one object per compared optimizer (None where a number is undefined)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return [
            dict(
                zip(
                    VERDICT_KEYS,
                    (p.label, p.baseline, p.metric, p.n_pairs, num(p.mean_diff), num(p.ci_low), num(p.ci_high))
                    + (num(p.t_p), num(p.holm_p), p.decision),
                )
            )
            for p in self.summary.paired
        ]

    def write(self, out_dir: str | Path) -> Path:
        """out_dir/report.md and out_dir/judgement.json; returns the report's path."""
        out = Path(out_dir)
        if (out / "experiment.json").is_file():  # `--out` the judged folder itself would replace compare's report
            raise JudgeError(f"{out} is an experiment folder (its report.md is compare's); choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        (out / "judgement.json").write_text(json.dumps(self.verdicts(), indent=1) + "\n", encoding="utf-8")
        path = out / "report.md"
        path.write_text(self.report_markdown(), encoding="utf-8")
        return path

    def title(self) -> str:
        n_opt = len({r.label for r in self.runs})
        return (
            f"{self.source}: {self.metric}, {self.direction}; {len(self.runs)} runs of {n_opt} optimizers, "
            f"baseline {self.baseline}"
        )

    def table(self) -> tuple[list[str], list[list[str]]]:
        """compare's headline table of the judgement, with an MDE column."""
        headers, rows = compare_table(self.summary, self.baseline, self.dataset, self.model, self.metric)
        groups = [g for g in self.summary.groups if (g.dataset, g.model) == (self.dataset, self.model)]
        step = headers.index(STEP_HEADER) if not any(g.step_time_s.n for g in groups) else len(headers)
        decision = headers.index("decision") + 1
        out = []
        for g, row in zip(groups, rows):
            row = row[:step] + row[step + 1 :]
            out.append(row[:decision] + [self._mde(g.label)] + row[decision:])
        headers = headers[:step] + headers[step + 1 :]
        return headers[:decision] + [MDE_HEADER] + headers[decision:], out

    def table_notes(self, rows: list[list[str]]) -> list[str]:
        """The decision rule (and clipping) under the table, then this judgement's own notes."""
        return table_notes(self.summary, rows) + self.notes

    def _mde(self, label: str) -> str:
        if label == self.baseline:
            return ""
        p = self.summary.comparison(label, self.metric, self.dataset, self.model)
        return fmt_value(self.metric, p.mde) if math.isfinite(p.mde) else "—"

    def _unit_sentence(self) -> str:
        facts = known_metric(self.metric)
        if facts is not None and facts.percent:
            return (
                f"`{self.metric}` is one of optimlab's fractions: shown in %, differences and MDE in points; "
                "judgement.json holds the fractions."
            )
        return f"`{self.metric}` is shown as given, in its own unit; judgement.json holds the same numbers."

    def report_markdown(self) -> str:
        """report.md: the table, its notes, how to read it, what judgement.json holds."""
        headers, rows = self.table()
        failed = sum(not r.done or r.diverged for r in self.runs)
        seeds = sorted({r.seed for r in self.runs})
        n_compared = len(self.summary.paired)
        lines = [
            f"# optimlab judge: `{self.source}`",
            "",
            f"{len(self.runs)} runs ({failed} failed) of {n_compared + 1} optimizers on seeds {seeds}. "
            f"Metric `{self.metric}`: {self.direction}. Baseline: **{self.baseline}**. {self._unit_sentence()}",
            "",
            markdown_table(headers, rows),
            "",
        ]
        lines += [f"- {n}" for n in self.table_notes(rows)] + [""]
        lines += [
            "## How to read the table",
            "",
            "Each optimizer is paired with the baseline seed by seed, over the seeds where both runs have a value. "
            "Δ is the mean of optimizer − baseline with its paired Student-t 95% interval (unadjusted); p is the "
            f"two-sided paired t-test and p Holm the same p adjusted over the {n_compared} optimizer(s) compared "
            f"with the baseline. The decision is compare's: *better* or *worse* when p Holm < {self.summary.alpha:.3g} "
            f"(which one by the sign of Δ and the metric's direction), *too few seeds* below {inference.MIN_SEEDS} "
            "pairs, *no difference shown* otherwise. MDE: the true difference these pairs, with this spread, "
            "detect 80% of the time at Holm's strictest level, so *no difference shown* rules out differences of "
            "about that size, not smaller ones. failed: runs without a value, with the exact (Clopper-Pearson) 95% "
            "interval of the rate. The rule is optimlab.stats.inference.judge_family, the one behind `optimlab "
            "compare` and the paper verdicts, so its error rates are those docs/statistics.md reports.",
            "",
            f"`judgement.json`: one object per compared optimizer with the keys {', '.join(VERDICT_KEYS)} "
            "(diff, ci_low and ci_high in the metric's unit as given; p and p_holm raw and Holm-adjusted; null "
            "where a number is undefined).",
            "",
            f"Made by optimlab {optimlab.__version__} (`optimlab judge`).",
            "",
        ]
        return "\n".join(lines)
