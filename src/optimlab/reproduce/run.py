"""Re-run one of the papers' experiments and judge its claims: `optimlab reproduce NAME`.

    reproduce("rsgdm-cifar10-resnet18")                         # CPU scale -> runs/reproduce-...-cpu/verdict.md
    reproduce("rsgdm-cifar10-resnet18", scale="paper", data_dir="~/data/cifar10")   # needs a CUDA GPU

Two scales. "paper" runs the catalogue's top-level settings (the paper's, as far as the text
allows) on the user's data and a CUDA GPU; before anything runs it checks that the data folder
holds the data set and that a GPU is there, and raises ReproduceError listing everything missing
(`allow_cpu=True` accepts a CPU run of days). "cpu" runs the catalogue's [cpu] settings: the
real CIFAR-10 subset when it can be found (OPTIMLAB_CIFAR10_SUBSET, else shared/data/cifar-10-subset
above the working folder or the package) or the CIFAR-10 folder given as data_dir; without one it
refuses (saying where it looked and how to get the data) unless stand_in="digits" asks for the
catalogue's [cpu.fallback] on scikit-learn's digits by name. Results go to
runs/reproduce-<name>-<scale>; a second call resumes, skipping finished runs. The sweep's own
report.md is written next to verdict.md.

`tune=True` adds the fair judge: optimlab.tune gives every optimizer the same lr candidates (the
catalogue's [tune] grid) on the validation split, reruns each choice on the same seeds and writes
out/tuned/ (tune.md, lr_sensitivity.png); verdict.md then judges every claim twice, at the paper's
settings and tuned.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from optimlab.data import list_datasets
from optimlab.experiments.config import ExperimentConfig, parse_seeds
from optimlab.experiments.executor import Executor
from optimlab.experiments.results import write_json_atomic
from optimlab.reproduce.catalog import PaperExperiment, load_paper_experiment
from optimlab.reproduce.layout import DATASET_TITLES, META_FILE, TUNED_DIR, ReproduceError, read_meta
from optimlab.reproduce.provenance import code_version

__all__ = [
    "Reproduction",
    "SCALES",
    "TUNE_SEEDS",
    "DATASET_TITLES",
    "META_FILE",
    "TUNED_DIR",
    "ReproduceError",
    "read_meta",
    "find_cifar10_subset",
    "find_shared_data",
    "cpu_stand_in",
    "resolve_config",
    "describe_data",
    "default_out",
    "reproduce",
]

SCALES = ("cpu", "paper")
Scale = Literal["cpu", "paper"]
SUBSET_ENV = "OPTIMLAB_CIFAR10_SUBSET"  # folder of the CIFAR-10 subset, overrides the search
SUBSET_PARTS = ("shared", "data", "cifar-10-subset")  # searched for above cwd and the package
MIN_SEEDS = 2  # a confidence interval needs two seeds; the catalogue asks for >= 5
TUNE_SEEDS = (1000, 1001, 1002)  # the search's seeds (>= 3 so one lucky seed cannot pick), apart from the judged seeds
STAND_INS = ("digits",)  # data a CPU-scale run may use instead of CIFAR-10, only when asked by name
# the data sets whose registry line names a stand-in kept in shared/data: dataset -> StandIn(folder, probe);
# found like the CIFAR-10 subset (walking up from cwd and from the package), or given as data_dir
SHARED_STAND_INS = {d.name: d.stand_in for d in list_datasets() if d.stand_in is not None}


# ----------------------------------------------------------------------------------------------
# finding the data


def _is_cifar10_folder(folder: Path) -> bool:
    from optimlab.data.cifar import CIFAR10

    return folder.is_dir() and all((folder / f).is_file() for f in CIFAR10.files)


def find_cifar10_subset(start: Path | None = None) -> Path | None:
    """The CIFAR-10 subset folder: $OPTIMLAB_CIFAR10_SUBSET, else the first shared/data/cifar-10-subset
    found walking up from `start` (default cwd) and from this file; None when there is none.

    A set environment variable that does not point at a CIFAR-10 folder is an error (it was asked for)."""
    env = os.environ.get(SUBSET_ENV, "").strip()
    if env:
        folder = Path(env).expanduser()
        if not _is_cifar10_folder(folder):
            raise ReproduceError(
                f"${SUBSET_ENV}={env!r} is not a CIFAR-10 folder (needs data_batch_1..5, test_batch, batches.meta)"
            )
        return folder.resolve()
    for origin in (Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent):
        for base in (origin, *origin.parents):
            folder = base.joinpath(*SUBSET_PARTS)
            if _is_cifar10_folder(folder):
                return folder
    return None


def cpu_stand_in(exp: PaperExperiment) -> str | None:
    """The data set of exp's cpu scale when it is a stand-in kept in shared/data (its registry line says
    where), else None (the cpu scale runs on a CIFAR-10 subset, or the named fallback)."""
    dataset = exp.cpu_overrides().get("dataset", exp.experiment.get("dataset"))
    return dataset if dataset in SHARED_STAND_INS else None


def find_shared_data(dataset: str, start: Path | None = None) -> Path | None:
    """The shared/data folder of a stand-in data set (DatasetInfo.stand_in), found walking up from
    `start` (default cwd) and from this file; None when there is none."""
    folder_name, probe = SHARED_STAND_INS[dataset]
    for origin in (Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent):
        for base in (origin, *origin.parents):
            folder = base / "shared" / "data" / folder_name
            if (folder / probe).is_file():
                return folder
    return None


def _data_problems(dataset: str, data_dir: str | None, options: dict[str, Any]) -> list[str]:
    """What stops `dataset` loading from data_dir, without reading it (empty list: looks fine)."""
    from optimlab.data import list_datasets

    info = {d.name: d for d in list_datasets()}.get(dataset)
    if info is None or not info.needs_root:
        return []
    if data_dir is None:
        return [f"{dataset} needs its data folder: pass --data-dir DIR (data_dir=...)"]
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        return [f"data folder {str(root)!r} does not exist"]
    if dataset in ("cifar10", "cifar100"):
        from optimlab.data.base import DatasetError
        from optimlab.data.cifar import CIFAR10, CIFAR100, find_folder

        try:
            find_folder(root, CIFAR10 if dataset == "cifar10" else CIFAR100)
        except DatasetError as e:
            return [str(e).replace(", or pass download=True", "")]
        return []
    if dataset == "r8":
        from optimlab.data.text import R8_FILES

        folder = root / "r8" if not (root / R8_FILES[0]).exists() and (root / "r8").is_dir() else root
        missing = [f for f in R8_FILES if not (folder / f).is_file()]
        return [f"R8 folder {str(folder)!r} lacks {', '.join(missing)}"] if missing else []
    if dataset == "avazu":
        from optimlab.data.base import DatasetError
        from optimlab.data.ctr import find_avazu_file

        try:
            find_avazu_file(root)
        except DatasetError as e:
            return [str(e)]
        return []
    if dataset == "imagefolder":
        top = root / "train" if (root / "train").is_dir() else root
        if not any(p.is_dir() and not p.name.startswith(".") for p in top.iterdir()):
            return [f"image folder {str(top)!r} has no class sub-folders (expected <root>/<class>/<image>)"]
    return []


# ----------------------------------------------------------------------------------------------
# the configuration


def _no_cifar10_message(name: str) -> str:
    return (
        f"cannot reproduce {name} at the cpu scale: no CIFAR-10 data found (looked at ${SUBSET_ENV}, then for "
        f"{'/'.join(SUBSET_PARTS)} in {Path.cwd()} and every folder above it, and above the optimlab package); "
        f"pass --data-dir DIR with the official python-version CIFAR-10 (cifar-10-batches-py; "
        f"`python -c \"from optimlab.data import load_dataset; load_dataset('cifar10', 'DIR', download=True)\"` "
        f"downloads and verifies it), or ask for the small stand-in by name with --stand-in digits "
        f"(the verdict is then about digits, not CIFAR-10)"
    )


def resolve_config(
    exp: PaperExperiment,
    scale: str,
    data_dir: str | Path | None = None,
    seeds: Any = None,
    allow_cpu: bool = False,
    overrides: dict[str, Any] | None = None,
    stand_in: str | None = None,
) -> ExperimentConfig:
    """The ExperimentConfig `reproduce` runs; ReproduceError listing every problem found."""
    if scale not in SCALES:
        raise ReproduceError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    if stand_in is not None and stand_in not in STAND_INS:
        raise ReproduceError(f"stand_in must be one of {list(STAND_INS)}, got {stand_in!r}")
    if stand_in is not None and (scale != "cpu" or data_dir is not None):
        raise ReproduceError("--stand-in is for the cpu scale without --data-dir")
    cpu_dataset = cpu_stand_in(exp)
    if scale == "cpu" and cpu_dataset is not None:  # a cpu scale that runs on a stand-in in shared/data
        d = _cpu_shared_data_dict(exp, cpu_dataset, data_dir, stand_in)
    elif scale == "cpu":
        d = _cpu_cifar10_dict(exp, data_dir, stand_in)
    else:
        d = _paper_dict(exp, data_dir, allow_cpu)
    if seeds is not None:
        d["seeds"] = parse_seeds(seeds)
    if overrides:
        d.update(overrides)
    config = ExperimentConfig.from_dict(d, source=f"{exp.name} ({scale} scale)")
    if len(config.seeds) < MIN_SEEDS:
        raise ReproduceError(
            f"seeds: a verdict needs >= {MIN_SEEDS} seeds for a confidence interval "
            f"(the catalogue uses {len(parse_seeds(exp.experiment_dict(cast(Scale, scale)).get('seeds', 10)))}), "
            f"got {len(config.seeds)}"
        )
    return config


def _cpu_shared_data_dict(
    exp: PaperExperiment, cpu_dataset: str, data_dir: str | Path | None, stand_in: str | None
) -> dict[str, Any]:
    """The cpu scale of a task whose data is a stand-in in shared/data (or --data-dir)."""
    if stand_in is not None:
        raise ReproduceError(f"{exp.name} has no --stand-in: its cpu scale already runs on {cpu_dataset}")
    folder = Path(data_dir).expanduser() if data_dir is not None else find_shared_data(cpu_dataset)
    folder_name, probe = SHARED_STAND_INS[cpu_dataset]
    if folder is None or not (folder / probe).is_file():
        where = (
            f"--data-dir {str(data_dir)!r} has no {probe}"
            if data_dir is not None
            else f"no shared/data/{folder_name}/{probe} above {Path.cwd()} or above the optimlab package"
        )
        raise ReproduceError(f"cannot reproduce {exp.name} at the cpu scale: {where}")
    d = exp.experiment_dict("cpu")
    d["data_dir"] = str(folder)
    d["device"] = "cpu"
    return d


def _cpu_cifar10_dict(exp: PaperExperiment, data_dir: str | Path | None, stand_in: str | None) -> dict[str, Any]:
    """The cpu scale of an image experiment: the CIFAR-10 subset (or --data-dir), or the named stand-in."""
    if stand_in is not None:
        subset = None
    else:
        subset = Path(data_dir).expanduser() if data_dir is not None else find_cifar10_subset()
        if subset is not None and data_dir is not None and not _is_cifar10_folder(subset):
            raise ReproduceError(
                f"--data-dir {str(data_dir)!r} is not a CIFAR-10 folder (needs data_batch_1..5, "
                f"test_batch, batches.meta); leave it out to use the subset"
            )
        if subset is None:
            raise ReproduceError(_no_cifar10_message(exp.name))
    d = exp.experiment_dict("cpu", have_cifar10=subset is not None)
    if d.get("dataset") == "cifar10":
        d["data_dir"] = str(subset)
    d["device"] = "cpu"
    return d


def _paper_dict(exp: PaperExperiment, data_dir: str | Path | None, allow_cpu: bool) -> dict[str, Any]:
    """The paper scale; ReproduceError listing every problem found (missing data, no GPU)."""
    problems: list[str] = []
    d = exp.experiment_dict("paper")
    if data_dir is not None:
        d["data_dir"] = str(Path(data_dir).expanduser())
    problems += _data_problems(d["dataset"], d.get("data_dir"), d.get("dataset_options", {}))
    import torch

    if torch.cuda.is_available():
        d["device"] = "cuda"
    elif allow_cpu:
        d["device"] = "cpu"
    else:
        problems.append(
            f"no CUDA GPU (torch.cuda.is_available() is False); the paper scale runs "
            f"{d.get('epochs')} epochs of {d.get('model')} per run — use --scale cpu, or "
            f"--allow-cpu to run it on the CPU anyway"
        )
    if problems:
        raise ReproduceError(f"cannot reproduce {exp.name} at the paper scale: " + "; ".join(problems))
    return d


def describe_data(config: ExperimentConfig) -> dict[str, Any]:
    """Counts and a one-line description of the data and schedule actually used (reads the data through
    the task's describe); the line names the task unless it is the default one, as the run files do."""
    from optimlab.tasks import get_task
    from optimlab.train.config import DEFAULT_TASK

    task = get_task(config.task)
    run = config.runs()[0].config
    d = task.describe(run)
    title: str = d.get("title") or DATASET_TITLES.get(config.dataset, str(config.dataset))
    title += d.get("title_note", "")
    steps = (
        f", at most {config.max_steps_per_epoch} steps of {config.batch_size} per epoch"
        if config.max_steps_per_epoch
        else f", batch {config.batch_size}"
    )
    named = f", task {config.task}" if config.task != DEFAULT_TASK else ""
    text = (
        f"{title} ({task.data_counts(run, d)}){named}, {config.model} width {config.width:g}, "
        f"{config.epochs} epochs{steps}, {len(config.seeds)} seeds, device {config.device}"
    )
    return {
        "dataset": config.dataset,
        "dataset_title": title,
        "data_dir": config.data_dir,
        "n_train": d["n_train"],
        "n_test": d["n_test"],
        "num_classes": d["num_classes"],
        "description": text,
    }


# ----------------------------------------------------------------------------------------------
# the command


class Reproduction(NamedTuple):
    """What reproduce() made: verdict.md's path and what it shows (experiment, meta, claims, tuned)."""

    verdict: Path
    judged: tuple[Any, ...]  # optimlab.reproduce.judging.Judged


def default_out(name: str, scale: str) -> Path:
    return Path("runs") / f"reproduce-{name}-{scale}"


def reproduce(
    name: str,
    scale: str = "cpu",
    data_dir: str | Path | None = None,
    seeds: Any = None,
    out: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
    allow_cpu: bool = False,
    overrides: dict[str, Any] | None = None,
    tune: bool = False,
    tune_budget: int | None = None,
    looks: list[int] | None = None,
    stand_in: str | None = None,
    executor: Executor | None = None,
    tensorboard: bool = True,
) -> Reproduction:
    """Run paper experiment `name` at `scale`, write report.md and verdict.md; returns the Reproduction
    (verdict.md's path and the judged claims it shows, loaded from disk once).

    seeds: a count or a list (default: the catalogue's). overrides: ExperimentConfig keys applied
    last (e.g. {"epochs": 1, "max_steps_per_epoch": 3} for a smoke run). tune: also run the fair
    judge (tune_budget lr candidates per optimizer; default the catalogue's). looks: seed counts of
    a sequential run (optimlab.experiments.looks; seeds are then added until every claim is
    decided). Re-running with the same arguments resumes: finished runs in `out` are kept.
    stand_in="digits": at the cpu scale, run the catalogue's digits fallback instead of CIFAR-10
    (never chosen silently). executor / tensorboard: as run_experiment's (default: `workers` local
    processes; event files on)."""
    from optimlab.experiments.sweep import run_experiment
    from optimlab.report.markdown import write_report
    from optimlab.reproduce.judging import judge_folder
    from optimlab.reproduce.verdict import write_verdict

    exp = load_paper_experiment(name)
    budget = exp.tune["budget"] if tune_budget is None else tune_budget  # arguments first, then the data
    if tune and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 2):
        raise ReproduceError(f"tune_budget must be an int >= 2 (lr candidates per optimizer), got {budget!r}")
    config = resolve_config(exp, scale, data_dir, seeds, allow_cpu, overrides, stand_in)
    out_dir = Path(out) if out is not None else default_out(name, scale)
    data = describe_data(config)
    if progress:  # say what will be judged before anything runs
        print(
            f"optimlab reproduce {name}: data: {data['description']}"
            + (f" from {config.data_dir}" if config.data_dir else ""),
            file=sys.stderr,
        )
    start = time.perf_counter()
    if looks is None:
        run_experiment(config, out_dir, workers=workers, progress=progress, executor=executor, tensorboard=tensorboard)
    else:
        config = _run_sequential(exp, config, out_dir, looks, workers, progress, executor, tensorboard)
    elapsed = time.perf_counter() - start
    try:  # a resumed or repeated call adds its time to the earlier calls' (a no-op repeat adds seconds)
        earlier = read_meta(out_dir)
        elapsed += float(earlier.get("sweep_wall_time_s", 0.0))
    except (ReproduceError, ValueError, TypeError):
        earlier = {}
    meta = {
        "name": name,
        "scale": scale,
        "seeds": len(config.seeds),
        "overrides": dict(overrides or {}),
        **data,
        "sweep_wall_time_s": round(elapsed, 1),
        "code_commit": code_version(),  # the code that made (or resumed) these runs: the page names it
    }  # wall time of the paper-settings sweep, over all calls
    if isinstance(earlier.get("tune"), dict):  # an earlier --tune's record survives a call without --tune
        meta["tune"] = earlier["tune"]
    if tune:
        from optimlab.tune.search import tune as run_tune

        start = time.perf_counter()
        run_tune(
            config,
            out_dir / TUNED_DIR,
            budget=budget,
            lr_range=exp.tune["lr_range"],
            tune_seeds=TUNE_SEEDS,
            workers=workers,
            progress=progress,
            executor=executor,
            tensorboard=tensorboard,
        )
        meta["tune"] = {
            "budget": budget,
            "lr_range": list(exp.tune["lr_range"]),
            "tune_seeds": list(TUNE_SEEDS),
            # over all --tune calls, like the sweep's: a resumed or repeated search adds its time
            "wall_time_s": round(time.perf_counter() - start + float(meta.get("tune", {}).get("wall_time_s", 0.0)), 1),
        }
    write_json_atomic(out_dir / META_FILE, meta)
    write_report(out_dir)
    judged = judge_folder(out_dir)
    return Reproduction(write_verdict(out_dir, judged), judged)


def _run_sequential(
    exp: PaperExperiment,
    config: ExperimentConfig,
    out_dir: Path,
    looks: list[int],
    workers: int,
    progress: bool,
    executor: Executor | None = None,
    tensorboard: bool = True,
) -> ExperimentConfig:
    """Add seeds look by look until every claim is decided; returns the config of the last look."""
    from optimlab.experiments import looks as sequential_looks
    from optimlab.experiments.results import load_results
    from optimlab.experiments.sweep import run_experiment
    from optimlab.reproduce.judging import judge_all

    def run(cfg: ExperimentConfig) -> None:
        run_experiment(cfg, out_dir, workers=workers, progress=progress, executor=executor, tensorboard=tensorboard)

    def decide(cfg: ExperimentConfig, alpha: float) -> dict[str, str]:
        results = load_results(out_dir, [r.run_id for r in cfg.runs()])
        return {str(i): r.verdict for i, r in enumerate(judge_all(exp, results, alpha=alpha))}

    record = sequential_looks.run_until_decided(config, out_dir, looks, run, decide)
    return config.replace(seeds=tuple(record["seeds"]))
