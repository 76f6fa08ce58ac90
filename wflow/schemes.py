"""Time-stepping schemes for ∞-curves of maximal slope.

A scheme advances a batch of points by one step of size τ:

``scheme.step(potential, X, tau, ball, out, rng) -> dict | None``

writes x_{k+1} for every row of ``X`` (shape (n, d)) into ``out`` and may return a dict of
per-particle arrays of shape (n,) describing the step (the driver in :mod:`wflow.flow`
stacks them into ``FlowResult.step_info``). ``ball`` is a :class:`Ball` (the budget
B_ε(centre), rows aligned with ``X``) or None.

Schemes are looked up by name with :func:`make_scheme`; ``"euler"`` is the explicit Euler /
normalized-gradient-descent scheme below, ``"minmove"`` the minimizing-movement scheme
(:mod:`wflow.minmove`, imported on first use).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from .norms import SELECTIONS, parse_norm, project_ball, steepest

__all__ = ["Ball", "EulerScheme", "make_scheme", "register_scheme", "SCHEMES"]


@dataclass(frozen=True)
class Ball:
    """The closed ℓp ball B_radius(center); ``center`` is (d,) or (n, d) (one per particle)."""

    center: np.ndarray
    radius: float
    p: float

    def __post_init__(self):
        if self.p == np.inf:  # box bounds, computed once per block
            object.__setattr__(self, "_lo", self.center - self.radius)
            object.__setattr__(self, "_hi", self.center + self.radius)

    def rows(self, sl: slice) -> "Ball":
        """The ball restricted to the particles ``sl`` (a per-particle centre is sliced)."""
        c = self.center if self.center.ndim == 1 else self.center[sl]
        return Ball(c, self.radius, self.p)

    def project(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Euclidean projection of the rows of X onto the ball (in place into ``out``)."""
        if self.p == np.inf:
            return np.clip(X, self._lo, self._hi, out=out)
        Z = project_ball(X, self.center, self.radius, self.p)
        if out is None:
            return Z
        out[...] = Z
        return out


class EulerScheme:
    """Explicit Euler for u' ∈ ∂‖·‖_*(−∇V(u)): x_{k+1} = P_ball(x_k + τ v_k).

    v_k = ``steepest(−∇V(x_k), p, selection)``; for ℓ∞ this is sign gradient descent
    x_{k+1} = x_k − τ sign(∇V(x_k)) (IFGSM on V = −loss, clipped to the budget box), for ℓ2
    normalized gradient descent. With a budget the iterate is projected onto B_ε(centre)
    after every step (exactly what IFGSM does).

    Parameters
    ----------
    p : float
        Exponent of the flow's norm, in [1, ∞].
    selection : {"canonical", "random"}
        Selection of the direction where the subdifferential is set-valued
        (see :mod:`wflow.norms`).
    """

    name = "euler"
    thread_safe = True  # no state: blocks of particles may be stepped concurrently

    def __init__(self, p: float = np.inf, selection: str = "canonical", **options):
        if options:
            raise TypeError(f"the euler scheme takes no options, got {sorted(options)}")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.p, self.selection = parse_norm(p), selection

    def step(self, potential, X, tau, ball, out, rng=None):
        if self.p == np.inf and self.selection == "canonical":
            return self._sign_step(potential, X, tau, ball, out)
        g = potential._grad(X)
        if not np.all(np.isfinite(g)):
            raise ValueError("potential.grad returned non-finite values during the flow")
        g = steepest(-g, self.p, selection=self.selection, rng=rng)
        g *= tau
        np.add(X, g, out=out)
        if ball is not None:
            if self.p in (2.0, np.inf):
                # the Euclidean projection onto an ℓ2 ball or a box is 1-Lipschitz in that norm
                # and fixes x_k, so the projected step stays ≤ τ (ℓ∞: exactly IFGSM's clipping)
                ball.project(out, out=out)
            else:
                # ℓ1/ℓp: the Euclidean projection onto the budget ball can lengthen the step in
                # the flow's norm (up to 1.7τ); project onto B_τ(x_k) ∩ B_ε(c) instead
                from .minmove import project_intersection

                out[...] = project_intersection(out, X, tau, ball.center, ball.radius, self.p)
        return None


    @staticmethod
    def _sign_step(potential, X, tau, ball, out):
        """out = P(X − τ sign(∇V(X))) with no temporaries of size (n, d) besides two masks.

        np.sign branches on every element (≈5 ns each on unpredictable signs); copysign is
        branch-free, so the step is X − copysign(τ, g), with the rare exact zeros of g
        (sign(0) = 0) patched afterwards. NaN gradients are reported at once.
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
        if ball is not None:
            ball.project(out, out=out)
        return None


SCHEMES: dict[str, object] = {"euler": EulerScheme, "minmove": "wflow.minmove:MinMoveScheme"}


def register_scheme(name: str, factory) -> None:
    """Make ``solve_flow(..., scheme=name)`` use ``factory(p=..., selection=..., **options)``."""
    SCHEMES[name] = factory


def make_scheme(name: str, p: float, selection: str = "canonical", **options):
    """Instantiate the scheme registered under ``name``.

    Raises
    ------
    ValueError
        For an unknown scheme name.
    """
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {name!r}")
    factory = SCHEMES[name]
    if isinstance(factory, str):
        module, attr = factory.split(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            raise ValueError(f"scheme {name!r} is not available in this version of wflow") from None
        SCHEMES[name] = factory
    return factory(p=p, selection=selection, **options)
