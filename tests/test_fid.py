"""FID: the Fréchet distance against hand-computed values on fixed feature sets (both trace methods),
the classifier and Inception feature paths, and the CPU-scale extractor's training."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.tasks.fid import (
    ClassifierFeatures,
    InceptionFeatures,
    feature_statistics,
    fid,
    fid_from_features,
    frechet_distance,
)
from optimlab.tasks.fid_classifier import train_feature_classifier

METHODS = ["sqrtm", "eig"]


@pytest.mark.parametrize("method", METHODS)
def test_frechet_distance_hand_computed(method):
    # 1-D: (0 - 1)² + 1 + 4 - 2·sqrt(1·4) = 2
    assert frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1), method) == pytest.approx(2.0)
    # diagonal 2-D: ‖(1, 2)‖² + (1 + 4) + (9 + 1) - 2·(sqrt(9) + sqrt(4)) = 5 + 15 - 10 = 10
    d = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([9.0, 1.0]), method)
    assert d == pytest.approx(10.0)
    # non-commuting: Σ₁Σ₂ = [[2, 3], [1, 6]] has trace 8, det 9, so tr sqrt = sqrt(8 + 2·sqrt 9) = sqrt 14
    s1, s2 = np.array([[2.0, 1.0], [1.0, 2.0]]), np.diag([1.0, 3.0])
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2, method) == pytest.approx(4 + 4 - 2 * math.sqrt(14))
    assert frechet_distance(np.ones(3), s2[:1, :1] * np.eye(3), np.ones(3), np.eye(3), method) == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize("method", METHODS)
def test_fid_of_fixed_feature_sets(method):
    f1 = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])  # mean (1, 1), covariance (4/3)·I (ddof 1)
    mu, sigma = feature_statistics(f1)
    np.testing.assert_allclose(mu, [1.0, 1.0])
    np.testing.assert_allclose(sigma, np.eye(2) * 4 / 3)
    f2 = 2 * f1 + 1  # mean (3, 3), covariance (16/3)·I
    # ‖(2, 2)‖² + 8/3 + 32/3 - 2·tr((64/9)·I)^{1/2} = 8 + 40/3 - 32/3 = 32/3
    assert fid_from_features(f1, f2, method) == pytest.approx(32 / 3)
    assert fid_from_features(torch.tensor(f1), torch.tensor(f2), method) == pytest.approx(32 / 3)
    assert fid_from_features(f1, f1, method) == pytest.approx(0.0, abs=1e-9)


def test_both_methods_agree_on_random_and_rank_deficient_sets():
    rng = np.random.RandomState(0)
    a, b = rng.randn(200, 6), rng.randn(150, 6) @ rng.randn(6, 6) + 0.3
    assert fid_from_features(a, b, "sqrtm") == pytest.approx(fid_from_features(a, b, "eig"), rel=1e-6)
    # fewer samples than dimensions: singular covariances, still finite, non-negative and equal
    a, b = rng.randn(5, 12), rng.randn(5, 12) + 1
    d1, d2 = fid_from_features(a, b, "sqrtm"), fid_from_features(a, b, "eig")
    assert math.isfinite(d1) and d1 >= 0 and d1 == pytest.approx(d2, rel=1e-3)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        feature_statistics(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(1), np.eye(1), np.zeros(1), np.eye(1), "svd")


def test_classifier_features_are_the_input_of_the_last_linear():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    feats = ClassifierFeatures(net, mean=0.5, std=0.25, batch_size=2)
    images = torch.rand(5, 1, 2, 2) * 2 - 1
    expected = torch.relu(net[1]((((images + 1) / 2 - 0.5) / 0.25).flatten(1))).double()
    torch.testing.assert_close(feats(images), expected.detach())
    assert feats.metric_name == "FID (classifier features)"
    assert fid(feats, images, images) == pytest.approx(0.0, abs=1e-9)


class FakeInception(nn.Module):
    """Stands in for the TorchScript file's interface: x [N, 3, H, W] in 0..255, return_features."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def test_inception_path_reads_a_local_file_and_names_it_when_missing(tmp_path):
    missing = tmp_path / "inception-2015-12-05.pt"
    with pytest.raises(FileNotFoundError, match=r"inception-2015-12-05\.pt.*TorchScript"):
        InceptionFeatures(missing)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.pt is not a TorchScript model"):
        InceptionFeatures(tmp_path / "junk.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        torch.jit.script(FakeInception()).save(str(missing))
    ext = InceptionFeatures(missing, batch_size=2)
    images = torch.stack([torch.full((1, 4, 4), -1.0), torch.full((1, 4, 4), 1.0), torch.zeros(1, 4, 4)])
    out = ext(images)  # grey -> 3 channels, [-1, 1] -> [0, 255]
    torch.testing.assert_close(out[:, 0], torch.tensor([0.0, 255.0, 127.5], dtype=torch.float64))
    assert out.shape == (3, 6) and ext.metric_name == "FID (Inception features)"


def test_feature_classifier_learns_and_leaves_the_callers_rng_alone():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(768) % 2
    x = (torch.rand(768, 1, 8, 8, generator=g) * 0.5 + y.view(-1, 1, 1, 1) * 0.5) * 2 - 1  # class 1 brighter
    state = torch.get_rng_state()
    trained = train_feature_classifier(x[:640], y[:640], x[640:], y[640:], 2)
    assert torch.equal(state, torch.get_rng_state())
    assert trained.test_accuracy > 0.95
    assert train_feature_classifier(x[:640], y[:640], x[640:], y[640:], 2) is trained  # cached
    assert trained.features(x[:5]).shape == (5, 32)
