"""The catalogue of the papers' experiments: one TOML file per experiment in configs/paper/.

    list_paper_experiments()                      # ['rsgdm-cifar10-resnet18', ...]
    exp = load_paper_experiment("rsgdm-cifar100-resnet50")
    exp.paper.reported["rsgdm"]["accuracy"]       # 0.7727, what the paper printed
    exp.paper.claims[0].optimizer                 # 'rsgdm' (a label of exp.experiment["optimizers"])
    exp.paper.code_notes.get("wgd-nadam")         # what the authors' published code runs for that label
    exp.paper.code_arms.get("wgd-radam")          # 'wgd-radam-code': the arm running the published code
    exp.experiment_dict(scale="cpu", have_cifar10=True)   # -> ExperimentConfig.from_dict(...)

A file holds three things. Its top-level keys are an ExperimentConfig (the paper-scale run, as
close to the paper as the text allows). [paper] is what the paper says: id, title, source file,
the tables/figures used, quoted settings, the reported numbers per optimizer label and metric,
the claims a report judges, and notes on every discrepancy or guess. [cpu] overrides top-level
keys for a run of a few minutes on 2 cores; [cpu.fallback] overrides further when the CIFAR-10
subset is absent. [tune] (optional) sets the fair judge's search: `lr_range` = [low, high] and
`budget` (lr candidates per optimizer, the same log grid for every optimizer of the experiment). Loading checks that every label a claim or a reported figure names is an
optimizer label and every figure is in its metric's range, naming the file and the culprit.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from optimlab.stats.margins import check_margin
from optimlab.tasks import known_metrics

CONFIG_DIR = ("configs", "paper")  # inside the optimlab package

# what [paper.reported] and claims may name: name -> (low, high, which way is better), as the tasks declare them
METRICS = {m.name: (m.low, m.high, m.better) for m in known_metrics().values()}
_BETTER = ("higher", "lower")
_PAPER_KEYS = {
    "id",
    "title",
    "source",
    "also",
    "references",
    "notes",
    "settings",
    "reported",
    "claims",
    "dataset",
    "model",
    "code",
    "code_arms",
    "code_notes",
}
_CLAIM_KEYS = {"text", "metric", "better", "optimizer", "baseline"}
_CLAIM_OPTIONAL = {"margin"}  # the equivalence margin in the metric's units (default: optimlab.stats.margins)
_TUNE_KEYS = {"lr_range", "budget"}
DEFAULT_TUNE = {"lr_range": (1e-4, 1.0), "budget": 5}  # one candidate per decade


class CatalogError(ValueError):
    """A malformed catalogue file; the message names the file and the bad key or value."""


@dataclass(frozen=True)
class Claim:
    text: str  # the claim in words, with the paper's numbers
    metric: str  # a key of METRICS
    better: str  # "higher" | "lower" (agrees with METRICS[metric])
    optimizer: str  # label claimed to be better
    baseline: str  # label it is compared against
    margin: float | None = None  # equivalence margin (None: the metric's default, stats.margins)


@dataclass(frozen=True)
class PaperInfo:
    id: str  # "000".."004", the file prefix in shared/papers
    title: str
    source: str  # file name in shared/papers the numbers come from
    reported: dict[str, dict[str, float]]  # label -> metric -> value as printed (fractions)
    claims: tuple[Claim, ...]
    notes: str  # discrepancies, typos, inferred settings
    also: tuple[str, ...] = ()  # other files consulted (e.g. 001, the Chinese original of 000)
    references: tuple[str, ...] = ()  # tables / figures the experiment reproduces
    settings: dict[str, str] = field(default_factory=dict)  # settings quoted from the paper
    dataset: str = ""  # the paper's data set in words where the config's name is generic ("Animals-10")
    # the paper's network(s) in words where optimlab trains a substitute ("Fast R-CNN and RFBNet"); a
    # verdict page then names them instead of the config's model, which the paper never ran
    model: str = ""
    # Which code produced the paper's tables, where the authors published it (repository, commit, files).
    code: str = ""
    # label -> label of the arm that runs the published code, where that code is not the paper's rule
    # (e.g. "wgd-radam" -> "wgd-radam-code"); both arms are in the experiment.
    code_arms: dict[str, str] = field(default_factory=dict)
    # label -> what the published code does for that label, in one or two sentences, for a verdict page
    # to print beside every claim naming the label (e.g. "wgd-nadam": the code applies no whitening).
    code_notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaperExperiment:
    name: str
    experiment: dict[str, Any]  # ExperimentConfig keys (paper scale): everything but [paper], [cpu]
    paper: PaperInfo
    cpu: dict[str, Any]  # ExperimentConfig overrides for a CPU run; cpu["fallback"] without CIFAR-10
    tune: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TUNE))  # lr_range (lo, hi), budget

    @property
    def labels(self) -> list[str]:
        return [o["label"] for o in self.experiment["optimizers"]]

    def cpu_overrides(self, have_cifar10: bool = True) -> dict[str, Any]:
        """The [cpu] overrides, plus [cpu.fallback] when the CIFAR-10 subset is not available."""
        base = {k: copy.deepcopy(v) for k, v in self.cpu.items() if k != "fallback"}
        if not have_cifar10:
            base.update(copy.deepcopy(self.cpu.get("fallback", {})))
        return base

    def experiment_dict(self, scale: Literal["paper", "cpu"] = "paper", have_cifar10: bool = True) -> dict[str, Any]:
        """A fresh dict for ExperimentConfig.from_dict: the paper-scale run, or it with [cpu] applied."""
        if scale not in ("paper", "cpu"):
            raise ValueError(f"scale must be 'paper' or 'cpu', got {scale!r}")
        d = copy.deepcopy(self.experiment)
        if scale == "cpu":
            d.update(self.cpu_overrides(have_cifar10))
        return d


def _config_dir() -> Any:
    return resources.files("optimlab").joinpath(*CONFIG_DIR)


def list_paper_experiments() -> list[str]:
    """Names of every shipped paper experiment, sorted."""
    folder = _config_dir()
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_paper_experiment(name: str) -> PaperExperiment:
    """Read and check configs/paper/<name>.toml; ValueError listing valid names for an unknown one."""
    valid = list_paper_experiments()
    if name not in valid:
        raise ValueError(f"unknown paper experiment {name!r}; valid: {', '.join(valid)}")
    fname = f"{name}.toml"
    try:
        data = tomllib.loads(_config_dir().joinpath(fname).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{fname}: not valid TOML: {e}") from None
    return _parse(name, data, fname)


def _parse(name: str, data: dict[str, Any], where: str) -> PaperExperiment:
    data = dict(data)
    paper = data.pop("paper", None)
    cpu = data.pop("cpu", {})
    tune = _tune(data.pop("tune", {}), where)
    if not isinstance(paper, dict):
        raise CatalogError(f"{where}: missing [paper] table")
    if not isinstance(cpu, dict) or not isinstance(cpu.get("fallback", {}), dict):
        raise CatalogError(f"{where}: [cpu] and [cpu.fallback] must be tables")
    if data.get("name") != name:
        raise CatalogError(f"{where}: name = {data.get('name')!r} must equal the file name {name!r}")
    optimizers = data.get("optimizers")
    if not isinstance(optimizers, list) or not optimizers:
        raise CatalogError(f"{where}: needs at least one [[optimizers]] table")
    labels = []
    for i, o in enumerate(optimizers):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise CatalogError(f"{where}: optimizers[{i}] must be a table with a 'name'")
        o.setdefault("label", o["name"])
        labels.append(o["label"])
    if len(set(labels)) != len(labels):
        raise CatalogError(f"{where}: optimizer labels repeat: {labels}")
    for key in ("baseline",):
        if key in data and data[key] not in labels:
            raise CatalogError(f"{where}: {key} {data[key]!r} is not an optimizer label {labels}")
    return PaperExperiment(name=name, experiment=data, paper=_paper(paper, labels, where), cpu=cpu, tune=tune)


def _tune(t: Any, where: str) -> dict[str, Any]:
    """[tune] with defaults filled in: lr_range a pair 0 < low < high, budget an int >= 2."""
    if not isinstance(t, dict):
        raise CatalogError(f"{where}: [tune] must be a table")
    unknown = sorted(set(t) - _TUNE_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown [tune] key(s) {unknown}; valid: {sorted(_TUNE_KEYS)}")
    out = {**DEFAULT_TUNE, **t}
    r = out["lr_range"]
    if (
        not isinstance(r, (list, tuple))
        or len(r) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in r)
        or not 0 < r[0] < r[1]
    ):
        raise CatalogError(f"{where}: [tune] lr_range must be [low, high] with 0 < low < high, got {r!r}")
    b = out["budget"]
    if isinstance(b, bool) or not isinstance(b, int) or b < 2:
        raise CatalogError(f"{where}: [tune] budget must be an int >= 2, got {b!r}")
    return {"lr_range": (float(r[0]), float(r[1])), "budget": b}


def _paper(p: dict[str, Any], labels: list[str], where: str) -> PaperInfo:
    unknown = sorted(set(p) - _PAPER_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown [paper] key(s) {unknown}; valid: {sorted(_PAPER_KEYS)}")
    for key in ("id", "title", "source", "notes"):
        if not isinstance(p.get(key), str) or not p[key].strip():
            raise CatalogError(f"{where}: [paper] needs a non-empty string {key!r}")
    reported: dict[str, dict[str, float]] = {}
    for label, metrics in p.get("reported", {}).items():
        if label not in labels:
            raise CatalogError(f"{where}: [paper.reported] label {label!r} is not an optimizer label {labels}")
        if not isinstance(metrics, dict) or not metrics:
            raise CatalogError(f"{where}: [paper.reported].{label} must be a non-empty table metric = value")
        reported[label] = {}
        for metric, value in metrics.items():
            if metric not in METRICS:
                raise CatalogError(
                    f"{where}: [paper.reported].{label}: unknown metric {metric!r}; valid: {sorted(METRICS)}"
                )
            lo, hi, _ = METRICS[metric]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise CatalogError(f"{where}: [paper.reported].{label}.{metric} = {value!r} is outside [{lo}, {hi}]")
            reported[label][metric] = float(value)
    claims = []
    for i, c in enumerate(p.get("claims", [])):
        claims.append(_claim(c, labels, f"{where}: [[paper.claims]] #{i}"))
    code = p.get("code", "")
    if not isinstance(code, str):
        raise CatalogError(f"{where}: [paper] code must be a string, got {code!r}")
    if not isinstance(p.get("model", ""), str):
        raise CatalogError(
            f"{where}: [paper] model must be a string (the paper's networks in words), got {p['model']!r}"
        )
    code_arms = _label_table(p.get("code_arms", {}), labels, f"{where}: [paper.code_arms]", values_are_labels=True)
    code_notes = _label_table(p.get("code_notes", {}), labels, f"{where}: [paper.code_notes]", values_are_labels=False)
    return PaperInfo(
        id=p["id"],
        title=p["title"],
        source=p["source"],
        reported=reported,
        claims=tuple(claims),
        notes=p["notes"].strip(),
        also=tuple(p.get("also", ())),
        references=tuple(p.get("references", ())),
        settings=dict(p.get("settings", {})),
        dataset=str(p.get("dataset", "")),
        model=p.get("model", ""),
        code=code.strip(),
        code_arms=code_arms,
        code_notes={k: " ".join(v.split()) for k, v in code_notes.items()},
    )


def _label_table(t: Any, labels: list[str], where: str, values_are_labels: bool) -> dict[str, str]:
    """A table label = string; every key (and, for code_arms, every value) must be an optimizer label."""
    if not isinstance(t, dict):
        raise CatalogError(f"{where} must be a table label = string")
    for key, value in t.items():
        if key not in labels:
            raise CatalogError(f"{where}: {key!r} is not an optimizer label {labels}")
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(f"{where}.{key} must be a non-empty string, got {value!r}")
        if values_are_labels and (value not in labels or value == key):
            raise CatalogError(f"{where}.{key} = {value!r} must be another optimizer label {labels}")
    return dict(t)


def _claim(c: Any, labels: list[str], where: str) -> Claim:
    if not isinstance(c, dict) or not _CLAIM_KEYS <= set(c) <= _CLAIM_KEYS | _CLAIM_OPTIONAL:
        got = sorted(c) if isinstance(c, dict) else c
        raise CatalogError(
            f"{where}: needs exactly the keys {sorted(_CLAIM_KEYS)} (optional: {sorted(_CLAIM_OPTIONAL)}), got {got!r}"
        )
    if c["metric"] not in METRICS:
        raise CatalogError(f"{where}: unknown metric {c['metric']!r}; valid: {sorted(METRICS)}")
    if c["better"] not in _BETTER:
        raise CatalogError(f"{where}: better must be one of {list(_BETTER)}, got {c['better']!r}")
    if c["better"] != METRICS[c["metric"]][2]:
        raise CatalogError(f"{where}: better = {c['better']!r} but {c['metric']!r} is better {METRICS[c['metric']][2]}")
    for key in ("optimizer", "baseline"):
        if c[key] not in labels:
            raise CatalogError(f"{where}: {key} {c[key]!r} is not an optimizer label {labels}")
    if c["optimizer"] == c["baseline"]:
        raise CatalogError(f"{where}: optimizer and baseline are both {c['optimizer']!r}")
    try:
        margin = check_margin(c["margin"], f"{where}: margin") if "margin" in c else None
    except ValueError as e:
        raise CatalogError(str(e)) from None
    return Claim(**{k: c[k] for k in ("text", "metric", "better", "optimizer", "baseline")}, margin=margin)
