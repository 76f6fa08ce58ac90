"""Deliberately wrong curve measures (the mutation catalogue of ``docs/verification.md`` §6).

Each function returns a :class:`~wflow.superposition.CurveMeasure` that is NOT a representing
measure of an ∞-curve of maximal slope of ``potential`` (or does not represent the given
snapshots); the checks of :mod:`wflow.verify` must reject each of them with their default
tolerances while accepting the correct flow.
"""

from __future__ import annotations

import numpy as np

from .._validation import rng_from
from ..flow import solve_flow, time_grid
from ..measures import ParticleMeasure
from ..norms import norm as _norm
from ..norms import parse_norm, steepest
from ..superposition import CurveMeasure, superpose

__all__ = [
    "MUTANTS",
    "euler_curves",
    "ascent",
    "slow_descent",
    "speed_two",
    "frozen_coordinate",
    "not_moving",
    "permuted_weights",
    "shifted_snapshot",
    "wrong_norm",
    "random_walk",
    "sign_error",
    "stops_halfway",
]


def euler_curves(potential, x0, T, tau, norm="linf", *, velocity=None, weights=None) -> CurveMeasure:
    """Explicit Euler with a user velocity rule: x_{k+1} = x_k + τ velocity(g, k), g = ∇V(x_k).

    ``velocity(g, k) -> (n, d)``; the default is the steepest direction (the correct scheme).
    """
    p = parse_norm(norm, name="norm")
    X = np.array(x0, dtype=float)
    t = time_grid(T, tau)
    U = np.empty((X.shape[0], t.size, X.shape[1]))
    U[:, 0] = X
    for k in range(t.size - 1):
        g = np.asarray(potential.grad(X), dtype=float)
        v = steepest(-g, p) if velocity is None else velocity(g, k)
        X = X + (t[k + 1] - t[k]) * v
        U[:, k + 1] = X
    w = np.full(X.shape[0], 1.0 / X.shape[0]) if weights is None else weights
    return CurveMeasure(U, w, t, p)


def ascent(potential, x0, T, tau, norm="linf", **_):
    """The flow of −V (1-Lipschitz, climbs V)."""
    return superpose(solve_flow(-1.0 * potential, x0, T, tau, norm=norm))


def slow_descent(potential, x0, T, tau, norm="linf", **_):
    """ℓ∞ descent along −∇V/‖∇V‖∞ (speed 1 in ℓ∞, but not the steepest direction)."""
    def vel(g, k):
        m = np.max(np.abs(g), axis=1, keepdims=True)
        return -np.divide(g, m, out=np.zeros_like(g), where=m > 0)

    return euler_curves(potential, x0, T, tau, norm, velocity=vel)


def speed_two(potential, x0, T, tau, norm="linf", **_):
    """The correct curves replayed at double speed, t ↦ u(2t) on [0, T/2]."""
    eta = superpose(solve_flow(potential, x0, T, tau, norm=norm))
    return CurveMeasure(eta.curves, eta.weights, eta.times / 2.0, eta.norm)


def frozen_coordinate(potential, x0, T, tau, norm="linf", *, fraction=0.1, coordinate=-1, seed=0, **_):
    """The correct Euler scheme except that ``coordinate`` never moves on ``fraction`` of the particles."""
    n = np.shape(x0)[0]
    rows = rng_from(seed).choice(n, size=max(1, int(round(fraction * n))), replace=False)
    p = parse_norm(norm, name="norm")

    def vel(g, k):
        v = steepest(-g, p)
        v[rows, coordinate] = 0.0
        return v

    return euler_curves(potential, x0, T, tau, norm, velocity=vel)


def not_moving(potential, x0, T, tau, norm="linf", **_):
    """Every curve constant at its start."""
    eta = superpose(solve_flow(potential, x0, T, tau, norm=norm))
    U = np.repeat(eta.curves[:, :1], eta.times.size, axis=1)
    return CurveMeasure(U, eta.weights, eta.times, eta.norm)


def permuted_weights(potential, x0, T, tau, norm="linf", *, weights=None, seed=0, **_):
    """The correct curves with their weights permuted (a different curve of measures)."""
    eta = superpose(solve_flow(potential, ParticleMeasure(x0, weights), T, tau, norm=norm))
    w = eta.weights[rng_from(seed).permutation(eta.n_curves)]
    return CurveMeasure(eta.curves, w, eta.times, eta.norm)


def shifted_snapshot(potential, x0, T, tau, norm="linf", **_):
    """Curves labelled one snapshot early: u_c(t_k) ← u_c(t_{k+1}) (last value repeated)."""
    eta = superpose(solve_flow(potential, x0, T, tau, norm=norm))
    U = np.concatenate([eta.curves[:, 1:], eta.curves[:, -1:]], axis=1)
    return CurveMeasure(U, eta.weights, eta.times, eta.norm)


def wrong_norm(potential, x0, T, tau, norm="linf", **_):
    """The ℓ2 flow (checked as a flow in ``norm``, ℓ∞ by default)."""
    eta = superpose(solve_flow(potential, x0, T, tau, norm="l2"))
    return CurveMeasure(eta.curves, eta.weights, eta.times, norm)


def random_walk(potential, x0, T, tau, norm="linf", *, seed=0, **_):
    """Unit-speed steps in random sign directions (ℓ∞ unit vectors scaled into the norm's unit ball)."""
    rng = rng_from(seed)
    p = parse_norm(norm, name="norm")

    def vel(g, k):
        v = rng.choice([-1.0, 1.0], size=g.shape)
        return v / _norm(v, p)[:, None]

    return euler_curves(potential, x0, T, tau, norm, velocity=vel)


def sign_error(potential, x0, T, tau, norm="linf", *, coordinate=0, **_):
    """The steepest direction with the sign of one coordinate flipped."""
    p = parse_norm(norm, name="norm")

    def vel(g, k):
        v = steepest(-g, p)
        v[:, coordinate] *= -1.0
        return v

    return euler_curves(potential, x0, T, tau, norm, velocity=vel)


def stops_halfway(potential, x0, T, tau, norm="linf", **_):
    """The correct flow until T/2, then every curve stands still."""
    eta = superpose(solve_flow(potential, x0, T, tau, norm=norm))
    k = int(np.searchsorted(eta.times, eta.T / 2.0))
    U = eta.curves.copy()
    U[:, k + 1:] = U[:, k:k + 1]
    return CurveMeasure(U, eta.weights, eta.times, eta.norm)


#: name → (mutant factory, whether it is caught only against the true snapshots)
MUTANTS = {
    "ascent": (ascent, False),
    "slow_descent": (slow_descent, False),
    "speed_two": (speed_two, False),
    "frozen_coordinate_10pct": (frozen_coordinate, False),
    "not_moving": (not_moving, False),
    "permuted_weights": (permuted_weights, True),
    "shifted_by_one_snapshot": (shifted_snapshot, True),
    "l2_flow_checked_as_linf": (wrong_norm, False),
    "random_walk": (random_walk, False),
    "sign_error_one_coordinate": (sign_error, False),
    "stops_at_half_time": (stops_halfway, False),
}
