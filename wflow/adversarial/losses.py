"""Loss potentials ℓ(x) = loss(model(x), y) of a binary classifier, one label per point.

A loss potential is a :class:`wflow.potentials.Potential` whose value at row i of X is the
loss of the classifier at x_i against the label y_i of *data point i*; attacks ascend it, so
the flow runs on ``-loss`` (negation keeps the labels and the fast path). Labels are either one
per point (shape (n,); the potential then only accepts batches of exactly n rows, and
``restrict(rows)`` — which the flow driver calls for each block of particles — slices them)
or a single label broadcast to every row.

Losses, with z the logit and p = σ(z):

- ``"mse"``: ℓ = (p − y)² (squared error on the sigmoid output, as in the paper),
  ∂ℓ/∂z = 2 (p − y) p (1 − p);
- ``"ce"``: ℓ = −y log p − (1 − y) log(1 − p) = softplus(z) − y z, ∂ℓ/∂z = p − y.

∇_x ℓ = ∂ℓ/∂z · ∂z/∂x with the model's exact input gradient.
"""

from __future__ import annotations

import numpy as np

from ..potentials import Potential
from .mlp import check_labels, sigmoid

__all__ = ["LossPotential", "SquaredErrorLoss", "CrossEntropyLoss", "make_loss", "LOSSES"]


class LossPotential(Potential):
    """Base class: ℓ(x) = loss(z(x), y) times a scale (−1 for the attack potential).

    Parameters
    ----------
    model : MLP
        A classifier with ``_logits(X)`` and ``_logits_and_grad(X)`` on (n, d) arrays, ``dim``
        and ``predict(X)`` (e.g. :class:`wflow.adversarial.MLP`).
    y : array of shape (n,), 0/1 scalar, or None
        Labels in {0, 1}: one per data point, or one for all. ``None`` uses the label the
        model predicts at ``x`` (required then), fixed at construction.
    x : array, shape (n, d), optional
        Clean inputs whose predicted labels are used when ``y`` is None.
    """

    thread_safe = True
    name = "loss"

    def __init__(self, model, y=None, *, x=None, scale: float = 1.0):
        if not (callable(getattr(model, "_logits_and_grad", None)) and hasattr(model, "dim")):
            raise TypeError(f"model must be a wflow MLP-like classifier, got {type(model).__name__}")
        self.model, self.dim = model, int(model.dim)
        if y is None:
            if x is None:
                raise ValueError("y is None: pass labels y, or clean inputs x to use the predicted labels")
            y = model.predict(x)
        self._y = self._labels(y)
        self.scale = float(scale)

    @staticmethod
    def _labels(y) -> np.ndarray:
        if np.ndim(y) == 0:
            return check_labels(y, 1, name="y")[0].reshape(())
        return check_labels(y, int(np.shape(y)[0]), name="y")

    # -- labels ---------------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        """The labels: (n,) for per-point labels, () for a broadcast label."""
        return self._y

    def with_labels(self, y) -> "LossPotential":
        """The same loss with other labels."""
        new = self._copy()
        new._y = self._labels(y)
        return new

    def predict(self, X) -> np.ndarray:
        """The model's predicted labels at X."""
        return self.model.predict(X)

    def _copy(self) -> "LossPotential":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def restrict(self, rows: slice) -> "LossPotential":
        """The loss seen by particles ``rows``: per-point labels are sliced to ``y[rows]``."""
        if self._y.ndim == 0:
            return self
        if not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice, got {type(rows).__name__}")
        new = self._copy()
        new._y = self._y[rows]
        return new

    def __neg__(self) -> "LossPotential":
        new = self._copy()
        new.scale = -self.scale
        return new

    def __repr__(self) -> str:
        lab = f"n={self._y.size}" if self._y.ndim else f"y={int(self._y)}"
        s = "" if self.scale == 1 else ("-" if self.scale == -1 else f"{self.scale:g} * ")
        return f"{s}{type(self).__name__}({self.model!r}, {lab})"

    # -- evaluation -----------------------------------------------------------------------------
    def _rows_labels(self, X: np.ndarray) -> np.ndarray:
        if self._y.ndim and self._y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but the loss carries {self._y.shape[0]} labels (one per data "
                "point); evaluate on all points or call restrict(rows) first"
            )
        return self._y

    def _loss(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dloss(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _value(self, X):
        y = self._rows_labels(X)
        return self.scale * self._loss(self.model._logits(X), y)

    def _grad(self, X):
        return self._value_and_grad(X)[1]

    def _value_and_grad(self, X):
        y = self._rows_labels(X)
        z, g = self.model._logits_and_grad(X)
        g *= (self.scale * self._dloss(z, y))[:, None]
        return self.scale * self._loss(z, y), g

    def _grad_into(self, X, out):
        y = self._rows_labels(X)
        z, g = self.model._logits_and_grad(X)
        np.multiply(g, (self.scale * self._dloss(z, y))[:, None], out=out)
        return out


class SquaredErrorLoss(LossPotential):
    """ℓ(x) = (σ(z(x)) − y)², ∂ℓ/∂z = 2 (σ − y) σ (1 − σ). Values in [0, 1]."""

    name = "mse"

    @staticmethod
    def _loss(z, y):
        return (sigmoid(z) - y) ** 2

    @staticmethod
    def _dloss(z, y):
        p = sigmoid(z)
        return 2.0 * (p - y) * p * (1.0 - p)


class CrossEntropyLoss(LossPotential):
    """ℓ(x) = softplus(z) − y z = −y log σ(z) − (1 − y) log(1 − σ(z)), ∂ℓ/∂z = σ(z) − y."""

    name = "ce"

    @staticmethod
    def _loss(z, y):
        return np.logaddexp(0.0, z) - y * z

    @staticmethod
    def _dloss(z, y):
        return sigmoid(z) - y


LOSSES = {"mse": SquaredErrorLoss, "ce": CrossEntropyLoss}


def make_loss(model, y=None, loss: str = "mse", *, x=None) -> LossPotential:
    """The loss potential ``loss`` ∈ {"mse", "ce"} of ``model`` with labels ``y``.

    See :class:`LossPotential` for ``y``/``x``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    return LOSSES[loss](model, y, x=x)
