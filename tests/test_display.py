"""How numbers are shown: a tiny non-zero difference never reads as no difference."""

from __future__ import annotations

from optimlab.report.display import fmt_interval, fmt_value


def test_tiny_nonzero_values_keep_two_significant_digits():
    assert fmt_value("auc", 6.1e-6, signed=True) == "+6.1e-06"  # printed "+0.0000" before
    assert fmt_value("auc", -5.8e-7, signed=True) == "-5.8e-07"
    assert fmt_value("accuracy", 4.4e-5, signed=True, unit=True) == "+4.4e-03 pts"
    assert fmt_interval("auc", -5.8e-7, 1.3e-5) == "[-5.8e-07, +1.3e-05]"


def test_ordinary_and_zero_values_are_unchanged():
    assert fmt_value("auc", 0.0, signed=True) == "+0.0000"
    assert fmt_value("loss", 0.01234) == "0.0123"
    assert fmt_value("accuracy", 0.2624, unit=True) == "26.24 %"
    assert fmt_value("accuracy", -0.0394, signed=True, unit=True) == "-3.94 pts"
    assert fmt_value("auc", None) == "—"


def test_learning_curve_panel_names_the_task_curve(tmp_path, monkeypatch):
    """A key-point experiment's curve panel says MSE, not 'test accuracy %' (committed run files)."""
    from pathlib import Path

    from matplotlib.axes import Axes

    from optimlab.experiments.config import load_experiment_config
    from optimlab.experiments.results import load_results
    from optimlab.report.plots import learning_curves

    folder = Path(__file__).resolve().parents[1] / "results" / "reproduce-tmsgd-keypoints-youtubefaces-cpu"
    config = load_experiment_config(folder / "experiment.json")
    labels: list[str] = []
    original = Axes.set

    def recording(self, **kwargs):
        labels.append(str(kwargs.get("ylabel", "")))
        return original(self, **kwargs)

    monkeypatch.setattr(Axes, "set", recording)
    assert learning_curves(load_results(folder), config, tmp_path / "curves.png") is not None
    assert "test MSE" in labels and not any("accuracy" in label for label in labels)
