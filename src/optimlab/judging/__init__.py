"""Judge runs optimlab did not make, by the same statistics as `optimlab compare` (`optimlab.judge`).

    from optimlab import judge
    j = judge("their_runs.csv", baseline="sgdm")  # or a folder of run JSONs, a list of rows, a data frame
    j.verdicts()         # one dict per compared optimizer: optimizer, baseline, metric, n, diff, ci_low,
                         #   ci_high, p, p_holm, decision
    j.write("judged/")   # judged/report.md + judged/judgement.json

- records.py:   reading and checking the input (CSV in long form, rows, data frames, run JSONs)
- judge_runs.py: judge() itself: the metric, its direction, optimlab.stats.summarize
- judgement.py: the result: compare's table with the MDE, report.md, judgement.json

The package is `judging`, not `judge`, so that `optimlab.judge` stays the function: importing a
subpackage named judge would rebind optimlab.judge to the module. The command:
`optimlab judge FILE --baseline LABEL [--metric NAME] [--lower-is-better] [--out DIR]`.
"""

from __future__ import annotations

from optimlab.judging.judge_runs import judge
from optimlab.judging.judgement import VERDICT_KEYS, Judgement
from optimlab.judging.records import JudgeError

__all__ = ["judge", "Judgement", "JudgeError", "VERDICT_KEYS"]
