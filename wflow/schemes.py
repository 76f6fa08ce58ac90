"""Time-stepping schemes for ∞-curves of maximal slope, and the registry that names them.

A scheme advances a block of points by one step of size τ (the protocol is in
:mod:`wflow.steps`: ``scheme.step(potential, X, tau, ball, out, rng) -> StepInfo | None``).
Schemes are looked up by name with :func:`make_scheme`: ``"euler"`` is the explicit Euler /
normalized-gradient-descent scheme below, ``"minmove"`` the minimizing-movement scheme of
:mod:`wflow.minmove`. Mathematics: ``docs/theory.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._fp import cap_steps
from .minmove import MinMoveScheme, project_intersection
from .norms import SELECTIONS, Norm, _steepest_p, as_norm
from .potentials import Potential
from .steps import Ball, StepInfo

__all__ = ["Ball", "EulerScheme", "MinMoveScheme", "make_scheme", "register_scheme", "SCHEMES"]


class EulerScheme:
    """Explicit Euler for u' ∈ ∂‖·‖_*(−∇V(u)): x_{k+1} = P_ball(x_k + τ v_k).

    v_k = ``steepest(−∇V(x_k), norm, selection)``; for ℓ∞ this is sign gradient descent
    x_{k+1} = x_k − τ sign(∇V(x_k)) (IFGSM on V = −loss, clipped to the budget box), for ℓ2
    normalized gradient descent. With a budget the iterate is projected onto B_ε(centre)
    after every step (exactly what IFGSM does).

    Parameters
    ----------
    norm : norm specification
        The flow's norm (name, order p ≥ 1 or :class:`~wflow.norms.Norm`).
    selection : {"canonical", "random"}
        Selection of the direction where the subdifferential is set-valued
        (see :mod:`wflow.norms`).
    """

    name = "euler"
    thread_safe = True  # no state: blocks of particles may be stepped concurrently

    def __init__(self, norm: str | float | Norm = "linf", selection: str = "canonical", **options: Any):
        if options:
            raise TypeError(f"the euler scheme takes no options, got {sorted(options)}")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.norm, self.selection = as_norm(norm), selection

    def __repr__(self) -> str:
        return f"EulerScheme(norm={self.norm.name!r}, selection={self.selection!r})"

    def step(self, potential: Potential, X: np.ndarray, tau: float, ball: Ball | None,
             out: np.ndarray, rng: np.random.Generator | None = None) -> StepInfo | None:
        """Write x_{k+1} for every row of X into ``out`` (Euler keeps no step record: None)."""
        p = self.norm.p
        if p == np.inf and self.selection == "canonical":
            return self._sign_step(potential, X, tau, ball, out)
        g = potential._grad(X)
        if not np.all(np.isfinite(g)):
            raise ValueError("potential.grad returned non-finite values during the flow")
        g = _steepest_p(-g, p, self.selection, rng)
        g *= tau
        np.add(X, g, out=out)
        if ball is not None:
            if p in (2.0, np.inf):
                # the Euclidean projection onto an ℓ2 ball or a box is 1-Lipschitz in that norm
                # and fixes x_k, so the projected step stays ≤ τ (ℓ∞: exactly IFGSM's clipping)
                ball.project(out, out=out)
            else:
                # ℓ1/ℓp: the Euclidean projection onto the budget ball can lengthen the step in
                # the flow's norm (up to 1.7τ); project onto B_τ(x_k) ∩ B_ε(c) instead
                out[...] = project_intersection(out, X, tau, ball.center, ball.budget, self.norm)
        return None

    @staticmethod
    def _sign_step(potential, X, tau, ball, out):
        """out = P(X − τ sign(∇V(X))) with no temporaries of size (n, d) besides two masks.

        The step is X − copysign(τ, g) (branch-free, unlike np.sign; BENCHMARKS.md, flow
        solver), with the rare exact zeros of g (sign(0) = 0) patched afterwards. NaN gradients
        are reported at once.
        """
        g = potential._grad_into(X, out)
        mask = np.isnan(g)
        if mask.any():  # (±inf still has a sign: the ℓ∞ step stays well defined)
            raise ValueError("potential.grad returned non-finite values (NaN) during the flow")
        np.equal(g, 0.0, out=mask)
        has_zero = mask.any()
        np.copysign(tau, g, out=g)
        if has_zero:
            g[mask] = 0.0
        np.subtract(X, g, out=g)
        cap_steps(X, out, tau)  # ‖x_{k+1} − x_k‖∞ ≤ τ exactly, not just up to round-off
        if ball is not None:
            ball.project(out, out=out)
        return None


SchemeFactory = Callable[..., Any]

#: name → factory(norm=..., selection=..., **options); extend with :func:`register_scheme`
SCHEMES: dict[str, SchemeFactory] = {"euler": EulerScheme, "minmove": MinMoveScheme}


def register_scheme(name: str, factory: SchemeFactory) -> None:
    """Make ``solve_flow(..., scheme=name)`` use ``factory(norm=..., selection=..., **options)``."""
    if not isinstance(name, str) or not callable(factory):
        raise TypeError("register_scheme needs a name (str) and a callable factory")
    SCHEMES[name] = factory


def make_scheme(name: str, norm: str | float | Norm = "linf", selection: str = "canonical",
                **options: Any) -> Any:
    """Instantiate the scheme registered under ``name`` for the given norm.

    Raises
    ------
    ValueError
        For an unknown scheme name.
    """
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {name!r}")
    return SCHEMES[name](norm=as_norm(norm), selection=selection, **options)
