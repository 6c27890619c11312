"""Reproducing the papers: the catalogue of their experiments (configs/paper/*.toml)."""

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

__all__ = [
    "METRICS",
    "CatalogError",
    "Claim",
    "PaperExperiment",
    "PaperInfo",
    "list_paper_experiments",
    "load_paper_experiment",
]
