"""Loss potentials ℓ(x) = loss(model(x), y) of a classifier, one label per point.

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
from .mlp import check_labels, log_softmax, sigmoid

__all__ = ["LossPotential", "SquaredErrorLoss", "CrossEntropyLoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxSquaredErrorLoss", "make_loss", "loss_class", "LOSSES", "MULTICLASS_LOSSES"]


class LossPotential(Potential):
    """Base class: ℓ(x) = loss(z(x), y) times a scale (−1 for the attack potential).

    Parameters
    ----------
    model : MLP
        A classifier with ``_logits(X)`` and ``_logits_and_grad(X)`` on (n, d) arrays, ``dim``
        and ``predict(X)`` (e.g. :class:`wflow.adversarial.MLP`); k-class models also need
        ``n_classes`` and ``_value_and_input_grad``.
    y : array of shape (n,), scalar, or None
        Labels in {0, 1} (binary) or {0, …, k−1}: one per data point, or one for all.
        ``None`` uses the label the model predicts at ``x`` (required then), fixed at
        construction.
    x : array, shape (n, d), optional
        Clean inputs whose predicted labels are used when ``y`` is None.
    """

    thread_safe = True
    name = "loss"

    @property
    def releases_gil(self) -> bool:  # type: ignore[override]
        """Whether block workers run in parallel: the model's (an MLP's numba engine: yes; its
        numpy engine: about 30 short numpy calls per block, which serialize on the GIL)."""
        return bool(getattr(self.model, "releases_gil", True))
    multiclass = False  # True for the k-class losses

    def __init__(self, model, y=None, *, x=None, scale: float = 1.0):
        if not (callable(getattr(model, "_logits_and_grad", None)) and hasattr(model, "dim")):
            raise TypeError(f"model must be a wflow MLP-like classifier, got {type(model).__name__}")
        k = int(getattr(model, "n_classes", 2))
        if self.multiclass == bool(getattr(model, "binary", True)):
            kind = "k-class (k output logits)" if self.multiclass else "binary (one output logit)"
            raise ValueError(f"{type(self).__name__} needs a {kind} model, got {model!r} "
                             "(make_loss picks the right loss)")
        self.model, self.dim, self.n_classes = model, int(model.dim), k
        self.dtype = np.dtype(getattr(model, "dtype", np.float64))
        if y is None:
            if x is None:
                raise ValueError("y is None: pass labels y, or clean inputs x to use the predicted labels")
            y = model.predict(x)
        self._y = self._labels(y)
        self.scale = float(scale)
        # ReLU: kinks on {pre-activation = 0}; slopes are then metric slopes (wflow.slope)
        self.smooth = getattr(model, "activation", None) != "relu"

    def _labels(self, y) -> np.ndarray:
        k = self.n_classes
        if np.ndim(y) == 0:
            a = check_labels(y, 1, name="y", n_classes=k)[0].reshape(())
        else:
            a = check_labels(y, int(np.shape(y)[0]), name="y", n_classes=k)
        return a.astype(np.int64) if self.multiclass else a.astype(self.dtype)

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

    def value_and_predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(value(X), predict(X))`` from one forward pass (an attack's result needs both)."""
        X = self._input(self._prepare(X)[0])
        z = self.model._logits(X)
        return self.scale * self._loss(z, self._rows_labels(X)), self.model.labels_from_logits(z)

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

    def _loss_and_dloss(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._loss(z, y), self._dloss(z, y)

    def _input(self, X: np.ndarray) -> np.ndarray:
        dt = self.dtype
        return X if X.dtype == dt else X.astype(dt)

    def _value(self, X):
        y = self._rows_labels(X)
        return self.scale * self._loss(self.model._logits(self._input(X)), y)

    def _grad(self, X):
        return self._value_and_grad(X)[1]

    def _value_and_grad(self, X):
        y = self._rows_labels(X)
        X = self._input(X)
        if self.multiclass:
            v, g = self.model._value_and_input_grad(X, np.broadcast_to(y, (len(X),)), self._loss_and_dloss)
            g *= self.scale
            return self.scale * v, g
        z, g = self.model._logits_and_grad(X)
        dz = self._dloss(z, y)
        dz *= self.scale
        _scale_rows(g, dz)
        return self.scale * self._loss(z, y), g

    def _grad_into(self, X, out):
        y = self._rows_labels(X)
        X = self._input(X)
        if out.dtype != self.dtype:  # a caller in another precision: compute, then cast
            out[...] = self._value_and_grad(X)[1]
            return out
        if self.multiclass:
            self.model._value_and_input_grad(X, y if y.ndim else np.broadcast_to(y, (len(X),)),
                                             self._loss_and_dloss, out)
            out *= self.scale
            return out
        z = self.model._logits_and_grad(X, out)[0]
        dz = self._dloss(z, y)
        dz *= self.scale
        _scale_rows(out, dz)
        return out


def _scale_rows(G: np.ndarray, c: np.ndarray) -> None:
    """G[i] *= c[i] in place; for few columns one strided pass per column (a (n, d) × (n, 1)
    broadcast has an inner loop of length d: 3.5× slower for d = 2)."""
    if G.shape[1] <= 8:
        for j in range(G.shape[1]):
            G[:, j] *= c
    else:
        G *= c[:, None]


class SquaredErrorLoss(LossPotential):
    """ℓ(x) = (σ(z(x)) − y)², ∂ℓ/∂z = 2 (σ − y) σ (1 − σ). Values in [0, 1]."""

    name = "mse"

    @staticmethod
    def _loss(z, y):
        return (sigmoid(z) - y) ** 2

    @staticmethod
    def _dloss(z, y):
        p = sigmoid(z)
        g = p - y
        g *= 2.0
        g *= p
        np.subtract(1.0, p, out=p)
        g *= p  # 2 (p − y) p (1 − p), in place
        return g


class CrossEntropyLoss(LossPotential):
    """ℓ(x) = softplus(z) − y z = −y log σ(z) − (1 − y) log(1 − σ(z)), ∂ℓ/∂z = σ(z) − y.

    Evaluated as softplus(±z) (− for y = 1): equal for labels in {0, 1} and free of the
    cancellation of softplus(z) − z, so a loss of 1e-18 keeps its relative accuracy.
    """

    name = "ce"

    @staticmethod
    def _loss(z, y):
        return np.logaddexp(0.0, np.where(y == 1, -z, z))

    @staticmethod
    def _dloss(z, y):
        return sigmoid(z) - y


def _onehot_rows(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64)
    return np.arange(len(z)), (y if y.shape == (len(z),) else np.broadcast_to(y, (len(z),)))


class SoftmaxCrossEntropyLoss(LossPotential):
    """k classes: ℓ(x) = log Σ_j e^{z_j(x)} − z_y(x) (stable log-sum-exp), ∂ℓ/∂z = softmax(z) − e_y."""

    name = "ce"
    multiclass = True

    @staticmethod
    def _loss(z, y):
        rows, y = _onehot_rows(z, y)
        return -log_softmax(z)[rows, y]

    @staticmethod
    def _loss_and_dloss(z, y):
        rows, y = _onehot_rows(z, y)
        ls = log_softmax(z)
        v = -ls[rows, y]
        dz = np.exp(ls, out=ls)
        dz[rows, y] -= 1.0
        return v, dz

    @classmethod
    def _dloss(cls, z, y):
        return cls._loss_and_dloss(z, y)[1]


class SoftmaxSquaredErrorLoss(LossPotential):
    """k classes: ℓ(x) = ‖softmax(z(x)) − e_y‖², ∂ℓ/∂z = p ⊙ (r − ⟨p, r⟩), r = 2 (p − e_y)."""

    name = "mse"
    multiclass = True

    @staticmethod
    def _loss_and_dloss(z, y):
        rows, y = _onehot_rows(z, y)
        p = np.exp(log_softmax(z))
        r = p.copy()
        r[rows, y] -= 1.0
        v = np.einsum("ij,ij->i", r, r)
        r *= 2.0
        dz = p * (r - np.einsum("ij,ij->i", p, r)[:, None])
        return v, dz

    @classmethod
    def _loss(cls, z, y):
        return cls._loss_and_dloss(z, y)[0]

    @classmethod
    def _dloss(cls, z, y):
        return cls._loss_and_dloss(z, y)[1]


#: binary losses (one logit) and k-class losses, by name
LOSSES = {"mse": SquaredErrorLoss, "ce": CrossEntropyLoss}
MULTICLASS_LOSSES = {"mse": SoftmaxSquaredErrorLoss, "ce": SoftmaxCrossEntropyLoss}


def loss_class(model, loss: str) -> type:
    """The loss class named ``loss`` ∈ {"mse", "ce"} for ``model`` (binary or k-class)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    return LOSSES[loss] if getattr(model, "binary", True) else MULTICLASS_LOSSES[loss]


def make_loss(model, y=None, loss: str = "mse", *, x=None) -> LossPotential:
    """The loss potential ``loss`` ∈ {"mse", "ce"} of ``model`` with labels ``y``.

    For a binary model (one logit) the sigmoid losses, for a k-class model the softmax ones
    (``"ce"``: softmax cross-entropy). See :class:`LossPotential` for ``y``/``x``.
    """
    return loss_class(model, loss)(model, y, x=x)
