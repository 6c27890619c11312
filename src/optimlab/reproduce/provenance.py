"""What a reproduction actually ran, against the paper: the settings that differ, the data used, the
code that made the runs, and what each WGD arm computes (used by judging, verdict and page).

    deviations(exp, config, meta)   # ['lr sgd 1 (paper 0.01)', 'epochs 6 (paper 120)', ...]
    judge_name(meta)                # "CPU-scale settings" | "changed settings" | "the paper's settings"
    runs_made_by(folder, meta)      # 'runs committed in 5d6316f (2026-11-30)' or the recorded commit

The deviations are read from the runs' own config (experiment.json), not from the catalogue's [cpu]
table, so an override or a later catalogue edit cannot make a page claim settings its runs never had.
A judge whose settings differ from the paper's in anything is never called "the paper's settings".
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ExperimentConfig
from optimlab.report.display import DATASET_TITLES
from optimlab.reproduce.catalog import PaperExperiment

__all__ = [
    "PAPER_SETTINGS",
    "CPU_SETTINGS",
    "code_version",
    "runs_made_by",
    "deviations",
    "judge_name",
    "data_used",
    "paper_data",
    "arm_kinds",
    "EQ11_NOTE",
]

PAPER_SETTINGS = "the paper's settings"
CPU_SETTINGS = "CPU-scale settings"
EQ11_NOTE = (
    "The paper's Eq. 11 (h_{k,x} = ∇_x J(k, x) − μ_x with μ_x = (1/P) Σ_i ∇_x J(i, x), the mean over the "
    'layer\'s P kernels: `wgd_mode = "kernel"`) was **not run** at CPU scale; every WGD arm here uses the '
    "authors' per-filter mean (`wgd_mode = \"filter\"`, Gradient Centralization) or the authors' published "
    'code. To run Eq. 11, add an arm to `configs/paper/wgd-*.toml` (e.g. `[[optimizers]] name = "wgd-sgdm" '
    'label = "wgd-sgdm-eq11" hparams = { lr = 0.01, momentum = 0.9, weight_decay = 1e-3, wgd_mode = "kernel" }` '
    "and a claim naming it), then `optimlab reproduce NAME --scale cpu --out results/reproduce-NAME-cpu`: "
    "finished runs are kept, so only the new arm trains."
)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def code_version() -> str:
    """The code this process runs: the git commit of the optimlab source (a '+' when its tree has
    uncommitted changes), else the installed package's version."""
    from optimlab import __version__

    src = Path(__file__).resolve().parent
    head = _git(["rev-parse", "--short", "HEAD"], src)
    if head is None:
        return f"optimlab {__version__}"
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", "."], src.parent)
    return head + ("+" if dirty else "")


def runs_made_by(folder: str | Path, meta: dict[str, Any]) -> str:
    """Which code made a folder's runs: the commit reproduce.json recorded, else the commit that added
    the runs to git (made by the code of that time), else 'not recorded'."""
    if meta.get("code_commit"):
        return f"runs made by the code of {meta['code_commit']}"
    runs = Path(folder) / "runs"
    found = _git(["log", "-1", "--format=%h (%cs)", "--", runs.name], runs.parent) if runs.is_dir() else None
    if found is None:
        return "code commit not recorded"
    return f"runs committed in {found}, made by the code of that time"


def paper_data(exp: PaperExperiment) -> str:
    paper_ds = exp.experiment_dict("paper")["dataset"]
    return exp.paper.dataset or DATASET_TITLES.get(paper_ds, paper_ds)


def data_used(meta: dict[str, Any]) -> str:
    """The data set the runs used, with its training size."""
    title = meta.get("dataset_title") or meta.get("dataset", "?")
    n = meta.get("n_train")
    return f"{title} ({n:,} train)" if isinstance(n, int) else str(title)


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def deviations(exp: PaperExperiment, config: ExperimentConfig, meta: dict[str, Any]) -> list[str]:
    """Every setting in which the runs differ from the paper: data, network, width, epochs, steps per
    epoch (and batch), TM-SGD's switch epoch, and each arm's lr."""
    paper = exp.experiment_dict("paper")
    out = []
    if meta.get("dataset") != paper["dataset"]:
        out.append(f"data: {data_used(meta)} stands in for {paper_data(exp)}")
    elif "subset" in str(meta.get("dataset_title", "")):
        out.append(f"data: {data_used(meta)}, a subset of {paper_data(exp)}")
    if exp.paper.model or config.model != paper.get("model"):
        out.append(f"network {config.model} (paper: {exp.paper.model or paper.get('model')})")
    if config.width != paper.get("width", 1.0):
        out.append(f"width {_num(config.width)} (paper {_num(paper.get('width', 1.0))})")
    if config.epochs != paper.get("epochs"):
        out.append(f"epochs {config.epochs} (paper {paper.get('epochs')})")
    if config.max_steps_per_epoch is not None and paper.get("max_steps_per_epoch") is None:
        out.append(
            f"at most {config.max_steps_per_epoch} steps of {config.batch_size} per epoch "
            f"(paper: full epochs, batch {paper.get('batch_size')})"
        )
    elif config.batch_size != paper.get("batch_size"):
        out.append(f"batch {config.batch_size} (paper {paper.get('batch_size')})")
    if config.switch_epoch != paper.get("switch_epoch"):
        out.append(
            f"TM-SGD switch at epoch {config.switch_epoch} of {config.epochs} "
            f"(paper {paper.get('switch_epoch')} of {paper.get('epochs')})"
        )
    paper_lr = {o["label"]: o.get("hparams", {}).get("lr") for o in paper["optimizers"]}
    lrs = [
        f"{o.label} {_num(o.hparams.get('lr'))} (paper {_num(paper_lr[o.label])})"
        for o in config.optimizers
        if o.label in paper_lr and o.hparams.get("lr") != paper_lr[o.label]
    ]
    if lrs:
        out.append("lr " + ", ".join(lrs))
    return out


def judge_name(meta: dict[str, Any]) -> str:
    """What the runs judged 'as the catalogue sets them' are called: the paper's settings only when
    nothing differs from the paper."""
    devs = meta.get("deviations")
    if meta.get("scale") == "cpu":
        return CPU_SETTINGS
    if devs or meta.get("overrides"):
        return "changed settings"
    return PAPER_SETTINGS


def arm_kinds(config: ExperimentConfig) -> dict[str, str]:
    """label -> which WGD each WGD arm computes (no entry: not a WGD arm)."""
    out = {}
    for o in config.optimizers:
        if o.name.endswith("-published"):
            out[o.label] = "the authors' published code"
        elif o.name.startswith("wgd"):
            mode = o.hparams.get("wgd_mode", "filter")
            out[o.label] = {
                "filter": "the authors' per-filter mean (wgd_mode='filter')",
                "kernel": "the paper's Eq. 11, the mean over the P kernels (wgd_mode='kernel')",
            }.get(mode, f"no whitening (wgd_mode={mode!r})")
    return out


def stand_in_title(exp: PaperExperiment, meta: dict[str, Any]) -> str | None:
    """'CIFAR-100 experiment, run at CPU scale on the CIFAR-10 subset stand-in' where the runs used
    other data than the paper's (None where they used the paper's data or a subset of it)."""
    if meta.get("dataset") == exp.experiment_dict("paper")["dataset"]:
        return None
    scale = "CPU scale" if meta.get("scale") == "cpu" else f"{meta.get('scale')} scale"
    return f"{paper_data(exp)} experiment, run at {scale} on the {meta.get('dataset_title')} stand-in"


def setting_lines(meta: dict[str, Any]) -> list[str]:
    """The quoted banner lines naming every deviation, the code that made the runs and the WGD arms."""
    lines = []
    if meta.get("deviations"):
        lines.append("> **Differs from the paper:** " + "; ".join(meta["deviations"]) + ".")
    if meta.get("runs_made_by"):
        lines.append(f"> **Code:** {meta['runs_made_by']}.")
    kinds = meta.get("arm_kinds") or {}
    if kinds:
        lines.append("> **WGD arms:** " + "; ".join(f"{lab}: {what}" for lab, what in kinds.items()) + ".")
        if not any("Eq. 11" in what for what in kinds.values()):
            lines.append(f"> {EQ11_NOTE}")
    return lines
