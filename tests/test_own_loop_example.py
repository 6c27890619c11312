"""examples/own_loop: the training function on the real UCI Adult data, one short run through fit."""

from __future__ import annotations

from pathlib import Path

from optimlab.experiments.config import load_experiment_config
from optimlab.experiments.validate import check_experiment
from optimlab.train import fit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "own_loop" / "experiment.toml"


def test_the_examples_function_trains_one_short_run_on_the_census_data(uci_adult, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # "examples.own_loop.census_loop" as from the repository root
    config = load_experiment_config(EXAMPLE)
    options = {**config.train_options, "data": str(uci_adult / "adult.csv.gz"), "max_train_rows": 3000, "epochs": 5}
    config = config.replace(train_options=options, seeds=(0,))
    check_experiment(config)  # the reference resolves, every optimizer builds
    assert [o.name for o in config.optimizers] == ["sgdm", "rsgdm", "adam"]
    run = config.runs()[0].config
    history = fit(run, seed=0)
    assert list(history.final) == ["accuracy", "auc", "loss"] and history.diverged_reason is None
    # 60 steps on 3,000 rows beat the majority class (76 % of the test rows earn <= 50K)
    assert history.final["accuracy"] > 0.77 and history.final["auc"] > 0.8 and 0 < history.final["loss"] < 0.6
