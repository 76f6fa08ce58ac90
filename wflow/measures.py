"""Discrete probability measures μ = Σ_i w_i δ_{x_i} on R^d (``docs/theory.md`` §6)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .norms import Norm, as_norm
from .potentials import PotentialLike
from .slope import metric_slope

__all__ = ["ParticleMeasure", "as_measure", "probability_weights"]

#: weights must sum to 1 within this (absolute) tolerance unless ``normalize=True``
WEIGHT_SUM_TOL = 1e-12


def probability_weights(weights: ArrayLike, n: int, *, normalize: bool = False, owner: str = "points") -> np.ndarray:
    """Validate probability weights: shape (n,), finite, ≥ 0, summing to 1.

    The sum must be 1 within ``WEIGHT_SUM_TOL`` unless ``normalize=True``, in which case the
    weights are divided by their (positive) sum. ``owner`` names what the weights must match
    in error messages. Returns a new float64 array.
    """
    try:
        w = np.array(weights, dtype=float).reshape(-1) if np.ndim(weights) else None
    except (TypeError, ValueError) as exc:
        raise TypeError(f"weights must be a numeric array of shape (n,): {exc}") from None
    if w is None or w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) to match {owner}, got {np.shape(weights)}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contains NaN or infinite values")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0, got minimum {w.min():g}")
    if normalize:
        top = w.max()
        if top <= 0:
            raise ValueError("weights sum to 0: cannot normalize")
        w = w / top  # first scale to max 1: the sum of huge weights (1e308) would overflow
        return w / w.sum()
    total = w.sum()
    if abs(total - 1.0) > WEIGHT_SUM_TOL:
        raise ValueError(
            f"weights must sum to 1 within {WEIGHT_SUM_TOL:g} (got {total!r}); "
            "pass normalize=True to rescale them"
        )
    return w


class ParticleMeasure:
    """A validated particle measure μ = Σ_i w_i δ_{x_i}.

    Parameters
    ----------
    points : array, shape (n, d) or (d,)
        Finite atom locations (a (d,) array is one atom). Duplicated points are allowed.
    weights : array, shape (n,), optional
        w_i ≥ 0 with Σ w_i = 1 within ``WEIGHT_SUM_TOL = 1e-12``; uniform 1/n when omitted.
    normalize : bool
        Divide the weights by their sum instead of requiring it to be 1.
    drop_zero : bool
        Remove zero-weight atoms. By default they are kept, so that atom i of a measure
        stays particle i of a flow; the transport functions ignore them (an atom of mass 0
        is not in the support, so it never affects W∞) — :meth:`support` drops them.

    Attributes
    ----------
    points : ndarray, shape (n, d), float64 (read-only)
    weights : ndarray, shape (n,), float64 (read-only)
    """

    __slots__ = ("points", "weights")
    points: np.ndarray
    weights: np.ndarray

    def __init__(self, points, weights=None, *, normalize: bool = False, drop_zero: bool = False):
        if isinstance(points, ParticleMeasure):
            if weights is None:
                weights = points.weights
            points = points.points
        try:
            X = np.array(points, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"points must be a numeric array of shape (n, d): {exc}") from None
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"points must be a non-empty array of shape (n, d), got shape {np.shape(points)}")
        if not np.all(np.isfinite(X)):
            raise ValueError("points contains NaN or infinite values")
        n = X.shape[0]
        w = np.full(n, 1.0 / n) if weights is None else probability_weights(weights, n, normalize=normalize)
        if drop_zero:
            keep = w > 0
            X, w = X[keep], w[keep]
        X.setflags(write=False)
        w.setflags(write=False)
        self.points, self.weights = X, w

    # -- basic facts ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of atoms (including zero-weight atoms)."""
        return self.points.shape[0]

    @property
    def dim(self) -> int:
        """Dimension d of the space."""
        return self.points.shape[1]

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"ParticleMeasure(n={self.n}, d={self.dim})"

    def is_uniform(self) -> bool:
        """True when all weights are equal (to 1e-15 relative)."""
        return bool(np.all(np.abs(self.weights - 1.0 / self.n) <= 1e-15 / self.n + 1e-18))

    def support(self) -> "ParticleMeasure":
        """The same measure without zero-weight atoms."""
        if np.all(self.weights > 0):
            return self
        return ParticleMeasure(self.points, self.weights, drop_zero=True)

    def mean(self) -> np.ndarray:
        """Barycentre Σ w_i x_i, shape (d,)."""
        return self.weights @ self.points

    def pushforward(self, f: Callable[[np.ndarray], ArrayLike]) -> ParticleMeasure:
        """f_# μ for a batched map f: (n, d) -> (n, d')."""
        return ParticleMeasure(np.asarray(f(self.points), dtype=float), self.weights)

    # -- potential energy -----------------------------------------------------------------
    def energy(self, potential: PotentialLike) -> float:
        """𝓔(μ) = ∫ V dμ = Σ_i w_i V(x_i)."""
        return float(self.weights @ potential.value(self.points))

    def slope(self, potential: PotentialLike, norm: str | float | Norm = "linf") -> float:
        """W∞-slope of the potential energy, |∂𝓔|(μ) = ∫ |∂V| dμ = Σ_i w_i |∂V|(x_i).

        |∂V| is the metric slope (:func:`wflow.slope.metric_slope`): ‖∇V‖_* for C¹ V.
        """
        return float(self.weights @ metric_slope(potential, self.points, as_norm(norm)))


def as_measure(mu: ParticleMeasure | ArrayLike, name: str = "mu") -> ParticleMeasure:
    """A :class:`ParticleMeasure` from a measure or a plain array (uniform weights)."""
    if isinstance(mu, ParticleMeasure):
        return mu
    try:
        return ParticleMeasure(mu)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
