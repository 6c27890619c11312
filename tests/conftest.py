"""Shared test set-up: one intra-op thread per test process (CI runs pytest -n 2 on 2 cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# The real data beside the repository (../shared): CI has it, a plain clone does not.

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"needs {what} at {path} (CI has ../shared beside the repository; a plain clone does not)")
    return path


@pytest.fixture(scope="session")
def cifar10_subset() -> Path:
    """The real CIFAR-10 subset folder (shared/data/cifar-10-subset); the test skips when it is absent."""
    return _need(SHARED / "data" / "cifar-10-subset" / "batches.meta", "the real CIFAR-10 subset").parent


@pytest.fixture(scope="session")
def papers_dir() -> Path:
    """The papers' texts (shared/papers); the test skips when they are absent."""
    return _need(SHARED / "papers", "the papers' texts")


@pytest.fixture(scope="session")
def womens_reviews() -> Path:
    """The real Women's E-Commerce Clothing Reviews folder (the text task's stand-in); skips when absent."""
    return _need(SHARED / "data" / "womens-ecommerce-reviews" / "reviews.csv.gz", "the real reviews data").parent


@pytest.fixture(scope="session")
def uci_adult() -> Path:
    """The real UCI Adult folder (the click-through-rate task's stand-in); skips when absent."""
    return _need(SHARED / "data" / "uci-adult" / "adult.csv.gz", "the real UCI Adult data").parent


@pytest.fixture(scope="session")
def mnist5k() -> Path:
    """The real mnist-5k folder (shared/data/mnist-5k); the test skips when it is absent."""
    return _need(SHARED / "data" / "mnist-5k" / "mnist_5k.csv.gz", "the real mnist-5k digits").parent
