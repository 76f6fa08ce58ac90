"""What one step of a time-stepping scheme sees and returns.

A scheme advances a block of points by one step of size τ:

``scheme.step(potential, X, tau, ball, out, rng) -> StepInfo | None``

writes x_{k+1} for every row of ``X`` (shape (n, d)) into ``out`` and may return a
:class:`StepInfo` of per-particle arrays (shape (n,)); the driver (:func:`wflow.solve_flow`)
stacks them into ``FlowResult.step_info`` (shape (K, n)). ``ball`` is the admissible
:class:`Ball` B_budget(center) (rows aligned with ``X``) or None. See ``docs/theory.md``
(schemes, budgets) and ``docs/conventions.md`` (names, shapes).

This module sits below both schemes (:mod:`wflow.schemes`, :mod:`wflow.minmove`), so neither
imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ._fp import inner_box
from .norms import Norm, _project_ball_p, as_norm

__all__ = ["Ball", "StepInfo", "StepResult", "BALL_ATOL"]

#: starting points must lie in the budget ball up to this absolute distance (per coordinate of
#: the projection): what is left of a point on the sphere after float round-off
BALL_ATOL = 1e-12


@dataclass(frozen=True, eq=False)
class Ball:
    """The admissible ball B_budget(center) of a flow with a budget.

    Attributes
    ----------
    center : ndarray, shape (d,) or (n, d)
        One centre for all particles or one per particle.
    budget : float
        Radius ε ≥ 0.
    norm : Norm
        The flow's norm (a name or an order is coerced with :func:`wflow.norms.as_norm`).
    """

    center: np.ndarray
    budget: float
    norm: Norm
    _lo: np.ndarray | None = field(default=None, init=False, repr=False)
    _hi: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", as_norm(self.norm))

    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        """ℓ∞: box bounds inside the exact ball (see wflow._fp), computed at the first use —
        by each block's worker for the blocks of :meth:`rows` — then kept."""
        lo, hi = self._lo, self._hi
        if lo is None or hi is None:
            lo, hi = inner_box(self.center, self.budget)
            object.__setattr__(self, "_lo", lo)
            object.__setattr__(self, "_hi", hi)
        return lo, hi

    def rows(self, sl: slice) -> Ball:
        """The ball restricted to the particles ``sl`` (a per-particle centre is sliced, and so
        are box bounds already computed)."""
        if self.center.ndim == 1:
            return self
        b = Ball(self.center[sl], self.budget, self.norm)
        if self._lo is not None and self._hi is not None:
            object.__setattr__(b, "_lo", self._lo[sl])
            object.__setattr__(b, "_hi", self._hi[sl])
        return b

    def project(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Euclidean projection of the rows of X onto the ball (in place into ``out``)."""
        if self.norm.p == np.inf:
            lo, hi = self._box()
            return np.clip(X, lo, hi, out=out)
        Z = _project_ball_p(X, self.center, self.budget, self.norm.p)
        if out is None:
            return Z
        out[...] = Z
        return out


@dataclass(frozen=True)
class StepInfo:
    """Per-particle record of minimizing-movement steps.

    Every array has shape (n,) for one step and (K, n) in ``FlowResult.step_info``.

    Attributes
    ----------
    energy : ndarray of float
        V(x_{k+1}).
    evals : ndarray of int
        Potential evaluations of the inner solver (a value and a gradient count one each).
    active : ndarray of bool
        ‖x_{k+1} − x_k‖ = τ (to ``ACTIVE_RTOL`` relative).
    fallback : ndarray of bool
        The solver's candidate was worse than x_k, so x_{k+1} = x_k.
    budget_active : ndarray of bool or None
        ‖x_{k+1} − center‖ = budget (to ``ACTIVE_RTOL`` relative); None without a budget.
    """

    energy: np.ndarray
    evals: np.ndarray
    active: np.ndarray
    fallback: np.ndarray
    budget_active: np.ndarray | None = None

    @classmethod
    def stack(cls, blocks: list[list[StepInfo]]) -> StepInfo:
        """Stack ``blocks[b][k]`` (block b of particles, step k) into arrays of shape (K, n)."""
        out: dict[str, np.ndarray | None] = {}
        K = len(blocks[0])
        for f in fields(cls):
            if getattr(blocks[0][0], f.name) is None:
                out[f.name] = None
                continue
            out[f.name] = np.stack(
                [np.concatenate([getattr(blk[k], f.name) for blk in blocks]) for k in range(K)]
            )
        return cls(**out)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        """JSON-safe dict of nested lists (None for an absent field)."""
        return {f.name: (None if getattr(self, f.name) is None else getattr(self, f.name).tolist())
                for f in fields(self)}


@dataclass(frozen=True)
class StepResult:
    """The result of :func:`wflow.minmove.minmove_step`.

    Attributes
    ----------
    x : ndarray, shape (n, d)
        x_{k+1} for every row of the input.
    info : StepInfo
        Per-particle record of the step (arrays of shape (n,)).
    """

    x: np.ndarray
    info: StepInfo

    def to_dict(self) -> dict:
        """JSON-safe dict: ``x`` as nested lists and the step record."""
        return {"x": self.x.tolist(), "info": self.info.to_dict()}
