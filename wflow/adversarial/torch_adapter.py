"""PyTorch adapter: any ``nn.Module`` and per-sample loss as a wflow loss potential.

torch is imported on first use of this module only (``pip install torch`` or the ``torch``
extra); ``import wflow`` never imports it.

Example
-------
>>> import torch, wflow
>>> from wflow.adversarial import TorchPotential, ifgsm
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.GELU(), torch.nn.Linear(16, 1),
...                           torch.nn.Sigmoid()).double()
>>> loss = TorchPotential(net, loss="mse", labels=[0, 1])        # ℓ(x) per row
>>> x_adv = ifgsm(loss, [[0.0, 0.5], [1.0, -0.2]], None, eps=0.1, alpha=0.01, steps=10).x_adv
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..potentials import Potential

__all__ = ["TorchPotential", "mlp_to_torch", "require_torch"]

LOSS_NAMES = ("mse", "bce", "bce_logits", "ce")


def require_torch():
    """Import and return torch, with a clear error when it is not installed."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the torch adapter needs PyTorch: pip install 'wflow[torch]' (or pip install torch)"
        ) from exc
    return torch


class TorchPotential(Potential):
    """ℓ(x) = loss(module(x), y) for a PyTorch module, batched, with autograd input gradients.

    Values are computed under ``torch.no_grad()``; gradients by one backward pass of
    Σ_i ℓ(x_i) (rows are independent, so this gives every ∇ℓ(x_i) at once — keep the module in
    ``eval()`` mode so that batch-norm/dropout do not couple rows). Inputs are converted to the
    dtype of the module's parameters (use ``module.double()`` for float64 agreement with numpy).

    Parameters
    ----------
    module : torch.nn.Module (or any callable on tensors)
        Maps (n, d) inputs to outputs of shape (n,), (n, 1) (binary: a probability for "mse"
        and "bce", a logit for "bce_logits") or (n, C) (class logits for "ce").
    loss : {"mse", "bce", "bce_logits", "ce"} or callable
        A name, or ``loss(output, target) -> (n,)`` per-sample losses (e.g.
        ``torch.nn.BCELoss(reduction="none")``). Targets are float tensors for outputs of
        shape (n,)/(n, 1) and int64 tensors otherwise.
    labels : array (n,) or scalar, optional
        One label per data point (binary losses: in {0, 1}; "ce": in {0, …, C−1}). Set later
        with :meth:`with_labels` (attacks do this).
    dim : int, optional
        Input dimension d (checked on every call when given).
    device : str or torch.device, optional
        Where the module lives (default: CPU).
    """

    thread_safe = False

    def __init__(self, module, loss: str | Callable = "mse", labels=None, *, dim: int | None = None,
                 device=None):
        torch = require_torch()
        if not callable(module):
            raise TypeError(f"module must be a torch.nn.Module or callable, got {type(module).__name__}")
        if isinstance(loss, str):
            if loss not in LOSS_NAMES:
                raise ValueError(f"loss must be one of {LOSS_NAMES} or a callable, got {loss!r}")
        elif not callable(loss):
            raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
        self.module, self.loss = module, loss
        if dim is None and hasattr(module, "modules"):  # the first layer's input size, if it has one
            first = next((m for m in module.modules() if hasattr(m, "in_features")), None)
            dim = None if first is None else first.in_features
        self.dim = None if dim is None else int(dim)
        params = list(module.parameters()) if hasattr(module, "parameters") else []
        self.dtype = params[0].dtype if params else torch.get_default_dtype()
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._y = None if labels is None else self._check_labels(labels)

    # -- labels ---------------------------------------------------------------------------------
    def _check_labels(self, y) -> np.ndarray:
        if isinstance(y, (str, bytes)):
            raise TypeError(f"labels must be numeric, got {type(y).__name__}")
        a = np.asarray(y, dtype=float)
        if a.ndim > 1:
            raise ValueError(f"labels must be a scalar or have shape (n,), got {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(a < 0):
            raise ValueError("labels must be non-negative integers (class indices)")
        if self.loss in ("mse", "bce", "bce_logits") and np.any(a > 1):
            raise ValueError(f"labels must be 0 or 1 for loss={self.loss!r}, got {a[a > 1][0]:g}")
        return a

    @property
    def labels(self):
        return self._y

    def with_labels(self, y) -> "TorchPotential":
        """The same loss with labels ``y`` (one per data point, or one for all)."""
        new = self._copy()
        new._y = self._check_labels(y)
        return new

    def _copy(self) -> "TorchPotential":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def restrict(self, rows: slice) -> "TorchPotential":
        """Per-point labels sliced to the particles ``rows`` (see :meth:`Potential.restrict`)."""
        if self._y is None or self._y.ndim == 0:
            return self
        new = self._copy()
        new._y = self._y[rows]
        return new

    # -- evaluation -----------------------------------------------------------------------------
    def _tensor(self, X: np.ndarray):
        torch = require_torch()
        if self.dim is not None and X.shape[1] != self.dim:
            raise ValueError(f"X must have dimension d = {self.dim}, got shape {X.shape}")
        return torch.as_tensor(np.ascontiguousarray(X), dtype=self.dtype, device=self.device)

    def _outputs(self, x):
        try:
            out = self.module(x)
        except RuntimeError as exc:
            raise ValueError(f"the module cannot be evaluated on inputs of shape {tuple(x.shape)}: {exc}") from None
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    def _per_sample(self, out, n: int):
        torch = require_torch()
        if self._y is None:
            raise ValueError("labels are not set: pass labels=... or use with_labels(y)")
        y = self._y
        if y.ndim == 1 and y.shape[0] != n:
            raise ValueError(f"X has {n} rows but the potential carries {y.shape[0]} labels (one per data "
                             "point); evaluate on all points or call restrict(rows) first")
        y = np.array(np.broadcast_to(y, (n,)))
        binary = out.ndim == 1
        t = torch.as_tensor(y, dtype=out.dtype if binary else torch.int64, device=out.device)
        F = torch.nn.functional
        if callable(self.loss):
            val = self.loss(out, t)
        elif self.loss == "mse":
            val = (out - t) ** 2
        elif self.loss == "bce":
            val = F.binary_cross_entropy(out, t, reduction="none")
        elif self.loss == "bce_logits":
            val = F.binary_cross_entropy_with_logits(out, t, reduction="none")
        else:
            if binary:
                raise ValueError("loss='ce' needs class logits of shape (n, C)")
            val = F.cross_entropy(out, t, reduction="none")
        if val.ndim == 2 and val.shape[1] == 1:
            val = val[:, 0]
        if tuple(val.shape) != (n,):
            raise ValueError(f"the loss must return one value per sample, shape ({n},), got {tuple(val.shape)} "
                             "(use reduction='none')")
        return val

    def _value(self, X):
        torch = require_torch()
        with torch.no_grad():
            x = self._tensor(X)
            return self._per_sample(self._outputs(x), len(X)).detach().cpu().numpy().astype(float)

    def _value_and_grad(self, X):
        torch = require_torch()
        x = self._tensor(X).requires_grad_(True)
        with torch.enable_grad():
            val = self._per_sample(self._outputs(x), len(X))
            (g,) = torch.autograd.grad(val.sum(), x)
        return val.detach().cpu().numpy().astype(float), g.detach().cpu().numpy().astype(float)

    def _grad(self, X):
        return self._value_and_grad(X)[1]

    def predict(self, X) -> np.ndarray:
        """Predicted labels: argmax over classes for (n, C) outputs; for binary outputs
        1{p > 1/2} ("mse", "bce", callables) or 1{logit > 0} ("bce_logits")."""
        torch = require_torch()
        A = np.atleast_2d(np.asarray(X, dtype=float))
        with torch.no_grad():
            out = self._outputs(self._tensor(A))
        if out.ndim == 2:
            return out.argmax(dim=1).cpu().numpy().astype(np.int64)
        thr = 0.0 if self.loss == "bce_logits" else 0.5
        return (out > thr).cpu().numpy().astype(np.int64)

    def __repr__(self):
        name = self.loss if isinstance(self.loss, str) else getattr(self.loss, "__name__", "callable")
        return f"TorchPotential({type(self.module).__name__}, loss={name})"


def mlp_to_torch(model, dtype=None, *, sigmoid: bool = True):
    """A ``torch.nn.Sequential`` computing the same function as a numpy :class:`MLP`.

    Linear layers (weights transposed to torch's (out, in) layout), ReLU or exact GELU
    (``approximate="none"``), and for a binary model a final Sigmoid: the output is
    p(x) = σ(z(x)), shape (n, 1) (the logit z(x) with ``sigmoid=False``, for
    ``loss="bce_logits"``). A k-class model gives its logits (n, k) (for ``loss="ce"``).
    ``dtype`` defaults to the model's (float64 or float32), so values agree with numpy to
    round-off.
    """
    torch = require_torch()
    if dtype is None:
        dtype = torch.float32 if np.dtype(getattr(model, "dtype", np.float64)) == np.float32 else torch.float64
    layers = []
    for i, (W, b) in enumerate(zip(model.weights, model.biases)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.as_tensor(b))
        layers.append(lin)
        if i < len(model.weights) - 1:
            layers.append(torch.nn.ReLU() if model.activation == "relu" else torch.nn.GELU(approximate="none"))
    if sigmoid and model.weights[-1].shape[1] == 1:
        layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers).to(dtype).eval()
