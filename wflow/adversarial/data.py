"""Data sets: two moons (seeded generator, shipped split) and scikit-learn's bundled real data.

:func:`load_dataset` gives every data set the same shape — a seeded stratified train/test split
with documented scaling — from data that ships with wflow or scikit-learn (nothing is
downloaded at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

from .._validation import integer, real, rng_from

__all__ = ["make_two_moons", "load_two_moons", "DATA_PATH", "TWO_MOONS_SETTINGS", "Dataset", "load_dataset",
           "DATASETS"]

#: names accepted by :func:`load_dataset`
DATASETS = ("two_moons", "digits", "breast_cancer")

DATA_PATH = Path(__file__).resolve().parent / "data" / "two_moons.npz"

#: how ``data/two_moons.npz`` was made (``experiments/train_two_moons.py``)
TWO_MOONS_SETTINGS = {"n_train": 1000, "n_test": 1000, "noise": 0.15, "seed_train": 0, "seed_test": 1}


def make_two_moons(n: int = 1000, noise: float = 0.1, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in R², with Gaussian noise.

    Class 0: (cos s, sin s), class 1: (1 − cos s, 1/2 − sin s), s ~ U[0, π], plus
    N(0, noise² I) noise. Classes get ⌊n/2⌋ and ⌈n/2⌉ points; rows are shuffled.

    Parameters
    ----------
    n : int
        Number of points (n ≥ 1).
    noise : float
        Standard deviation of the Gaussian noise (≥ 0).
    seed : int or Generator, optional

    Returns
    -------
    X : ndarray, shape (n, 2), float64
    y : ndarray, shape (n,), int64 labels in {0, 1}
    """
    n = integer(n, "n", low=1)
    noise = real(noise, "noise", low=0.0)
    rng = rng_from(seed)
    n0 = n // 2
    n1 = n - n0
    s0 = rng.uniform(0.0, np.pi, n0)
    s1 = rng.uniform(0.0, np.pi, n1)
    X = np.concatenate([np.c_[np.cos(s0), np.sin(s0)], np.c_[1.0 - np.cos(s1), 0.5 - np.sin(s1)]])
    y = np.r_[np.zeros(n0, dtype=np.int64), np.ones(n1, dtype=np.int64)]
    X += noise * rng.standard_normal(X.shape)
    perm = rng.permutation(n)
    return X[perm], y[perm]


def load_two_moons() -> dict[str, np.ndarray]:
    """The fixed two-moons split shipped with wflow.

    Returns
    -------
    dict with ``X_train`` (1000, 2), ``y_train`` (1000,), ``X_test`` (1000, 2), ``y_test`` (1000,)
        Made by :func:`make_two_moons` with the settings in ``TWO_MOONS_SETTINGS``.
    """
    if not DATA_PATH.is_file():
        raise FileNotFoundError(f"shipped data file not found: {DATA_PATH}")
    try:
        with np.load(DATA_PATH, allow_pickle=False) as f:
            return {k: np.array(f[k]) for k in ("X_train", "y_train", "X_test", "y_test")}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{DATA_PATH} is not a valid data file: {exc}") from None


@dataclass
class Dataset:
    """A train/test split with its provenance.

    Attributes
    ----------
    name : str
    X_train : ndarray, shape (n_train, d)
    y_train : ndarray of int64, shape (n_train,)
    X_test : ndarray, shape (n_test, d)
    y_test : ndarray of int64, shape (n_test,)
    n_classes : int
    scaling : str
        How the features were scaled (e.g. "pixel / 16 in [0, 1]").
    seed : int
        The split's seed.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    scaling: str
    seed: int

    @property
    def dim(self) -> int:
        return int(self.X_train.shape[1])

    def class_points(self, label: int, split: str = "test") -> np.ndarray:
        """The points of one class in the ``"train"`` or ``"test"`` split."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        return X[y == label]

    def to_dict(self) -> dict:
        return {"name": self.name, "n_train": len(self.X_train), "n_test": len(self.X_test), "dim": self.dim,
                "n_classes": self.n_classes, "scaling": self.scaling, "seed": self.seed}


def load_dataset(name: str, *, test_size: float = 0.25, seed: int = 0, n: int = 1000,
                 noise: float = 0.15) -> Dataset:
    """Load a data set with a seeded stratified split.

    - ``"digits"``: scikit-learn's 8×8 digits (1797 images, d = 64, 10 classes), pixels
      divided by 16 so that X ∈ [0, 1]^64 (attack budgets are in pixel-intensity units).
    - ``"breast_cancer"``: scikit-learn's Wisconsin data (569 points, d = 30, 2 classes),
      standardized with the mean and standard deviation of the **train** split.
    - ``"two_moons"``: :func:`make_two_moons` (``n`` points, ``noise``, the same ``seed``),
      unscaled.

    Parameters
    ----------
    name : {"two_moons", "digits", "breast_cancer"}
    test_size : float in (0, 1)
        Fraction of the points in the test split (stratified by class).
    seed : int
        Seed of the split (and of the two-moons sample).
    n, noise : two moons only.

    Returns
    -------
    Dataset
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    test_size = real(test_size, "test_size", low=0.0, strict=True)
    if test_size >= 1:
        raise ValueError(f"test_size must be < 1, got {test_size!r}")
    seed = integer(seed, "seed", low=0)
    if name == "digits":
        d = datasets.load_digits()
        X, y, scaling = d.data / 16.0, d.target, "pixel / 16, in [0, 1]"
    elif name == "breast_cancer":
        d = datasets.load_breast_cancer()
        X, y, scaling = d.data, d.target, "standardized with the train split's mean and std"
    else:
        X, y = make_two_moons(n, noise, seed)
        scaling = "none"
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    if name == "breast_cancer":
        mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
        sd[sd == 0] = 1.0
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    return Dataset(name=name, X_train=np.ascontiguousarray(Xtr), y_train=ytr, X_test=np.ascontiguousarray(Xte),
                   y_test=yte, n_classes=int(np.unique(y).size), scaling=scaling, seed=seed)
