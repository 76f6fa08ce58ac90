"""The two-moons data set: a seeded generator and the fixed split the shipped models use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validation import integer, real, rng_from

__all__ = ["make_two_moons", "load_two_moons", "DATA_PATH", "TWO_MOONS_SETTINGS"]

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
