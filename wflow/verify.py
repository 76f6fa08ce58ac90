"""Numerical checks of the superposition characterization of W∞-curves of maximal slope.

A curve of measures μ_t on [t_0, T] is an ∞-curve of maximal slope of 𝓔(μ) = ∫V dμ in
(P(X), W∞) exactly when a probability measure η on curves exists with (e_t)_#η = μ_t that is
concentrated on solutions of u' ∈ ∂‖·‖_*(−∇V(u)). The checks measure each ingredient:

(a) :func:`check_marginals` — max_k W∞((e_{t_k})_#η, μ_{t_k}) (exact W∞), must be 0 up to round-off;
(b) :func:`check_winf_lipschitz` — W∞(μ_s, μ_t) ≤ |t − s| on grid pairs (exact W∞);
(c) :func:`check_energy_dissipation` — 𝓔(μ_t) + ∫_s^t |∂𝓔|(μ_r) dr ≤ 𝓔(μ_s), |∂𝓔|(μ) = ∫‖∇V‖_* dμ;
(d) :func:`check_maximal_slope_mass` — η-mass of curves of maximal slope (within tolerance).

Every check returns a report dataclass with the measured numbers, the tolerance, a ``passed``
flag, the worst (violating) pair or time, and ``to_dict()`` (JSON-ready).
:func:`verify_characterization` runs them all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import cumulative_trapezoid

from ._validation import integer, real
from .measures import ParticleMeasure, as_measure
from .norms import norm_name, parse_norm
from .superposition import CurveMeasure, as_times, worst_increase

__all__ = [
    "MarginalsReport",
    "LipschitzReport",
    "EnergyDissipationReport",
    "MaximalSlopeMassReport",
    "CharacterizationReport",
    "check_marginals",
    "check_winf_lipschitz",
    "check_energy_dissipation",
    "check_maximal_slope_mass",
    "verify_characterization",
]


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if dataclasses.is_dataclass(x):
        return x.to_dict()
    return x


class _Report:
    def to_dict(self) -> dict:
        """A JSON-ready dict (arrays become lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def __bool__(self) -> bool:
        return bool(self.passed)


@dataclass
class MarginalsReport(_Report):
    """(a) W∞((e_t)_#η, μ_t) at every snapshot time.

    Attributes
    ----------
    passed : bool
        ``max_winf <= tolerance`` and ``mass_error <= 1e-12``.
    max_winf : float
    tolerance : float
        Absolute W∞ tolerance (in units of X).
    worst_time : float
        Snapshot time of the largest W∞.
    winf : ndarray, shape (K+1,)
        W∞ at every snapshot time.
    times : ndarray, shape (K+1,)
    mass_error : float
        |η(C) − 1|.
    norm : str
    """

    passed: bool
    max_winf: float
    tolerance: float
    worst_time: float
    winf: np.ndarray
    times: np.ndarray
    mass_error: float
    norm: str
    check: str = field(default="marginals", init=False, repr=False)


@dataclass
class LipschitzReport(_Report):
    """(b) W∞(μ_s, μ_t) ≤ |t − s| on grid pairs.

    Attributes
    ----------
    passed : bool
        Every pair has W∞ ≤ |t − s|(1 + rtol) + atol.
    max_ratio : float
        max W∞(μ_s, μ_t)/|t − s| (the W∞-Lipschitz constant on the grid).
    worst_pair : tuple of float
        (s, t) attaining ``max_ratio`` (the violating pair when the check fails).
    worst_indices : tuple of int
    worst_distance : float
        W∞ of the worst pair.
    rtol, atol : float
    pairs : str
        ``"all"`` or ``"consecutive"``.
    n_pairs, n_violations : int
    violations : list of (s, t, W∞, ratio)
        The (at most 20) worst violating pairs.
    norm : str
    """

    passed: bool
    max_ratio: float
    worst_pair: tuple
    worst_indices: tuple
    worst_distance: float
    rtol: float
    atol: float
    pairs: str
    n_pairs: int
    n_violations: int
    violations: list
    norm: str
    check: str = field(default="winf_lipschitz", init=False, repr=False)

    @property
    def tolerance(self) -> float:
        return self.rtol


@dataclass
class EnergyDissipationReport(_Report):
    """(c) 𝓔(μ_t) − 𝓔(μ_s) + ∫_s^t |∂𝓔|(μ_r) dr ≤ tol for grid times s ≤ t.

    Attributes
    ----------
    passed : bool
        ``max_defect <= tolerance``.
    max_defect : float
        max over grid pairs s ≤ t of the defect (≥ 0; 0 on curves of maximal slope).
    worst_pair : tuple of float
        (s, t) attaining it.
    total_defect : float
        Defect over the whole interval [t_0, T].
    min_defect : float
        Most negative defect over pairs (chain rule: ≥ 0 up to quadrature for 1-Lipschitz curves).
    tolerance : float
    energies, slopes : ndarray, shape (G,)
        𝓔(μ_t) and |∂𝓔|(μ_t) on the quadrature grid.
    times : ndarray, shape (G,)
    quadrature : str
    norm : str
    """

    passed: bool
    max_defect: float
    worst_pair: tuple
    total_defect: float
    min_defect: float
    tolerance: float
    energies: np.ndarray
    slopes: np.ndarray
    times: np.ndarray
    quadrature: str
    norm: str
    check: str = field(default="energy_dissipation", init=False, repr=False)


@dataclass
class MaximalSlopeMassReport(_Report):
    """(d) η-mass of the curves that are curves of maximal slope within tolerance.

    Attributes
    ----------
    passed : bool
        ``mass >= 1 - mass_tol``.
    mass : float
    mass_tol : float
    tolerance : float
        Per-curve dissipation-defect tolerance (units of V).
    lip_tol : float
        Per-curve Lipschitz tolerance (relative).
    n_curves, n_failing : int
    max_defect : float
        Largest worst-pair defect over all curves.
    max_lipschitz : float
    worst_curve : int
        Index of the curve with the largest defect.
    norm : str
    """

    passed: bool
    mass: float
    mass_tol: float
    tolerance: float
    lip_tol: float
    n_curves: int
    n_failing: int
    max_defect: float
    max_lipschitz: float
    worst_curve: int
    norm: str
    check: str = field(default="maximal_slope_mass", init=False, repr=False)


@dataclass
class CharacterizationReport(_Report):
    """All checks; ``passed`` when every check that ran passed (None: not run)."""

    passed: bool
    marginals: MarginalsReport | None
    lipschitz: LipschitzReport | None
    energy: EnergyDissipationReport | None
    slope_mass: MaximalSlopeMassReport | None
    check: str = field(default="characterization", init=False, repr=False)


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def _snapshots(measures, times, name: str = "measures"):
    """(list of ParticleMeasure, times, default norm or None) from a sequence, CurveMeasure or FlowResult."""
    if isinstance(measures, CurveMeasure):
        t = measures.times if times is None else as_times(times, "times")
        return [measures.marginal(s, merge=True) for s in t], t, measures.norm.p
    if hasattr(measures, "positions") and hasattr(measures, "measure") and hasattr(measures, "times"):
        t = np.asarray(measures.times, dtype=float) if times is None else as_times(times, "times")
        return [measures.measure(s) for s in t], t, measures.norm.p
    if isinstance(measures, (ParticleMeasure, np.ndarray)) or not hasattr(measures, "__len__"):
        raise TypeError(f"{name} must be a sequence of measures, a CurveMeasure or a FlowResult")
    if times is None:
        raise ValueError("times is required when measures is a sequence of snapshots")
    snaps = [as_measure(mu, f"{name}[{k}]") for k, mu in enumerate(measures)]
    t = as_times(times, "times", size=len(snaps))
    return snaps, t, None


def _pick_norm(norm, default):
    if norm is not None:
        return parse_norm(norm, name="norm")
    return np.inf if default is None else default


def _check_potential(potential):
    if not (callable(getattr(potential, "value", None)) and callable(getattr(potential, "grad", None))):
        raise TypeError(f"potential must have .value and .grad, got {type(potential).__name__}")


def _norm_arg(p: float):
    """Norm specification for wflow.transport (names for 1, 2, ∞; the exponent otherwise)."""
    return norm_name(p) if p in (1.0, 2.0, np.inf) else p


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------


def check_marginals(eta: CurveMeasure, measures, times=None, norm=None, *, tol: float | None = None) -> MarginalsReport:
    """(a) max over snapshot times of W∞((e_t)_#η, μ_t), with the exact W∞.

    Parameters
    ----------
    eta : CurveMeasure
    measures : sequence of ParticleMeasure/arrays (or a FlowResult)
        The snapshots μ_{t_k}.
    times : array (K+1,), optional
        Their times (inside eta's time interval); required for a plain sequence.
    norm : norm specification, optional
        Default: eta's norm.
    tol : float, optional
        Absolute tolerance on W∞. Default 1e-12·max(1, max|x|): at grid times of eta the marginal
        atoms are copies of stored points, between them a linear blend carries round-off of a few
        ulps of the coordinates.

    Returns
    -------
    MarginalsReport
    """
    if not isinstance(eta, CurveMeasure):
        raise TypeError(f"eta must be a CurveMeasure, got {type(eta).__name__}")
    snaps, t, _ = _snapshots(measures, times)
    p = _pick_norm(norm, eta.norm.p)
    if t[0] < eta.times[0] or t[-1] > eta.T:
        raise ValueError(f"times must lie in eta's interval [{eta.times[0]:g}, {eta.T:g}]")
    for k, mu in enumerate(snaps):
        if mu.dim != eta.dim:
            raise ValueError(f"measures[{k}] has dimension {mu.dim}, eta has {eta.dim}")
    if tol is None:
        scale = max(1.0, float(np.abs(eta.curves).max()), max(float(np.abs(mu.points).max()) for mu in snaps))
        tol = 1e-12 * scale
    tol = real(tol, "tol", low=0.0)
    from .transport import winf

    d = np.array([winf(eta.marginal(s, merge=True), mu.support(), _norm_arg(p)) for s, mu in zip(t, snaps)])
    k = int(np.argmax(d))
    mass_error = abs(float(eta.weights.sum()) - 1.0)
    return MarginalsReport(
        passed=bool(d[k] <= tol and mass_error <= 1e-12), max_winf=float(d[k]), tolerance=tol,
        worst_time=float(t[k]), winf=d, times=t, mass_error=mass_error, norm=norm_name(p),
    )


def check_winf_lipschitz(measures, times=None, norm=None, *, pairs: str = "all", rtol: float = 1e-9,
                         atol: float = 1e-12) -> LipschitzReport:
    """(b) W∞(μ_s, μ_t) ≤ |t − s| on pairs of grid times, with the exact W∞.

    By the triangle inequality for W∞, the consecutive pairs imply all pairs (up to accumulated
    round-off), so ``pairs="consecutive"`` (K distances instead of K(K+1)/2) already certifies
    the Lipschitz bound on the whole grid; ``"all"`` measures every pair directly.

    Parameters
    ----------
    measures : sequence of measures (with ``times``), CurveMeasure or FlowResult
    times : array, optional
    norm : norm specification, optional
        Default: the norm of a CurveMeasure/FlowResult, else ``"linf"``.
    pairs : {"all", "consecutive"}
    rtol, atol : float
        A pair passes when W∞ ≤ |t − s|(1 + rtol) + atol; the defaults absorb float round-off in
        the atoms' coordinates (≈ 1e-16 relative) divided by time steps ≥ 1e-6.

    Returns
    -------
    LipschitzReport
        With the worst pair (the violating pair when failing) and its ratio W∞/|t − s|.
    """
    if pairs not in ("all", "consecutive"):
        raise ValueError(f"pairs must be 'all' or 'consecutive', got {pairs!r}")
    rtol = real(rtol, "rtol", low=0.0)
    atol = real(atol, "atol", low=0.0)
    snaps, t, default = _snapshots(measures, times)
    p = _pick_norm(norm, default)
    n = len(snaps)
    if n < 2:
        raise ValueError("need at least two snapshot times")
    if pairs == "all":
        ii, jj = np.triu_indices(n, k=1)
    else:
        ii, jj = np.arange(n - 1), np.arange(1, n)
    from .transport import winf

    sup = [mu.support() for mu in snaps]
    dist = np.array([winf(sup[i], sup[j], _norm_arg(p)) for i, j in zip(ii, jj)])
    gap = t[jj] - t[ii]
    ratio = dist / gap
    bad = dist > gap * (1.0 + rtol) + atol
    w = int(np.argmax(ratio))
    viol_idx = np.flatnonzero(bad)
    viol_idx = viol_idx[np.argsort(-ratio[viol_idx])][:20]
    violations = [(float(t[ii[v]]), float(t[jj[v]]), float(dist[v]), float(ratio[v])) for v in viol_idx]
    return LipschitzReport(
        passed=not bool(bad.any()), max_ratio=float(ratio[w]), worst_pair=(float(t[ii[w]]), float(t[jj[w]])),
        worst_indices=(int(ii[w]), int(jj[w])), worst_distance=float(dist[w]), rtol=rtol, atol=atol,
        pairs=pairs, n_pairs=int(ii.size), n_violations=int(bad.sum()), violations=violations, norm=norm_name(p),
    )


def check_energy_dissipation(measures, times, potential, norm=None, *, tol: float = 1e-8,
                             substeps: int = 1) -> EnergyDissipationReport:
    """(c) energy dissipation at the measure level on all pairs of grid times s ≤ t.

    defect(s, t) = 𝓔(μ_t) − 𝓔(μ_s) + ∫_s^t |∂𝓔|(μ_r) dr, with 𝓔(μ) = ∫V dμ and
    |∂𝓔|(μ) = ∫‖∇V‖_* dμ. The inequality 𝓔(μ_t) + ∫_s^t |∂𝓔| ≤ 𝓔(μ_s) is defect ≤ 0; for a
    1-Lipschitz curve and C¹ V the defect is also ≥ 0, so on curves of maximal slope it is 0.

    Quadrature: trapezoid rule on the snapshot times (the measures between snapshots are not
    known from snapshots alone). For a CurveMeasure, ``substeps`` > 1 refines every segment and
    evaluates its marginals there (the curve of measures η defines between snapshots). Discrete
    curves (a scheme's output) have defects of the order of the step; choose ``tol`` accordingly.

    Parameters
    ----------
    measures : sequence of measures, CurveMeasure or FlowResult
    times : array or None
        Snapshot times (None for a CurveMeasure/FlowResult: their stored times).
    potential : Potential
    norm : norm specification, optional
    tol : float
        Absolute tolerance on the worst defect (units of V).
    substeps : int
        Only for a CurveMeasure.

    Returns
    -------
    EnergyDissipationReport
    """
    _check_potential(potential)
    tol = real(tol, "tol", low=0.0)
    substeps = integer(substeps, "substeps", low=1)
    if substeps > 1:
        if not isinstance(measures, CurveMeasure):
            raise ValueError("substeps > 1 needs a CurveMeasure (the curve between snapshots)")
        grid, _ = measures.refined(substeps)
        if times is not None:
            raise ValueError("pass times=None with substeps > 1 (the CurveMeasure's grid is refined)")
        snaps, t, default = _snapshots(measures, grid)
    else:
        snaps, t, default = _snapshots(measures, times)
    p = _pick_norm(norm, default)
    E = np.array([mu.energy(potential) for mu in snaps])
    S = np.array([mu.slope(potential, p) for mu in snaps])
    F = E + cumulative_trapezoid(S, t, axis=-1, initial=0.0)
    best, j, k = worst_increase(F)
    diffs = F[None, :] - F[:, None]
    iu = np.triu_indices(t.size, k=1)
    min_defect = float(diffs[iu].min()) if iu[0].size else 0.0
    return EnergyDissipationReport(
        passed=bool(best <= tol), max_defect=float(best), worst_pair=(float(t[j]), float(t[k])),
        total_defect=float(F[-1] - F[0]), min_defect=min_defect, tolerance=tol, energies=E, slopes=S,
        times=t, quadrature=f"trapezoid ({substeps} per segment)", norm=norm_name(p),
    )


def check_maximal_slope_mass(eta, potential, norm=None, *, tol: float = 1e-8, lip_tol: float = 1e-9,
                             mass_tol: float = 1e-12, substeps: int = 1) -> MaximalSlopeMassReport:
    """(d) η-mass of the curves of maximal slope, within tolerance.

    A curve counts when its Lipschitz constant is ≤ 1 + ``lip_tol`` and its worst
    energy-dissipation defect over grid pairs is ≤ ``tol`` (see
    :meth:`CurveMeasure.maximal_slope_mask`); the check passes when that mass is ≥ 1 − ``mass_tol``.

    Parameters
    ----------
    eta : CurveMeasure or FlowResult (superposed first)
    potential : Potential
    norm : norm specification, optional (default: eta's norm)
    tol, lip_tol, mass_tol : float
    substeps : int
        Trapezoid sub-intervals per segment.

    Returns
    -------
    MaximalSlopeMassReport
    """
    if not isinstance(eta, CurveMeasure):
        if hasattr(eta, "positions") and hasattr(eta, "weights"):
            from .superposition import superpose

            eta = superpose(eta)
        else:
            raise TypeError(f"eta must be a CurveMeasure or a FlowResult, got {type(eta).__name__}")
    _check_potential(potential)
    tol = real(tol, "tol", low=0.0)
    lip_tol = real(lip_tol, "lip_tol", low=0.0)
    mass_tol = real(mass_tol, "mass_tol", low=0.0)
    p = _pick_norm(norm, eta.norm.p)
    lip = eta.lipschitz_constants(p)
    defect = eta.worst_dissipation_defect(potential, p, substeps=substeps)
    ok = (lip <= 1.0 + lip_tol) & (defect <= tol)
    mass = float(eta.weights[ok].sum())
    worst = int(np.argmax(defect))
    return MaximalSlopeMassReport(
        passed=bool(mass >= 1.0 - mass_tol), mass=mass, mass_tol=mass_tol, tolerance=tol, lip_tol=lip_tol,
        n_curves=eta.n_curves, n_failing=int((~ok).sum()), max_defect=float(defect[worst]),
        max_lipschitz=float(lip.max()), worst_curve=worst, norm=norm_name(p),
    )


def verify_characterization(eta: CurveMeasure, measures=None, times=None, potential=None, norm=None, *,
                            pairs: str = "all", marginal_tol: float | None = None, rtol: float = 1e-9,
                            atol: float = 1e-12, energy_tol: float = 1e-8, defect_tol: float = 1e-8,
                            lip_tol: float = 1e-9, mass_tol: float = 1e-12,
                            substeps: int = 1) -> CharacterizationReport:
    """Run checks (a)–(d) and collect their reports.

    Parameters
    ----------
    eta : CurveMeasure
        The representing measure (e.g. from :func:`~wflow.superposition.superpose_snapshots`).
    measures, times : optional
        The snapshots the characterization is about (default: η's own marginals at its grid
        times, in which case (a) is skipped).
    potential : Potential, optional
        Needed for (c) and (d) (skipped without it).
    norm : norm specification, optional (default: eta's norm)
    pairs, rtol, atol : see :func:`check_winf_lipschitz`
    marginal_tol : see ``tol`` of :func:`check_marginals`
    energy_tol : ``tol`` of :func:`check_energy_dissipation`
    defect_tol, lip_tol, mass_tol : see :func:`check_maximal_slope_mass`
    substeps : int
        Quadrature refinement for (d) (and (c) when it runs on η itself).

    Returns
    -------
    CharacterizationReport
    """
    if not isinstance(eta, CurveMeasure):
        raise TypeError(f"eta must be a CurveMeasure, got {type(eta).__name__}")
    for name, v in (("rtol", rtol), ("atol", atol), ("energy_tol", energy_tol), ("defect_tol", defect_tol),
                    ("lip_tol", lip_tol), ("mass_tol", mass_tol), ("marginal_tol", marginal_tol)):
        if v is not None:
            real(v, name, low=0.0)  # named here: the checks below would only say "tol"
    p = _pick_norm(norm, eta.norm.p)
    marg = None
    if measures is not None:
        marg = check_marginals(eta, measures, times, p, tol=marginal_tol)
        curve_of_measures, curve_times = measures, times
    else:
        curve_of_measures, curve_times = eta, None
    lip = check_winf_lipschitz(curve_of_measures, curve_times, p, pairs=pairs, rtol=rtol, atol=atol)
    energy = slope_mass = None
    if potential is not None:
        if curve_of_measures is eta:
            energy = check_energy_dissipation(eta, None, potential, p, tol=energy_tol, substeps=substeps)
        else:
            energy = check_energy_dissipation(curve_of_measures, curve_times, potential, p, tol=energy_tol)
        slope_mass = check_maximal_slope_mass(eta, potential, p, tol=defect_tol, lip_tol=lip_tol,
                                              mass_tol=mass_tol, substeps=substeps)
    ran = [r for r in (marg, lip, energy, slope_mass) if r is not None]
    return CharacterizationReport(passed=all(r.passed for r in ran), marginals=marg, lipschitz=lip,
                                  energy=energy, slope_mass=slope_mass)
