"""Reproducing the papers: the catalogue of their experiments (configs/paper/*.toml), the
`reproduce` runner and the per-claim verdicts."""

from __future__ import annotations

from optimlab.reproduce.catalog import (
    METRICS,
    CatalogError,
    Claim,
    PaperExperiment,
    PaperInfo,
    list_paper_experiments,
    load_paper_experiment,
)
from optimlab.reproduce.judging import judge_claims
from optimlab.reproduce.run import ReproduceError, reproduce
from optimlab.reproduce.verdict import write_verdict

__all__ = [
    "ReproduceError",
    "judge_claims",
    "reproduce",
    "write_verdict",
    "METRICS",
    "CatalogError",
    "Claim",
    "PaperExperiment",
    "PaperInfo",
    "list_paper_experiments",
    "load_paper_experiment",
]
