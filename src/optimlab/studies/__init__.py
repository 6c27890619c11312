"""The papers' analyses as deterministic studies: each `run(out_dir)` computes its findings in
seconds on a CPU, writes `<name>.md` plus PNG figures into out_dir and returns a StudyResult.

    from optimlab.studies import STUDIES
    result = STUDIES["ode"](Path("docs/studies"))
    result.findings["stability/multistep"]   # 1.0: TM-SGD's rule is stable for lr·L < 1

Studies: `bias-lag` (paper 000 §III.B), `ode` (paper 004), `ema` (paper 002), `trajectories`
(the papers' and torch's optimizers on 2-D test functions) and `relatives` (RSGDM among Nesterov,
QHM, Adan and MARS; trains on digits); the last two import torch, lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from optimlab.studies import bias_lag, ema, ode, relatives, trajectories
from optimlab.studies._report import StudyResult

# name -> run(out_dir) -> StudyResult; `optimlab study NAME --out DIR` runs one, `all` runs these in order.
STUDIES: dict[str, Callable[[Path], StudyResult]] = {
    bias_lag.NAME: bias_lag.run,
    ode.NAME: ode.run,
    ema.NAME: ema.run,
    trajectories.NAME: trajectories.run,
    relatives.NAME: relatives.run,
}

SUMMARIES: dict[str, str] = {
    bias_lag.NAME: "paper 000: bias and lag of SGDM's m_t, RSGDM's n_t and Nesterov on synthetic gradient streams",
    ode.NAME: "paper 004: forward Euler vs the Taylor multi-step rule (order, stability, start-up)",
    ema.NAME: "paper 002: the EMA temperature example, bias correction, effective window",
    trajectories.NAME: "the papers' and torch's optimizers on Rosenbrock, Beale, a saddle and a quadratic",
    relatives.NAME: "RSGDM vs NAG (EMA), QHM(nu=beta), SGDM, Adan, MARS: test functions and digits, equal budgets",
}


def run_study(name: str, out_dir: Path | str) -> StudyResult:
    """Run the study registered as `name`; ValueError listing the valid names for an unknown one."""
    if name not in STUDIES:
        raise ValueError(f"Unknown study {name!r}. Valid names: {', '.join(STUDIES)}")
    return STUDIES[name](Path(out_dir))


__all__ = ["STUDIES", "SUMMARIES", "StudyResult", "run_study"]
