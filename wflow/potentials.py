"""Batched potentials V: R^d → R.

A potential evaluates many points at once: ``value(X)`` maps ``(n, d) -> (n,)`` and
``grad(X)`` maps ``(n, d) -> (n, d)``. A single point ``(d,)`` gives a scalar and a ``(d,)``
gradient. Potentials add (``V + W``), scale (``2.0 * V``) and negate (``-V``), so an attack
that *ascends* a loss ℓ is the flow of ``-loss``.

Subclasses implement ``_value(X)`` and ``_grad(X)`` on validated ``(n, d)`` float arrays
(and may override ``_value_and_grad`` when both share work). Shapes: ``docs/conventions.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from ._validation import as_points, integer, real
from .norms import Norm, as_norm

__all__ = [
    "Potential",
    "Quadratic",
    "Linear",
    "FromCallables",
    "DoubleWell",
    "GaussianMixture",
    "SumPotential",
    "ScaledPotential",
    "check_grad",
    "AbsSum",
    "quadratic_coefficients",
    "PotentialLike",
]


class PotentialLike(Protocol):
    """Anything with batched ``value`` (n, d) → (n,) and ``grad`` (n, d) → (n, d)."""

    def value(self, X: np.ndarray) -> np.ndarray: ...

    def grad(self, X: np.ndarray) -> np.ndarray: ...


class Potential:
    """Base class: a batched, differentiable potential V: R^d → R.

    Attributes
    ----------
    dim : int or None
        The dimension d the potential is defined on (None: any d).
    """

    dim: int | None = None

    # -- public, validated entry points ---------------------------------------------------
    def _prepare(self, X: ArrayLike, name: str = "X") -> tuple[np.ndarray, bool]:
        single = np.ndim(X) == 1
        A = np.asarray(X, dtype=float)
        if A.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape (d,) or (n, d), got {A.shape}")
        A = A[None, :] if single else A
        if self.dim is not None and A.shape[1] != self.dim:
            raise ValueError(
                f"{name} must have dimension d = {self.dim} for {type(self).__name__}, got {A.shape[1]}"
            )
        return A, single

    def value(self, X: ArrayLike) -> np.ndarray:
        """V at each row of X: ``(n, d) -> (n,)`` (``(d,) -> ()``)."""
        A, single = self._prepare(X)
        v = np.asarray(self._value(A), dtype=float)
        return v[0] if single else v

    def grad(self, X: ArrayLike) -> np.ndarray:
        """∇V at each row of X: ``(n, d) -> (n, d)`` (``(d,) -> (d,)``)."""
        A, single = self._prepare(X)
        g = np.asarray(self._grad(A), dtype=float)
        return g[0] if single else g

    def value_and_grad(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Both V and ∇V (shared work where a subclass can)."""
        A, single = self._prepare(X)
        v, g = self._value_and_grad(A)
        return (v[0], g[0]) if single else (np.asarray(v, float), np.asarray(g, float))

    def __call__(self, X: ArrayLike) -> np.ndarray:
        return self.value(X)

    #: False for potentials with kinks (their ``grad`` returns one subgradient)
    smooth: bool = True

    def slope(self, X: ArrayLike, norm: str | float | Norm = "linf") -> np.ndarray:
        """Metric (descending) slope |∂V|(x) = limsup_{y→x} (V(x) − V(y))⁺/‖x − y‖, shape (n,).

        C¹ V: ‖∇V(x)‖_*. Where the subdifferential is a box ∏[lo_i, hi_i] (C¹ parts plus
        :class:`AbsSum` terms with non-negative scales): min over it of the dual norm, attained
        coordinatewise at clip(0, lo, hi) for every ℓq norm. Other non-smooth potentials raise
        here; :func:`wflow.slope.metric_slope` estimates their slope by a small
        minimizing-movement step (``docs/verification.md`` §8).
        """
        A, single = self._prepare(X)
        box = self._subdifferential_box(A)
        if box is None:
            raise ValueError(f"{type(self).__name__} does not know its subdifferential; "
                             "use wflow.slope.metric_slope (estimates it)")
        s = as_norm(norm).dual(np.clip(0.0, box[0], box[1]))
        return s[0] if single else s

    def _subdifferential_box(self, X: np.ndarray):
        """(lo, hi) with ∂V(x) = ∏[lo_i, hi_i] (shape (n, d) each), or None when unknown."""
        if not self.smooth:
            return None
        g = np.asarray(self._grad(X), dtype=float)
        return g, g

    # -- to be implemented ----------------------------------------------------------------
    def _value(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _grad(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._value(X), self._grad(X)

    def _grad_into(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ∇V(X) into ``out`` (hot-path hook; override to avoid temporaries)."""
        out[...] = self._grad(X)
        return out

    def restrict(self, rows: slice) -> Potential:
        """The potential seen by the particles ``rows`` of a flow.

        Potentials that carry per-particle data (e.g. the label of each data point in an
        attack) return a copy restricted to those rows; the flow driver calls this for each
        block of particles. Plain potentials return ``self``.
        """
        return self

    #: True when value/grad may run concurrently in threads on disjoint blocks of points
    #: (pure numpy code); user callables and framework models are assumed not to be.
    thread_safe: bool = False
    #: True when value/grad spend their time in calls that release the GIL (large numpy
    #: calls, nogil kernels), so that block workers run in parallel; :func:`wflow.solve_flow`
    #: defaults to one worker otherwise (many short numpy calls serialize on the GIL).
    releases_gil: bool = True

    # -- algebra --------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, Potential):
            return SumPotential([self, other])
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            c = real(other, "the added constant")
            if self.dim:
                return SumPotential([self, Linear(np.zeros(self.dim), c=c)])
            return SumPotential([self, FromCallables(lambda X: np.full(len(X), c), lambda X: np.zeros_like(X))])
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # lets sum([V, W]) work
            return self
        return self.__add__(other)

    def __sub__(self, other):
        if isinstance(other, Potential):
            return SumPotential([self, ScaledPotential(other, -1.0)])
        return NotImplemented

    def __mul__(self, s):
        if isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, bool):
            return ScaledPotential(self, real(s, "scale"))
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self):
        return ScaledPotential(self, -1.0)


def _array(x, name: str, ndim: int) -> np.ndarray:
    """A finite float64 array with ``ndim`` dimensions; errors name the argument."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__} {x!r:.60}") from None
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, but it contains NaN or infinite values")
    return a


def _common_dim(parts) -> int | None:
    dims = {p.dim for p in parts if p.dim is not None}
    if len(dims) > 1:
        raise ValueError(f"potentials of different dimensions cannot be added: {sorted(dims)}")
    return dims.pop() if dims else None


class SumPotential(Potential):
    """V = Σ_k V_k."""

    def __init__(self, parts):
        flat = []
        for p in parts:
            if not isinstance(p, Potential):
                raise TypeError(f"parts must be Potential objects, got {type(p).__name__}")
            flat.extend(p.parts if isinstance(p, SumPotential) else [p])
        self.parts = flat
        self.dim = _common_dim(flat)
        self.thread_safe = all(p.thread_safe for p in flat)
        self.releases_gil = all(p.releases_gil for p in flat)
        self.smooth = all(p.smooth for p in flat)

    def restrict(self, rows: slice) -> SumPotential:
        return SumPotential([p.restrict(rows) for p in self.parts])

    def _value(self, X):
        return sum(p._value(X) for p in self.parts)

    def _grad(self, X):
        return sum(p._grad(X) for p in self.parts)

    def _subdifferential_box(self, X):
        # sum rule: exact for C¹ parts plus convex (box) parts
        boxes = [p._subdifferential_box(X) for p in self.parts]
        if any(b is None for b in boxes):
            return None
        return sum(b[0] for b in boxes), sum(b[1] for b in boxes)

    def __repr__(self):
        return " + ".join(repr(p) for p in self.parts)


class ScaledPotential(Potential):
    """V = s · W for a real s."""

    def __init__(self, base: Potential, scale: float):
        if not isinstance(base, Potential):
            raise TypeError(f"base must be a Potential, got {type(base).__name__}")
        if not np.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale!r}")
        self.base, self.scale, self.dim = base, float(scale), base.dim
        self.thread_safe = base.thread_safe
        self.releases_gil = base.releases_gil
        self.smooth = base.smooth

    def restrict(self, rows: slice) -> ScaledPotential:
        return ScaledPotential(self.base.restrict(rows), self.scale)

    def _value(self, X):
        return self.scale * self.base._value(X)

    def _grad(self, X):
        return self.scale * self.base._grad(X)

    def _value_and_grad(self, X):
        v, g = self.base._value_and_grad(X)
        return self.scale * v, self.scale * g

    def _subdifferential_box(self, X):
        box = self.base._subdifferential_box(X)
        if box is None:
            return None
        lo, hi = box
        if self.scale >= 0 or np.array_equal(lo, hi):
            a, b = self.scale * lo, self.scale * hi
            return np.minimum(a, b), np.maximum(a, b)
        return None  # −|x|: concave kinks, the subdifferential is not the flipped box

    def __repr__(self):
        return f"{self.scale:g} * {self.base!r}"


class Quadratic(Potential):
    """V(x) = ½ xᵀAx + bᵀx + c.

    Parameters
    ----------
    A : array, shape (d, d)
        Symmetrized internally (V only sees (A + Aᵀ)/2); ∇V(x) = A_sym x + b.
    b : array, shape (d,), optional
    c : float
    """

    thread_safe = True

    def __init__(self, A, b=None, c: float = 0.0):
        A = _array(A, "A", 2)
        if A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"A must be a square (d, d) matrix, got shape {A.shape}")
        d = A.shape[0]
        b = np.zeros(d) if b is None else _array(b, "b", 1)
        if b.shape != (d,):
            raise ValueError(f"b must be a finite vector of shape ({d},), got shape {b.shape}")
        c = real(c, "c")
        self.A = 0.5 * (A + A.T)
        self.b, self.c, self.dim = b, float(c), d
        self._has_b = bool(np.any(b != 0))
        diag = np.diag(self.A)
        self.separable = bool(np.all(self.A == np.diag(diag)))

    @classmethod
    def separable_from(cls, a: ArrayLike, b: ArrayLike | None = None, c: float = 0.0) -> Quadratic:
        """V(x) = ½ Σ a_i x_i² + bᵀx + c."""
        return cls(np.diag(np.asarray(a, dtype=float)), b, c)

    def _grad(self, X):
        return X @ self.A + self.b

    def _grad_into(self, X, out):
        np.matmul(X, self.A, out=out)
        if self._has_b:
            # adding a (d,) row to (n, d) broadcasts with an inner loop of length d (slow for
            # small d); a flat add against a tiled copy is a single contiguous pass
            flat = out.reshape(-1)
            flat += np.resize(self.b, flat.size)
        return out

    def _value(self, X):
        return 0.5 * np.einsum("ni,ni->n", X @ self.A, X) + X @ self.b + self.c

    def _value_and_grad(self, X):
        AX = X @ self.A
        return 0.5 * np.einsum("ni,ni->n", AX, X) + X @ self.b + self.c, AX + self.b

    def __repr__(self):
        return f"Quadratic(d={self.dim})"


class Linear(Potential):
    """V(x) = ⟨a, x⟩ + c (constant gradient a)."""

    thread_safe = True

    def __init__(self, a, c: float = 0.0):
        a = _array(a, "a", 1)
        if a.size == 0:
            raise ValueError(f"a must be a finite vector of shape (d,) with d >= 1, got shape {a.shape}")
        c = real(c, "c")
        self.a, self.c, self.dim = a, float(c), a.size

    def _value(self, X):
        return X @ self.a + self.c

    def _grad(self, X):
        return np.broadcast_to(self.a, X.shape).copy()

    def __repr__(self):
        return f"Linear(d={self.dim})"


class FromCallables(Potential):
    """A potential from user functions.

    Parameters
    ----------
    value : callable
        ``value(X) -> (n,)`` for X of shape (n, d) (batched).
    grad : callable, optional
        ``grad(X) -> (n, d)``. When omitted, ∇V is approximated by central differences,
        ∂_i V ≈ (V(x + h_i e_i) − V(x − h_i e_i)) / (2 h_i) with h_i = fd_step · max(1, |x_i|);
        the default ``fd_step = eps^{1/3} ≈ 6.06e-6`` balances truncation error O(h²) against
        round-off O(eps/h), giving about 10 correct digits for smooth V. This costs 2d value
        evaluations per gradient (a loop over dimensions, not over points).
    dim : int, optional
        The dimension, if the functions only accept one.
    fd_step : float, optional
    """

    def __init__(self, value: Callable, grad: Callable | None = None, *, dim: int | None = None,
                 fd_step: float | None = None):
        if not callable(value):
            raise TypeError(f"value must be callable, got {type(value).__name__}")
        if grad is not None and not callable(grad):
            raise TypeError(f"grad must be callable or None, got {type(grad).__name__}")
        self._f, self._g = value, grad
        self.dim = None if dim is None else integer(dim, "dim", low=1)
        self.fd_step = float(np.finfo(float).eps ** (1 / 3)) if fd_step is None else real(fd_step, "fd_step")
        if not self.fd_step > 0:
            raise ValueError(f"fd_step must be > 0, got {fd_step!r}")

    def _value(self, X):
        v = np.asarray(self._f(X), dtype=float).reshape(-1)
        if v.shape != (X.shape[0],):
            raise ValueError(f"value callable must return shape ({X.shape[0]},), got {v.shape}")
        return v

    def _grad(self, X):
        if self._g is not None:
            return np.asarray(self._g(X), dtype=float)
        G = np.empty_like(X)
        h = self.fd_step * np.maximum(1.0, np.abs(X))
        for i in range(X.shape[1]):
            Xp, Xm = X.copy(), X.copy()
            Xp[:, i] += h[:, i]
            Xm[:, i] -= h[:, i]
            G[:, i] = (self._value(Xp) - self._value(Xm)) / (Xp[:, i] - Xm[:, i])
        return G


class DoubleWell(Potential):
    """V(x) = a (x₁² − 1)² + ½ Σ_{i≥2} b x_i²: two minima at x = (±1, 0, …, 0)."""

    thread_safe = True

    def __init__(self, dim: int = 2, a: float = 1.0, b: float = 1.0):
        self.dim, self.a, self.b = integer(dim, "dim", low=1), real(a, "a"), real(b, "b")

    def _value(self, X):
        return self.a * (X[:, 0] ** 2 - 1.0) ** 2 + 0.5 * self.b * np.sum(X[:, 1:] ** 2, axis=1)

    def _grad(self, X):
        G = self.b * X.copy()
        G[:, 0] = 4.0 * self.a * X[:, 0] * (X[:, 0] ** 2 - 1.0)
        return G

    def __repr__(self):
        return f"DoubleWell(dim={self.dim}, a={self.a:g}, b={self.b:g})"


class GaussianMixture(Potential):
    """A landscape of Gaussian wells: V(x) = −Σ_k a_k exp(−‖x − c_k‖₂² / (2 σ_k²)).

    Parameters
    ----------
    centers : array, shape (m, d)
    amplitudes : array, shape (m,), optional
        a_k (default 1; negative values make bumps instead of wells).
    widths : array, shape (m,) or float
        σ_k > 0 (default 0.5).
    """

    thread_safe = True

    def __init__(self, centers, amplitudes=None, widths=0.5):
        C = _array(centers, "centers", 2)
        if C.shape[0] == 0 or C.shape[1] == 0:
            raise ValueError(f"centers must be a finite (m, d) array with m, d >= 1, got shape {C.shape}")
        m = C.shape[0]
        a = np.ones(m) if amplitudes is None else _array(amplitudes, "amplitudes", 1)
        if a.shape != (m,):
            raise ValueError(f"amplitudes must have shape ({m},) (one per center), got {a.shape}")
        s = _array(widths, "widths", np.ndim(widths))
        if s.ndim > 1 or (s.ndim == 1 and s.shape != (m,)):
            raise ValueError(f"widths must be a number or have shape ({m},) (one per center), got shape {s.shape}")
        s = np.broadcast_to(s, (m,)).copy()
        if np.any(~(s > 0)):
            raise ValueError(f"widths must be > 0, got minimum {s.min():g}")
        self.centers, self.amplitudes, self.widths, self.dim = C, a, s, C.shape[1]

    @classmethod
    def default(cls) -> "GaussianMixture":
        """The 2-D demo landscape: three wells of different depth and one bump."""
        return cls(
            [[-0.8, -0.5], [0.9, 0.4], [-0.2, 0.9], [0.2, -0.2]],
            amplitudes=[1.0, 0.8, 0.6, -0.5],
            widths=[0.45, 0.5, 0.35, 0.3],
        )

    def _kernel(self, X):
        diff = X[:, None, :] - self.centers[None, :, :]  # (n, m, d)
        e = self.amplitudes * np.exp(-np.einsum("nmd,nmd->nm", diff, diff) / (2 * self.widths**2))
        return diff, e

    def _value(self, X):
        return -self._kernel(X)[1].sum(axis=1)

    def _grad(self, X):
        return self._value_and_grad(X)[1]

    def _value_and_grad(self, X):
        diff, e = self._kernel(X)
        return -e.sum(axis=1), np.einsum("nm,nmd->nd", e / self.widths**2, diff)

    def __repr__(self):
        return f"GaussianMixture(m={len(self.widths)}, d={self.dim})"


def quadratic_coefficients(potential: Potential) -> tuple[np.ndarray | None, np.ndarray] | None:
    """(A, b) with V = ½xᵀAx + bᵀx + const, or None when V is not built from those forms.

    Recognizes :class:`Linear` (A is None), :class:`Quadratic`, and their sums and scalings:
    the potentials with closed-form flows and minimizing-movement steps.
    """
    if isinstance(potential, Linear):
        return None, potential.a
    if isinstance(potential, Quadratic):
        return potential.A, potential.b
    if isinstance(potential, ScaledPotential):
        q = quadratic_coefficients(potential.base)
        if q is None:
            return None
        A0, b0 = q
        return (None if A0 is None else potential.scale * A0), potential.scale * b0
    if isinstance(potential, SumPotential):
        A: np.ndarray | None = None
        b: np.ndarray | float = 0.0
        for part in potential.parts:
            q = quadratic_coefficients(part)
            if q is None:
                return None
            if q[0] is not None:
                A = q[0] if A is None else A + q[0]
            b = b + q[1]
        return A, np.asarray(b, dtype=float)
    return None


class AbsSum(Potential):
    """V(x) = Σ_i λ_i |x_i − c_i| (λ_i ≥ 0): an ℓ1-type potential with kinks on {x_i = c_i}.

    ``grad`` returns the subgradient λ sign(x − c) (sign(0) = 0, the minimal-norm one);
    :meth:`slope` is exact (its subdifferential is the box with [−λ_i, λ_i] on the kinks).
    Closed-form ℓ∞ flows (with a linear part, sliding on a kink): ``docs/verification.md`` §8.

    Parameters
    ----------
    weights : array, shape (d,)
        λ ≥ 0.
    center : array, shape (d,), optional
        c (default 0).
    """

    thread_safe = True
    smooth = False

    def __init__(self, weights: ArrayLike, center: ArrayLike | None = None):
        lam = _array(weights, "weights", 1)
        if lam.size == 0 or np.any(lam < 0):
            raise ValueError("weights must be a non-empty vector of non-negative numbers")
        c = np.zeros(lam.size) if center is None else _array(center, "center", 1)
        if c.shape != lam.shape:
            raise ValueError(f"center must have shape {lam.shape}, got {c.shape}")
        self.weights, self.center, self.dim = lam, c, lam.size

    def _value(self, X):
        return np.abs(X - self.center) @ self.weights

    def _grad(self, X):
        return self.weights * np.sign(X - self.center)

    def _subdifferential_box(self, X):
        s = np.sign(X - self.center)
        lo = np.where(s == 0, -1.0, s) * self.weights
        hi = np.where(s == 0, 1.0, s) * self.weights
        return lo, hi

    def __repr__(self):
        return f"AbsSum(d={self.dim})"


def check_grad(potential: Potential, X: ArrayLike, *, step: float | None = None) -> float:
    """Largest relative error of ``potential.grad`` against central finite differences.

    Returns max_{n,i} |g_fd − g| / max(1, |g_fd|) over the rows of X, with the step rule of
    :class:`FromCallables`. Values around 1e-8 or below mean the gradient is right.
    """
    X = as_points(X, "X")
    fd = FromCallables(potential.value, fd_step=step)._grad(X)
    g = potential.grad(X)
    return float(np.max(np.abs(fd - g) / np.maximum(1.0, np.abs(fd))))
