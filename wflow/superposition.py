"""Representing measures on curve space: η = Σ_c ω_c δ_{u_c} on C([t_0, T]; R^d).

The superposition principle characterizes a W∞-curve of maximal slope μ_t of the potential
energy 𝓔(μ) = ∫V dμ by a probability measure η on curves with (e_t)_#η = μ_t for all t that is
concentrated on solutions of u' ∈ ∂‖·‖_*(−∇V(u)). This module builds η in both directions:

- :func:`superpose` — from labelled particle trajectories (a :class:`~wflow.flow.FlowResult`):
  η = Σ_i w_i δ_{u_i};
- :func:`superpose_snapshots` — from unlabelled snapshots μ_{t_0}, …, μ_{t_K} (atoms may be
  shuffled, split or merged, sizes and weights may change) by gluing W∞-optimal couplings of
  consecutive snapshots into piecewise-linear curves.

Both return a :class:`CurveMeasure`: weighted curves sampled on a time grid and linear in between.
Mathematics: ``docs/theory.md`` (superposition); shapes: ``docs/conventions.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import cumulative_trapezoid

from ._validation import integer, real
from .flow import FlowResult
from .measures import ParticleMeasure, as_measure, probability_weights
from .norms import Norm, as_norm
from .potentials import PotentialLike
from .slope import metric_slope
from .transport import optimal_coupling
from .transport.result import fit_marginals

__all__ = ["CurveMeasure", "CurveInfo", "superpose", "superpose_snapshots", "as_times", "worst_increase", "SNAP_TOL",
           "COUPLING_MASS_TOL", "COUPLING_ROUNDOFF"]

#: fractions of an atom's mass closer than this are identified when gluing, so that round-off in
#: cumulative masses does not create spurious curves of mass ~1e-16 (moves ≤ 1e-13 of an atom's mass)
SNAP_TOL = 1e-13
#: a coupling whose marginals miss the snapshot weights by more than this (absolute) is an error
COUPLING_MASS_TOL = 1e-9
#: coupling entries of at most this mass (absolute, total mass 1) are solver round-off and dropped
#: (unless an entry is the largest of its row or column); the marginals are then re-fitted
COUPLING_ROUNDOFF = 1e-14


def as_times(times: ArrayLike, name: str = "times", *, size: int | None = None) -> np.ndarray:
    """A validated, strictly increasing, finite 1-D time grid (length ``size`` if given)."""
    try:
        t = np.array(times, dtype=float).reshape(-1) if np.ndim(times) == 1 else None
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D numeric array: {exc}") from None
    if t is None or t.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {np.shape(times)}")
    if size is not None and t.size != size:
        raise ValueError(f"{name} must have length {size}, got {t.size}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return t


def worst_increase(F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max_{j ≤ k} F_k − F_j along the last axis (≥ 0), with the maximizing (j, k).

    With F(t) = V(u(t)) + ∫_{t_0}^t ‖∇V(u)‖_*, this is the worst dissipation defect over all
    pairs of grid times, at the cost of one running minimum (``docs/theory.md`` §7).
    """
    run_min = np.minimum.accumulate(F, axis=-1)
    gain = F - run_min
    k = np.argmax(gain, axis=-1)
    best = np.take_along_axis(gain, k[..., None], axis=-1)[..., 0]
    # j: first index ≤ k where the running minimum is attained
    Fk_min = np.take_along_axis(run_min, k[..., None], axis=-1)
    j = np.argmax(F == Fk_min, axis=-1)
    return best, j, k


@dataclass(frozen=True)
class CurveInfo:
    """How a :class:`CurveMeasure` was built.

    Attributes
    ----------
    source : {"arrays", "flow", "snapshots"}
        Constructed from arrays, by :func:`superpose` or by :func:`superpose_snapshots`.
    gluing, tie_break : str or None
        The options of :func:`superpose_snapshots` (None otherwise).
    winf_steps : ndarray, shape (K,), or None
        W∞ value of each coupling of consecutive snapshots.
    n_curves_steps : ndarray of int, shape (K,), or None
        Number of curves after each gluing step.
    plan_entries : ndarray of int, shape (K,), or None
        Non-zero entries of each plan (after removing round-off).
    n_atoms : ndarray of int, shape (K+1,), or None
        Support size of every snapshot.
    """

    source: str = "arrays"
    gluing: str | None = None
    tie_break: str | None = None
    winf_steps: np.ndarray | None = None
    n_curves_steps: np.ndarray | None = None
    plan_entries: np.ndarray | None = None
    n_atoms: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (arrays as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out


class CurveMeasure:
    """η = Σ_c ω_c δ_{u_c}: weighted curves, sampled on a time grid, linear in between.

    ``curves`` is curve-major, (m, K+1, d): a curve is the unit of a measure on curve space
    (weights, Lipschitz constants, defects are per curve), while
    :class:`~wflow.flow.FlowResult.positions` is time-major, (K+1, n, d). :meth:`snapshot`
    and :meth:`at` give the (m, d) positions at a time, like ``FlowResult.at``
    (``docs/conventions.md``).

    Parameters
    ----------
    curves : array, shape (m, K+1, d)
        u_c(t_k) for every curve c and grid time t_k.
    weights : array, shape (m,)
        ω_c ≥ 0 with Σ ω_c = 1 (within ``WEIGHT_SUM_TOL = 1e-12`` unless ``normalize=True``).
    times : array, shape (K+1,)
        Strictly increasing grid t_0 < … < t_K.
    norm : {"linf", "l2", "l1"}, float p ≥ 1 or Norm
        The norm of X used by :meth:`lipschitz_constants` and (as dual) by the slope ‖∇V‖_*.
    normalize : bool
        Divide the weights by their sum instead of requiring it to be 1.
    info : CurveInfo, optional
        How the curves were built (default: ``CurveInfo()``, from arrays).

    Attributes
    ----------
    curves, weights, times : ndarray (read-only)
    norm : Norm
        The norm of X (``str(norm)`` is its name).
    info : CurveInfo
        Construction details (e.g. per-step coupling values of :func:`superpose_snapshots`).

    Notes
    -----
    Between grid times every curve is the straight segment, so for t ∈ [t_k, t_{k+1}] the
    marginal (e_t)_#η = Σ_c ω_c δ_{(1−λ)u_c(t_k) + λu_c(t_{k+1})}, λ = (t − t_k)/(t_{k+1} − t_k).
    """

    __slots__ = ("curves", "weights", "times", "norm", "info")

    def __init__(self, curves: ArrayLike, weights: ArrayLike, times: ArrayLike,
                 norm: str | float | Norm = "linf", *, normalize: bool = False,
                 info: CurveInfo | None = None):
        try:
            U = np.array(curves, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"curves must be a numeric array of shape (m, K+1, d): {exc}") from None
        if U.ndim != 3 or 0 in U.shape:
            raise ValueError(f"curves must be a non-empty array of shape (m, K+1, d), got shape {U.shape}")
        if not np.all(np.isfinite(U)):
            raise ValueError("curves contains NaN or infinite values")
        m, K1, _ = U.shape
        t = as_times(times, "times", size=K1)
        w = probability_weights(weights, m, normalize=normalize, owner="curves")
        self.norm = as_norm(norm)
        if info is not None and not isinstance(info, CurveInfo):
            raise TypeError(f"info must be a CurveInfo or None, got {type(info).__name__}")
        for a in (U, w, t):
            a.setflags(write=False)
        self.curves, self.weights, self.times = U, w, t
        self.info = CurveInfo() if info is None else info

    # -- shape facts ------------------------------------------------------------------------
    @property
    def n_curves(self) -> int:
        return self.curves.shape[0]

    @property
    def dim(self) -> int:
        return self.curves.shape[2]

    @property
    def T(self) -> float:
        return float(self.times[-1])

    def __len__(self) -> int:
        return self.n_curves

    def __repr__(self) -> str:
        return (f"CurveMeasure(n_curves={self.n_curves}, n_times={self.times.size}, d={self.dim}, "
                f"t=[{self.times[0]:g}, {self.T:g}], norm={self.norm.name!r})")

    # -- evaluation -------------------------------------------------------------------------
    def snapshot(self, k: int) -> np.ndarray:
        """Positions of all curves at the grid time t_k, shape (m, d) (like ``FlowResult.positions[k]``)."""
        k = integer(k, "k")
        K1 = self.times.size
        if not -K1 <= k < K1:
            raise ValueError(f"k must index one of the {K1} grid times, got {k}")
        return self.curves[:, k]

    def at(self, t: ArrayLike) -> np.ndarray:
        """Curve positions u_c(t), shape (m, d) for scalar t, (s, m, d) for t of shape (s,).

        Grid times return the stored samples exactly (no blending round-off).
        """
        ts = np.asarray(t, dtype=float)
        flat = np.atleast_1d(ts).reshape(-1)
        t0, t1 = self.times[0], self.times[-1]
        if not np.all(np.isfinite(flat)) or np.any(flat < t0) or np.any(flat > t1):
            raise ValueError(f"t must lie in [{t0:g}, {t1:g}], got {t!r}")
        K = self.times.size - 1
        if K == 0:
            out = np.repeat(self.curves[None, :, 0], flat.size, axis=0)
        else:
            k = np.clip(np.searchsorted(self.times, flat, side="right") - 1, 0, K - 1)
            lam = ((flat - self.times[k]) / (self.times[k + 1] - self.times[k]))[:, None, None]
            a = np.moveaxis(self.curves[:, k], 1, 0)
            b = np.moveaxis(self.curves[:, k + 1], 1, 0)
            out = (1.0 - lam) * a + lam * b
            on_left = flat == self.times[k]
            on_right = flat == self.times[k + 1]
            out[on_left] = a[on_left]
            out[on_right] = b[on_right]
        return out[0] if ts.ndim == 0 else out

    def marginal(self, t: float, *, merge: bool = False) -> ParticleMeasure:
        """(e_t)_#η = Σ_c ω_c δ_{u_c(t)} as a ParticleMeasure (one atom per curve).

        Parameters
        ----------
        t : float in [t_0, T]
        merge : bool
            Merge curves that sit at the same point at time t (exact equality) into one atom
            and drop zero-weight atoms; the measure is the same, with fewer atoms.
        """
        t = real(t, "t")
        X = self.at(t)
        if not merge:
            return ParticleMeasure(X, self.weights, normalize=True)
        U, inv = np.unique(X, axis=0, return_inverse=True)
        w = np.bincount(inv.reshape(-1), weights=self.weights, minlength=len(U))
        return ParticleMeasure(U, w, normalize=True, drop_zero=True)

    def restrict(self, t0: float, t1: float) -> "CurveMeasure":
        """η restricted to curves on [t0, t1]: the grid times inside plus t0 and t1.

        t_0 ≤ t0 ≤ t1 ≤ T; the restricted curves agree with the original ones on [t0, t1].
        """
        t0, t1 = real(t0, "t0"), real(t1, "t1")
        if not (self.times[0] <= t0 <= t1 <= self.times[-1]):
            raise ValueError(
                f"need {self.times[0]:g} <= t0 <= t1 <= {self.T:g}, got t0={t0:g}, t1={t1:g}"
            )
        inner = self.times[(self.times > t0) & (self.times < t1)]
        grid = np.unique(np.r_[t0, inner, t1])
        U = np.moveaxis(self.at(grid), 0, 1)
        return CurveMeasure(U, self.weights, grid, self.norm, info=self.info)

    # -- regularity -------------------------------------------------------------------------
    def velocities(self) -> np.ndarray:
        """Segment velocities (u_c(t_{k+1}) − u_c(t_k)) / (t_{k+1} − t_k), shape (m, K, d)."""
        return np.diff(self.curves, axis=1) / np.diff(self.times)[None, :, None]

    def segment_speeds(self, norm: str | float | Norm | None = None) -> np.ndarray:
        """‖velocity‖ on every segment, shape (m, K), in ``norm`` (default: the measure's norm)."""
        nrm = self.norm if norm is None else as_norm(norm)
        # norm of the difference divided by the step: one division, no scaled-difference round-off
        return nrm.norm(np.diff(self.curves, axis=1)) / np.diff(self.times)[None, :]

    def lipschitz_constants(self, norm: str | float | Norm | None = None) -> np.ndarray:
        """Lipschitz constant of every curve, shape (m,): max_k ‖u(t_{k+1}) − u(t_k)‖/(t_{k+1} − t_k).

        Exact for piecewise-linear curves (the steepest segment). 0 for a single grid time.
        """
        if self.times.size == 1:
            return np.zeros(self.n_curves)
        return self.segment_speeds(norm).max(axis=1)

    # -- energy dissipation -----------------------------------------------------------------
    def refined(self, substeps: int) -> tuple[np.ndarray, np.ndarray]:
        """(grid, curves) with every segment split into ``substeps`` equal parts, shapes (G,), (m, G, d).

        The curves are the same piecewise-linear curves, sampled on the finer grid (the
        quadrature grid of :meth:`dissipation_defect`).
        """
        substeps = integer(substeps, "substeps", low=1)
        if substeps == 1 or self.times.size == 1:
            return self.times, self.curves
        frac = np.arange(substeps) / substeps
        h = np.diff(self.times)
        grid = np.r_[(self.times[:-1, None] + frac[None, :] * h[:, None]).reshape(-1), self.times[-1]]
        a, b = self.curves[:, :-1], self.curves[:, 1:]
        lam = frac[None, None, :, None]
        U = ((1 - lam) * a[:, :, None] + lam * b[:, :, None]).reshape(self.n_curves, -1, self.dim)
        return grid, np.concatenate([U, self.curves[:, -1:]], axis=1)


    def _dissipation_terms(self, potential, norm, substeps):
        """(grid, V(u), cumulative ∫‖∇V(u)‖_*) on the (refined) grid, each (m, G)."""
        nrm = self.norm if norm is None else as_norm(norm)
        if not (callable(getattr(potential, "value", None)) and callable(getattr(potential, "grad", None))):
            raise TypeError(f"potential must have .value and .grad, got {type(potential).__name__}")
        grid, U = self.refined(substeps)
        # one vectorized call per grid time (rows = curves), so a potential carrying one datum
        # per particle (an attack loss with its labels) sees its rows aligned with the curves
        vals = np.stack([np.asarray(potential.value(U[:, j]), dtype=float) for j in range(U.shape[1])], axis=1)
        slopes = np.stack([metric_slope(potential, U[:, j], nrm) for j in range(U.shape[1])], axis=1)
        return grid, vals, cumulative_trapezoid(slopes, grid, axis=-1, initial=0.0)

    def dissipation_defect(self, potential: PotentialLike, norm: str | float | Norm | None = None, *,
                           s: float | None = None, t: float | None = None, substeps: int = 1) -> np.ndarray:
        """Energy-dissipation defect of every curve, shape (m,).

        D_c(s, t) = V(u_c(t)) − V(u_c(s)) + ∫_s^t ‖∇V(u_c(r))‖_* dr   (default s = t_0, t = T).

        For C¹ V and a 1-Lipschitz curve the chain rule gives D ≥ 0, with D = 0 exactly on
        curves of maximal slope; D > 0 measures how far a curve is from one.

        Quadrature: composite trapezoid rule on the grid, each segment split into ``substeps``
        equal parts; the integrand is evaluated on the piecewise-linear curve itself. The rule is
        exact when ‖∇V(u(r))‖_* is affine on every (sub)segment (V linear; V quadratic on a segment
        where no gradient component changes sign, in ℓ∞); otherwise its error per segment of
        length h is O(h³) for smooth integrands and O(h²) where a component of ∇V changes sign
        inside it. So on a discrete curve D can be slightly negative, and a scheme's chattering
        (Euler sign descent oscillating around ∂_iV = 0) shows up as a positive defect of order τ.

        Parameters
        ----------
        potential : Potential (``.value``, ``.grad``)
        norm : norm specification, optional
            Norm of the space (the slope uses its dual); default: the measure's norm.
        s, t : float, optional
            Interval [s, t] ⊂ [t_0, T], s ≤ t (non-grid end points are handled by :meth:`restrict`).
        substeps : int
            Trapezoid sub-intervals per grid segment.
        """
        s = self.times[0] if s is None else real(s, "s")
        t = self.T if t is None else real(t, "t")
        eta = self
        if s != self.times[0] or t != self.T:
            eta = self.restrict(s, t)
        _, vals, cum = eta._dissipation_terms(potential, norm, substeps)
        return vals[:, -1] - vals[:, 0] + cum[:, -1]

    def worst_dissipation_defect(self, potential: PotentialLike, norm: str | float | Norm | None = None, *,
                                 substeps: int = 1) -> np.ndarray:
        """max over (refined) grid times s ≤ t of D_c(s, t), shape (m,) (≥ 0: s = t gives 0).

        With F(t) = V(u(t)) + ∫_{t_0}^t ‖∇V(u)‖_*, D(s, t) = F(t) − F(s), so the maximum over all
        pairs costs one running minimum. The energy-dissipation inequality holds on all grid
        pairs (up to quadrature error) exactly when this is ≈ 0.
        """
        _, vals, cum = self._dissipation_terms(potential, norm, substeps)
        best, _, _ = worst_increase(vals + cum)
        return best


# ----------------------------------------------------------------------------------------------
# construction
# ----------------------------------------------------------------------------------------------


def superpose(flow_result: FlowResult) -> CurveMeasure:
    """η = Σ_i w_i δ_{u_i} from the labelled particle trajectories of a flow.

    Parameters
    ----------
    flow_result : FlowResult
        ``.positions`` (K+1, n, d), ``.weights`` (n,), ``.times`` (K+1,), ``.norm``.

    Returns
    -------
    CurveMeasure
        n curves on the stored times; ``marginal(t)`` equals ``flow_result.measure(t)``.
    """
    for attr in ("positions", "weights", "times"):
        if not hasattr(flow_result, attr):
            raise TypeError(f"flow_result must be a FlowResult (missing .{attr}), got {type(flow_result).__name__}")
    if not hasattr(flow_result, "norm"):
        raise TypeError(f"flow_result must be a FlowResult (missing .norm), got {type(flow_result).__name__}")
    U = np.moveaxis(np.asarray(flow_result.positions, dtype=float), 0, 1)
    return CurveMeasure(U, flow_result.weights, flow_result.times, flow_result.norm,
                        normalize=True, info=CurveInfo(source="flow"))


def _segmented_fractions(group: np.ndarray, mass: np.ndarray, n_groups: int):
    """For items sorted by ``group``: cumulative mass within the group / group total (last = 1.0).

    The cumulative sums restart in every group (no global cumsum differences, so fractions carry
    relative round-off ~ count·eps only). Vectorized over groups, one pass per rank.
    """
    counts = np.bincount(group, minlength=n_groups)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.arange(group.size) - start[group]
    acc = mass.astype(float).copy()
    if group.size:
        by_rank = np.argsort(rank, kind="stable")
        sizes = np.bincount(rank)
        bounds = np.r_[0, np.cumsum(sizes)]
        for r in range(1, sizes.size):
            pos = by_rank[bounds[r]:bounds[r + 1]]
            acc[pos] += acc[pos - 1]
    total = acc[start[group] + counts[group] - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, acc / np.where(total > 0, total, 1.0), (rank + 1.0) / counts[group])
    last = rank == counts[group] - 1
    frac[last] = 1.0
    return frac, counts


def _glue_interval(cur_atom, cur_w, cur_key, rows, cols, mass, edge_key, W):
    """One gluing step: split the curves at each atom against the coupling's outgoing edges.

    At atom b, lay the incoming curves (in ``cur_key`` order) and the outgoing edges (in
    ``edge_key`` order) on [0, 1] as consecutive intervals of lengths ω_c/Σω and m_e/Σm; every
    non-empty intersection is a new curve (continuing that incoming curve along that edge) of
    mass length × w(b). A single incoming curve is split proportionally to the edge masses; a
    coupling with m non-zero entries continues m curves when every atom has one incoming curve;
    in general an atom with a curves in and b edges out gives at most a + b − 1 curves.

    Returns (parent index (M',), edge index (M',), new weights (M',)).
    """
    n = W.size
    oc = np.lexsort((*cur_key[:, ::-1].T, cur_atom))
    oe = np.lexsort((*edge_key[:, ::-1].T, rows))
    fc, _ = _segmented_fractions(cur_atom[oc], cur_w[oc], n)
    fe, _ = _segmented_fractions(rows[oe], mass[oe], n)
    atom = np.r_[cur_atom[oc], rows[oe]]
    frac = np.r_[fc, fe]
    order = np.lexsort((frac, atom))
    a_s, f_s = atom[order], frac[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (a_s[1:] != a_s[:-1]) | (f_s[1:] - f_s[:-1] > SNAP_TOL)
    # a group is a run of equal (snapped) breakpoints; its end value is the run's last fraction
    gid = np.cumsum(new) - 1
    G = int(gid[-1]) + 1 if gid.size else 0
    end_idx = np.r_[np.flatnonzero(new)[1:] - 1, order.size - 1]
    g_end, g_atom = f_s[end_idx], a_s[end_idx]
    g_lo = np.r_[0.0, g_end[:-1]]
    g_lo[np.r_[True, g_atom[1:] != g_atom[:-1]]] = 0.0
    group_of = np.empty(order.size, dtype=np.int64)
    group_of[order] = gid
    gc, ge = group_of[: oc.size], group_of[oc.size:]
    g = np.arange(G)
    parent = oc[np.searchsorted(gc, g, side="left")]
    edge = oe[np.searchsorted(ge, g, side="left")]
    weights = (g_end - g_lo) * W[g_atom]
    return parent, edge, weights


def _glue_product(cur_atom, cur_w, rows, mass, n):
    """Markov (product) gluing: every curve at b continues along every edge (b, c), mass ω m/Σm."""
    oe = np.argsort(rows, kind="stable")
    r_s = rows[oe]
    counts = np.bincount(r_s, minlength=n)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    rowsum = np.bincount(rows, weights=mass, minlength=n)
    reps = counts[cur_atom]
    parent = np.repeat(np.arange(cur_atom.size), reps)
    offs = np.arange(parent.size) - np.repeat(np.cumsum(reps) - reps, reps)
    edge = oe[start[cur_atom[parent]] + offs]
    weights = cur_w[parent] * mass[edge] / rowsum[rows[edge]]
    return parent, edge, weights


def _checked_coupling(coupling, a: np.ndarray, b: np.ndarray, j: int):
    """COO arrays of a coupling without round-off entries, marginals polished to the snapshot weights."""
    rows = np.asarray(coupling.rows, dtype=np.int64).reshape(-1)
    cols = np.asarray(coupling.cols, dtype=np.int64).reshape(-1)
    mass = np.asarray(coupling.mass, dtype=float).reshape(-1)
    if not (rows.size == cols.size == mass.size) or rows.size == 0:
        raise RuntimeError(f"optimal_coupling returned malformed COO arrays for snapshots {j}, {j + 1}")
    if rows.min() < 0 or rows.max() >= a.size or cols.min() < 0 or cols.max() >= b.size:
        raise RuntimeError(f"optimal_coupling returned out-of-range indices for snapshots {j}, {j + 1}")
    # entries of mass ≤ COUPLING_ROUNDOFF are solver round-off (the network simplex leaves entries of
    # 1e-20…1e-17 on unit total mass); gluing them would create curves of no mass. An entry that is
    # the largest of its row or column is always kept (an atom is never left uncoupled); the polish
    # below puts the removed mass back on the remaining support.
    if rows.size:
        rmax = np.zeros(a.size)
        cmax = np.zeros(b.size)
        np.maximum.at(rmax, rows, mass)
        np.maximum.at(cmax, cols, mass)
        keep = (mass > COUPLING_ROUNDOFF) | (mass == rmax[rows]) | (mass == cmax[cols])
        rows, cols, mass = rows[keep], cols[keep], mass[keep]
    err = max(np.abs(np.bincount(rows, mass, a.size) - a).max(), np.abs(np.bincount(cols, mass, b.size) - b).max())
    if not err <= COUPLING_MASS_TOL:
        raise RuntimeError(
            f"the coupling of snapshots {j} and {j + 1} misses their weights by {err:.3g} "
            f"(> {COUPLING_MASS_TOL:g}); refusing to glue an infeasible plan"
        )
    if np.any(np.bincount(rows, mass, a.size) <= 0) or np.any(np.bincount(cols, mass, b.size) <= 0):
        raise RuntimeError(f"the coupling of snapshots {j} and {j + 1} leaves an atom of positive weight uncoupled")
    # proportional fitting on the support (until the marginals agree to a few ulps) removes the
    # solver's round-off and the mass of the dropped entries
    return rows, cols, fit_marginals(rows, cols, mass, a, b, a.size, b.size)


def superpose_snapshots(measures: Sequence[ParticleMeasure | ArrayLike], times: ArrayLike,
                        norm: str | float | Norm = "linf", *, tie_break: str | None = "w2",
                        gluing: str = "interval", max_curves: int | None = None) -> CurveMeasure:
    """η on piecewise-linear curves from unlabelled snapshots μ_{t_0}, …, μ_{t_K}.

    Consecutive snapshots are coupled by a W∞-optimal plan γ_k (``wflow.transport.optimal_coupling``;
    with ``tie_break="w2"`` it minimizes Σγ‖x − y‖₂² among the W∞-optimal plans, which keeps the
    glued curves regular), and the plans are glued along the time grid. Every curve is linear
    between snapshots and every segment joins a pair (x, y) in the support of γ_k, so

    - (e_{t_k})_#η = μ_{t_k} for every k (up to float round-off), total mass 1;
    - every curve moves on [t_k, t_{k+1}] at speed ≤ W∞(μ_{t_k}, μ_{t_{k+1}}) / (t_{k+1} − t_k).

    Parameters
    ----------
    measures : sequence of ParticleMeasure or arrays (n_k, d), length K+1
        Snapshots (sizes and weights may differ between times; zero-weight atoms are ignored).
    times : array, shape (K+1,)
        Strictly increasing snapshot times.
    norm : {"linf", "l2", "l1"} or float p ≥ 1
        Norm of the W∞ cost (and of the returned CurveMeasure).
    tie_break : {"w2", None}
        Secondary criterion among W∞-optimal plans, passed to ``optimal_coupling`` (None: any
        W∞-optimal plan, cheaper but the glued curves may be less regular).
    gluing : {"interval", "product"}
        ``"interval"`` (default): at each atom the incoming curves and the outgoing plan entries
        are laid out as consecutive mass intervals (both ordered lexicographically by the
        neighbouring position: the previous point of the curve, the target of the entry) and cut
        at the union of break points; a lone incoming curve is split proportionally to the
        entries, so a plan with m non-zero entries continues m curves when every atom has one
        incoming curve, and an atom with a curves in and b entries out yields ≤ a + b − 1 curves
        (in 1-D this is the non-crossing, monotone gluing). ``"product"``: the Markov gluing of
        the gluing lemma, every incoming curve is split proportionally over every outgoing entry
        (a·b curves per atom; can grow exponentially with K).
    max_curves : int, optional
        Raise ValueError if the number of curves would exceed this.

    Returns
    -------
    CurveMeasure
        ``info`` is a :class:`CurveInfo` with ``winf_steps`` (the value of each coupling,
        shape (K,)), ``n_curves_steps`` (number of curves after each gluing step),
        ``plan_entries`` (non-zero entries of each plan after removing round-off) and
        ``n_atoms`` (support size of every snapshot, (K+1,)).

    Raises
    ------
    ValueError, TypeError
        For bad arguments, before any coupling is computed.
    RuntimeError
        When a coupling's marginals miss the snapshot weights by more than ``COUPLING_MASS_TOL``.
    """
    if isinstance(measures, (ParticleMeasure, np.ndarray)) or not hasattr(measures, "__len__"):
        raise TypeError("measures must be a sequence (list or tuple) of measures or (n, d) arrays")
    if len(measures) == 0:
        raise ValueError("measures must contain at least one snapshot")
    snaps = [as_measure(mu, f"measures[{k}]").support() for k, mu in enumerate(measures)]
    d = snaps[0].dim
    for k, mu in enumerate(snaps):
        if mu.dim != d:
            raise ValueError(f"measures[{k}] has dimension {mu.dim}, measures[0] has {d}")
    t = as_times(times, "times", size=len(snaps))
    nrm = as_norm(norm)
    if gluing not in ("interval", "product"):
        raise ValueError(f"gluing must be 'interval' or 'product', got {gluing!r}")
    if max_curves is not None:
        max_curves = integer(max_curves, "max_curves", low=1)
    if tie_break is not None and not isinstance(tie_break, str):
        raise TypeError(f"tie_break must be a string, got {type(tie_break).__name__}")

    K = len(snaps) - 1
    cur_atom = np.arange(snaps[0].n)
    cur_w = np.array(snaps[0].weights)
    prev_pos = snaps[0].points  # the previous point of each curve (ordering key)
    parents, atoms = [], [cur_atom]
    winf_steps, n_steps, n_entries = np.zeros(K), np.zeros(K, dtype=np.int64), np.zeros(K, dtype=np.int64)
    for k in range(K):
        mu, nu = snaps[k], snaps[k + 1]
        gamma = optimal_coupling(mu, nu, nrm, tie_break=tie_break)
        rows, cols, mass = _checked_coupling(gamma, mu.weights, nu.weights, k)
        winf_steps[k] = float(gamma.value)
        n_entries[k] = rows.size
        if gluing == "interval":
            parent, edge, w = _glue_interval(cur_atom, cur_w, prev_pos, rows, cols, mass,
                                             nu.points[cols], mu.weights)
        else:
            parent, edge, w = _glue_product(cur_atom, cur_w, rows, mass, mu.n)
        if max_curves is not None and parent.size > max_curves:
            raise ValueError(f"gluing step {k} needs {parent.size} curves > max_curves = {max_curves}")
        keep = w > 0
        parent, edge, w = parent[keep], edge[keep], w[keep]
        prev_pos = mu.points[cur_atom[parent]]
        cur_atom, cur_w = cols[edge], w
        parents.append(parent)
        atoms.append(cur_atom)
        n_steps[k] = cur_atom.size
    # backtrack the atom index of every final curve at every time
    m = cur_atom.size
    U = np.empty((m, K + 1, d))
    idx = np.arange(m)
    for k in range(K, -1, -1):
        U[:, k] = snaps[k].points[atoms[k][idx]]
        if k:
            idx = parents[k - 1][idx]
    return CurveMeasure(U, cur_w, t, nrm, normalize=True,
                        info=CurveInfo(source="snapshots", gluing=gluing, tie_break=tie_break,
                                       winf_steps=winf_steps, n_curves_steps=n_steps,
                                       plan_entries=n_entries, n_atoms=np.array([mu.n for mu in snaps])))
