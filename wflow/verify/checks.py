"""Checks of the characterization of ∞-curves of maximal slope, one per statement.

A curve of measures μ_t is an ∞-curve of maximal slope of 𝓔(μ) = ∫V dμ in (P(X), W∞) when a
probability measure η on curves with (e_t)_#η = μ_t is concentrated on 1-Lipschitz curves along
which the energy dissipates at the rate of the (metric) slope. The checks:

- :func:`check_curve_lipschitz` — every curve of η is 1-Lipschitz (which implies
  W∞(μ_s, μ_t) ≤ |t − s| for all pairs: the curves couple the two marginals);
- :func:`check_snapshot_lipschitz` — W∞(μ_{t_k}, μ_{t_{k+1}}) ≤ t_{k+1} − t_k on snapshots that
  do not come from η (exact W∞; consecutive pairs imply all pairs by the triangle inequality);
- :func:`check_marginals` — W∞((e_t)_#η, μ_t) = 0 for snapshots not built from η (exact W∞);
- :func:`check_energy_dissipation` — the measure-level dissipation defect per segment;
- :func:`check_maximal_slope_mass` — η-mass of the curves whose every segment passes;
- :func:`verify_characterization` — all of them with derived tolerances.

Every default tolerance is derived in ``docs/verification.md`` (the report states the formula).
"""

from __future__ import annotations

import numpy as np

from .._validation import real
from ..measures import ParticleMeasure, as_measure
from ..norms import dual_norm, norm_name, parse_norm
from ..norms import norm as _norm
from ..slope import gradient_jump, metric_slope, slope_is_exact, slope_radius
from ..superposition import CurveMeasure, as_times, superpose, superpose_snapshots, worst_increase
from ..transport import winf
from .report import CheckReport

__all__ = [
    "EPS",
    "as_curve_measure",
    "metric_slope",
    "segment_analysis",
    "check_curve_lipschitz",
    "check_snapshot_lipschitz",
    "check_marginals",
    "check_energy_dissipation",
    "check_maximal_slope_mass",
    "verify_characterization",
    "check_flow",
    "TOLERANCE_NAMES",
]

#: unit round-off of float64
EPS = float(np.finfo(float).eps)

#: the keyword tolerances :func:`verify_characterization` accepts (each replaces a derived default)
TOLERANCE_NAMES = ("speed_tol", "marginal_tol", "defect_tol", "mass_tol")


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------
def _is_flow_result(x) -> bool:
    return all(hasattr(x, a) for a in ("positions", "weights", "times", "potential"))


def as_curve_measure(eta, times=None, norm=None) -> CurveMeasure:
    """η as a :class:`CurveMeasure`: itself, ``superpose(flow_result)``, or glued snapshots.

    Parameters
    ----------
    eta : CurveMeasure, FlowResult or sequence of measures/(n, d) arrays
    times : array (K+1,), required for a sequence of snapshots
    norm : norm specification, for snapshots (default ``"linf"``)
    """
    if isinstance(eta, CurveMeasure):
        return eta
    if _is_flow_result(eta):
        return superpose(eta)
    if isinstance(eta, (ParticleMeasure, np.ndarray)) or not hasattr(eta, "__len__"):
        raise TypeError(f"eta must be a CurveMeasure, a FlowResult or a sequence of snapshots, "
                        f"got {type(eta).__name__}")
    if times is None:
        raise ValueError("times is required when eta is a sequence of snapshots")
    return superpose_snapshots(list(eta), times, norm="linf" if norm is None else norm)


def _snapshots(measures, times, name: str = "measures"):
    """(list of ParticleMeasure, times) from a sequence (with times) or a FlowResult."""
    if _is_flow_result(measures):
        t = np.asarray(measures.times, dtype=float) if times is None else as_times(times, "times")
        return [measures.measure(s) for s in t], t
    if isinstance(measures, CurveMeasure):
        raise TypeError(f"{name} must be snapshots that do not come from η (a sequence or a FlowResult), "
                        "not a CurveMeasure")
    if isinstance(measures, (ParticleMeasure, np.ndarray)) or not hasattr(measures, "__len__"):
        raise TypeError(f"{name} must be a sequence of measures or a FlowResult, got {type(measures).__name__}")
    if times is None:
        raise ValueError("times is required when measures is a sequence of snapshots")
    snaps = [as_measure(mu, f"{name}[{k}]") for k, mu in enumerate(measures)]
    return snaps, as_times(times, "times", size=len(snaps))


def _check_potential(potential):
    if not (callable(getattr(potential, "value", None)) and callable(getattr(potential, "grad", None))):
        raise TypeError(f"potential must have .value and .grad, got {type(potential).__name__}")


def _norm_arg(p: float):
    return norm_name(p) if p in (1.0, 2.0, np.inf) else p


def _per_time(f, U):
    """f applied to U[:, j] for every j (rows = curves), stacked to (m, J[, ...])."""
    return np.stack([np.asarray(f(U[:, j]), dtype=float) for j in range(U.shape[1])], axis=1)


# ----------------------------------------------------------------------------------------------
# the per-segment analysis (shared by the Lipschitz, dissipation and maximal-slope checks)
# ----------------------------------------------------------------------------------------------
def speed_roundoff(U: np.ndarray, t: np.ndarray, p: float) -> np.ndarray:
    """Round-off allowance ρ_k of the segment speeds ‖Δu_k‖/h_k, shape (m, K).

    ρ_k = (d + 2) ε (1 + (‖u_k‖ + ‖u_{k+1}‖ + |t_k| + |t_{k+1}|) / h_k): stored positions and
    times carry a relative error ≤ ε/2 each, the norm of a d-vector adds ≤ d ε relative
    (``docs/verification.md`` §2).
    """
    h = np.diff(t)
    nu = _norm(U, p)  # (m, K+1)
    d = U.shape[2]
    tt = np.abs(t[1:]) + np.abs(t[:-1])
    return (d + 2) * EPS * (1.0 + (nu[:, 1:] + nu[:, :-1] + tt[None]) / h[None])


def segment_analysis(eta: CurveMeasure, potential=None, norm=None) -> dict:
    """Per-curve, per-segment measurements and their derived tolerances.

    For every curve c and segment [t_k, t_{k+1}] of length h (velocity v = Δu/h):

    - ``speed`` ‖Δu‖/h and ``speed_tol`` 1 + ρ (:func:`speed_roundoff`);
    - with a potential: the dissipation defect
      ``defect`` D = V(u_{k+1}) − V(u_k) + h (S_k + S_{k+1})/2, S = |∂V| (metric slope), and its
      tolerance ``defect_tol`` = 2h·osc + 2R + ρ_V + h·S_res, where
      osc = max pairwise ‖∇V(a) − ∇V(b)‖_* over a, b ∈ {u_k, u_mid, u_{k+1}} (the chord bound),
      R = (h/3)|f_k + f_{k+1} − 2 f_mid|, f = ⟨∇V(u), v⟩ (trapezoid error estimate of the
      chain rule), ρ_V = 8(d + 1) ε (|V_k| + |V_{k+1}| + h(S_k + S_{k+1})) (evaluation
      round-off) and S_res = L̂ (d + 2) ε X + √(2 L̂ ε_V) the slope resolution of a point
      located by energy comparisons (L̂ the curve's largest secant ‖Δ∇V‖_*/‖Δu‖, X its largest
      ‖u‖, ε_V = 8(d + 1) ε max|V| on the curve). Where the slope is estimated
      (:func:`wflow.slope.metric_slope`, non-smooth V without a known subdifferential) the
      tolerance adds h((B_k + J_k + B_{k+1} + J_{k+1})/2 + L̂δ/2), B the estimate's accuracy
      bound, δ its step radius and J_k the jump of ∇V among probes u_k ± ρ_k e_i,
      ρ_k = min(h_{k−1}, h_k)/2. Derivations: ``docs/verification.md`` §3 and §8.

    Returns
    -------
    dict of arrays: ``h`` (K,), ``speed``, ``speed_tol`` (m, K), and with a potential
    ``defect``, ``defect_tol``, ``osc_term``, ``quad_term``, ``floor_term``, ``slope_term`` (m, K),
    ``energies``, ``slopes``, ``slope_bound`` (m, K+1), ``lipschitz_grad`` (m,).
    """
    p = eta.norm.p if norm is None else parse_norm(norm, name="norm")
    U, t = eta.curves, eta.times
    m, K1, d = U.shape
    out = {"h": np.diff(t), "p": p}
    if K1 < 2:
        raise ValueError("eta needs at least two grid times")
    h = out["h"]
    dU = np.diff(U, axis=1)
    out["speed"] = _norm(dU, p) / h[None]
    out["speed_tol"] = 1.0 + speed_roundoff(U, t, p)
    if potential is None:
        return out
    _check_potential(potential)
    Vv = _per_time(potential.value, U)
    G = _per_time(potential.grad, U)
    SB = [metric_slope(potential, U[:, j], _norm_arg(p), return_bound=True) for j in range(K1)]
    S = np.stack([s for s, _ in SB], axis=1)
    Bs = np.stack([b for _, b in SB], axis=1)  # accuracy bound of the slope (0 where exact), §8
    Um = 0.5 * (U[:, 1:] + U[:, :-1])
    Gm = _per_time(potential.grad, Um)
    v = dU / h[None, :, None]
    D = Vv[:, 1:] - Vv[:, :-1] + 0.5 * h[None] * (S[:, 1:] + S[:, :-1])
    f0 = np.einsum("mkd,mkd->mk", G[:, :-1], v)
    f1 = np.einsum("mkd,mkd->mk", G[:, 1:], v)
    fm = np.einsum("mkd,mkd->mk", Gm, v)
    dG = dual_norm(G[:, 1:] - G[:, :-1], p)
    osc = np.maximum(dG, np.maximum(dual_norm(Gm - G[:, :-1], p), dual_norm(G[:, 1:] - Gm, p)))
    quad = 2.0 * (h[None] / 3.0) * np.abs(f0 + f1 - 2.0 * fm)
    rho_v = 8 * (d + 1) * EPS * (np.abs(Vv[:, 1:]) + np.abs(Vv[:, :-1]) + h[None] * (S[:, 1:] + S[:, :-1]))
    step = _norm(dU, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        sec = np.where(step > 0, dG / np.where(step > 0, step, 1.0), 0.0)
    L = sec.max(axis=1)  # (m,)
    X = _norm(U, p).max(axis=1)
    eps_v = 8 * (d + 1) * EPS * np.abs(Vv).max(axis=1)
    s_res = L * (d + 2) * EPS * X + np.sqrt(2.0 * L * eps_v)
    floor = rho_v + h[None] * s_res[:, None]
    # estimated slopes (§8): D uses h(S_k + S_{k+1})/2, each S within B (+ L̂δ/2, the step's
    # curvature), and, since |∂V| jumps at kinks, within the gradient jump J_k among probes at
    # distance ρ_k = min(h_{k−1}, h_k)/2 of u_k (a sliding curve is located only to that scale)
    est = np.zeros_like(D)
    if not all(slope_is_exact(potential, U[:, j]) for j in range(K1)):
        rho = 0.5 * np.minimum(np.r_[h, h[-1]], np.r_[h[0], h])
        J = np.stack([gradient_jump(potential, U[:, j], rho[j], _norm_arg(p), grad=G[:, j])[0]
                      for j in range(K1)], axis=1)
        Bs = Bs + J
        curv = 0.5 * L * slope_radius(U, _norm_arg(p))
        est = 0.5 * h[None] * (Bs[:, 1:] + Bs[:, :-1]) + h[None] * curv[:, None]
    out.update(defect=D, defect_tol=2.0 * h[None] * osc + quad + floor + est, osc_term=2.0 * h[None] * osc,
               quad_term=quad, floor_term=floor, slope_term=est, energies=Vv, slopes=S, slope_bound=Bs,
               lipschitz_grad=L)
    return out


_SPEED_FORMULA = "1 + ρ_k, ρ_k = (d+2)ε(1 + (‖u_k‖+‖u_{k+1}‖+|t_k|+|t_{k+1}|)/h_k)"
_DEFECT_FORMULA = ("2h·osc_k(∇V) + (2h/3)|f_k+f_{k+1}−2f_mid| + 8(d+1)ε(|V_k|+|V_{k+1}|+h(S_k+S_{k+1})) "
                   "+ h(L̂(d+2)εX + √(2L̂ε_V)) [+ h((B_k+J_k+B_{k+1}+J_{k+1})/2 + L̂δ/2) where |∂V| is estimated]")


def _worst_index(excess):
    idx = np.unravel_index(int(np.nanargmax(excess)), excess.shape)
    return tuple(int(i) for i in idx)


def _override(value, name):
    return None if value is None else real(value, name, low=0.0)


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------
def check_curve_lipschitz(eta, norm=None, *, speed_tol: float | None = None, _seg=None) -> CheckReport:
    """Every curve of η is 1-Lipschitz: ‖u_c(t_{k+1}) − u_c(t_k)‖ ≤ h_k (1 + ρ_k) on every segment.

    Exact for piecewise-linear curves (their Lipschitz constant is the steepest segment), and it
    implies W∞((e_s)_#η, (e_t)_#η) ≤ max_c ‖u_c(t) − u_c(s)‖ ≤ |t − s| for every pair s, t — no
    transport problem is solved.

    Parameters
    ----------
    eta : CurveMeasure or FlowResult
    norm : norm specification (default: η's)
    speed_tol : float, optional
        Replace the derived 1 + ρ_k by 1 + ``speed_tol``.
    """
    eta = as_curve_measure(eta)
    seg = segment_analysis(eta, None, norm) if _seg is None else _seg
    speed_tol = _override(speed_tol, "speed_tol")
    tol = seg["speed_tol"] if speed_tol is None else np.full_like(seg["speed"], 1.0 + speed_tol)
    bad = seg["speed"] > tol
    c, k = _worst_index(seg["speed"] - tol)
    t = eta.times
    return CheckReport(
        "curve_lipschitz", not bool(bad.any()), float(seg["speed"][c, k]), float(tol[c, k]), "<=",
        _SPEED_FORMULA if speed_tol is None else f"1 + {speed_tol:g} (given)",
        worst={"curve": c, "segment": [float(t[k]), float(t[k + 1])]},
        details={"max_speed": float(seg["speed"].max()), "n_curves_failing": int(bad.any(axis=1).sum()),
                 "mass_failing": float(eta.weights[bad.any(axis=1)].sum()), "norm": norm_name(seg["p"])},
    )


def check_snapshot_lipschitz(measures, times=None, norm="linf", *, speed_tol: float | None = None) -> CheckReport:
    """W∞(μ_{t_k}, μ_{t_{k+1}}) ≤ h_k (1 + ρ_k) for snapshots that do not come from η (exact W∞).

    Consecutive pairs imply all pairs (triangle inequality for W∞), so K transport problems
    certify W∞(μ_s, μ_t) ≤ |t − s| on the whole grid.
    """
    snaps, t = _snapshots(measures, times)
    p = parse_norm(norm, name="norm")
    if len(snaps) < 2:
        raise ValueError("need at least two snapshot times")
    speed_tol = _override(speed_tol, "speed_tol")
    h = np.diff(t)
    dist = np.array([winf(a.support(), b.support(), _norm_arg(p)) for a, b in zip(snaps[:-1], snaps[1:])])
    scale = np.array([max(float(_norm(mu.points, p).max()), 0.0) for mu in snaps])
    d = snaps[0].dim
    rho = (d + 2) * EPS * (1.0 + (scale[1:] + scale[:-1] + np.abs(t[1:]) + np.abs(t[:-1])) / h)
    tol = 1.0 + (rho if speed_tol is None else speed_tol)
    ratio = dist / h
    k = int(np.argmax(ratio - tol))
    return CheckReport(
        "snapshot_lipschitz", bool(np.all(ratio <= tol)), float(ratio[k]), float(tol[k]) if np.ndim(tol) else tol,
        "<=", _SPEED_FORMULA.replace("‖u", "max‖x") if speed_tol is None else f"1 + {speed_tol:g} (given)",
        worst={"pair": [float(t[k]), float(t[k + 1])], "winf": float(dist[k])},
        details={"n_transport_problems": int(len(dist)), "norm": norm_name(p)},
    )


def check_marginals(eta, measures, times=None, norm=None, *, marginal_tol: float | None = None) -> CheckReport:
    """max_k W∞((e_{t_k})_#η, μ_{t_k}) for snapshots μ that were not built from η (exact W∞).

    Tolerance (derived, ``docs/verification.md`` §4): (d + 2) ε X, X the largest ‖x‖ of the
    atoms: at grid times of η the marginal's atoms are stored copies, between grid times a
    linear blend adds ≤ 2ε|x| per coordinate.
    """
    eta = as_curve_measure(eta)
    snaps, t = _snapshots(measures, times)
    p = eta.norm.p if norm is None else parse_norm(norm, name="norm")
    if t[0] < eta.times[0] or t[-1] > eta.T:
        raise ValueError(f"times must lie in eta's interval [{eta.times[0]:g}, {eta.T:g}]")
    for k, mu in enumerate(snaps):
        if mu.dim != eta.dim:
            raise ValueError(f"measures[{k}] has dimension {mu.dim}, eta has {eta.dim}")
    marginal_tol = _override(marginal_tol, "marginal_tol")
    if marginal_tol is None:
        X = max(float(_norm(eta.curves, p).max()), max(float(_norm(mu.points, p).max()) for mu in snaps))
        tol, formula = (eta.dim + 2) * EPS * X, "(d+2)ε·max‖x‖"
    else:
        tol, formula = marginal_tol, f"{marginal_tol:g} (given)"
    dist = np.array([winf(eta.marginal(s, merge=True), mu.support(), _norm_arg(p)) for s, mu in zip(t, snaps)])
    k = int(np.argmax(dist))
    return CheckReport(
        "marginals", bool(dist[k] <= tol), float(dist[k]), float(tol), "<=", formula,
        worst={"time": float(t[k])}, details={"winf": dist, "times": t, "norm": norm_name(p)},
    )


def _defect_report(name, eta, seg, defect_tol):
    D = seg["defect"]
    tol = seg["defect_tol"] if defect_tol is None else np.full_like(D, defect_tol)
    return D, tol


def check_energy_dissipation(eta, potential, norm=None, *, times=None, defect_tol: float | None = None,
                             _seg=None) -> CheckReport:
    """Energy dissipation of the curve of measures t ↦ (e_t)_#η, segment by segment.

    𝓓_k = 𝓔(μ_{t_{k+1}}) − 𝓔(μ_{t_k}) + h (|∂𝓔|(μ_{t_k}) + |∂𝓔|(μ_{t_{k+1}}))/2 with 𝓔 = ∫V dμ and
    |∂𝓔|(μ) = ∫|∂V| dμ; since μ_t = (e_t)_#η this is Σ_c ω_c D_{c,k}, and its tolerance is
    Σ_c ω_c tol_{c,k} (:func:`segment_analysis`). Per-segment bounds imply the inequality
    𝓔(μ_t) + ∫_s^t |∂𝓔| ≤ 𝓔(μ_s) + Σ tol on every pair s ≤ t; the worst pair is reported.

    Parameters
    ----------
    eta : CurveMeasure, FlowResult, or a sequence of snapshots (glued with ``times``)
    potential : Potential
    defect_tol : float, optional
        Replace the derived per-curve segment tolerance by this constant.
    """
    eta = as_curve_measure(eta, times, norm)
    seg = segment_analysis(eta, potential, norm) if _seg is None else _seg
    defect_tol = _override(defect_tol, "defect_tol")
    D, tol = _defect_report("energy_dissipation", eta, seg, defect_tol)
    w = eta.weights
    Dm, Tm = w @ D, w @ tol
    k = int(np.argmax(Dm - Tm))
    t = eta.times
    F = np.r_[0.0, np.cumsum(Dm)]
    best, j, kk = worst_increase(F)
    return CheckReport(
        "energy_dissipation", bool(np.all(Dm <= Tm)), float(Dm[k]), float(Tm[k]), "<=",
        ("Σ_c ω_c (" + _DEFECT_FORMULA + ")") if defect_tol is None else f"{defect_tol:g} (given)",
        worst={"segment": [float(t[k]), float(t[k + 1])]},
        details={"worst_pair_defect": float(best), "worst_pair": [float(t[j]), float(t[kk])],
                 "total_defect": float(F[-1]), "total_tolerance": float(Tm.sum()),
                 "norm": norm_name(seg["p"])},
    )


def check_maximal_slope_mass(eta, potential, norm=None, *, times=None, speed_tol: float | None = None,
                             defect_tol: float | None = None, mass_tol: float | None = None,
                             _seg=None) -> CheckReport:
    """η-mass of the curves of maximal slope: every segment 1-Lipschitz and within its defect bound.

    A curve counts when, on every segment, speed ≤ 1 + ρ and D ≤ tol (:func:`segment_analysis`);
    the check passes when the counted mass is ≥ 1 − ``mass_tol`` (default m ε, the round-off of
    summing m weights: every curve must count).
    """
    eta = as_curve_measure(eta, times, norm)
    seg = segment_analysis(eta, potential, norm) if _seg is None else _seg
    speed_tol = _override(speed_tol, "speed_tol")
    defect_tol = _override(defect_tol, "defect_tol")
    mass_tol = _override(mass_tol, "mass_tol")
    stol = seg["speed_tol"] if speed_tol is None else 1.0 + speed_tol
    D, dtol = _defect_report("maximal_slope_mass", eta, seg, defect_tol)
    bad_seg = (seg["speed"] > stol) | (D > dtol)
    ok = ~bad_seg.any(axis=1)
    mass = float(eta.weights[ok].sum())
    mtol = eta.n_curves * EPS if mass_tol is None else mass_tol
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.maximum(D - dtol, 0.0) / np.maximum(np.abs(dtol), 1e-300)
    c, k = _worst_index(np.where(bad_seg, excess + 1.0, D / np.maximum(np.abs(dtol), 1e-300)))
    t = eta.times
    return CheckReport(
        "maximal_slope_mass", bool(mass >= 1.0 - mtol), mass, 1.0 - mtol, ">=",
        "1 − mε (every curve)" if mass_tol is None else f"1 − {mass_tol:g} (given)",
        worst={"curve": c, "segment": [float(t[k]), float(t[k + 1])], "defect": float(D[c, k]),
               "defect_tol": float(dtol[c, k]), "speed": float(seg["speed"][c, k])},
        details={"n_curves": int(eta.n_curves), "n_failing": int((~ok).sum()),
                 "segment_rule": _DEFECT_FORMULA if defect_tol is None else f"{defect_tol:g} (given)",
                 "max_defect_over_tolerance": float(np.max(D / np.maximum(dtol, 1e-300))),
                 "norm": norm_name(seg["p"])},
    )


def verify_characterization(eta, measures=None, times=None, potential=None, norm=None,
                            **tolerances) -> CheckReport:
    """Check that η characterizes an ∞-curve of maximal slope (and represents ``measures``).

    Runs :func:`check_curve_lipschitz`; with ``measures`` (snapshots not built from η)
    :func:`check_marginals` and :func:`check_snapshot_lipschitz` (exact W∞, K + 1 and K
    transport problems); with ``potential`` :func:`check_energy_dissipation` and
    :func:`check_maximal_slope_mass`. Called without tolerance arguments every tolerance is
    the derived default (``docs/verification.md``); the report states each formula.

    Parameters
    ----------
    eta : CurveMeasure or FlowResult (superposed)
    measures : sequence of measures (with ``times``) or a FlowResult, optional
    times : array (K+1,), optional
    potential : Potential, optional
    norm : norm specification, optional (default: η's)
    **tolerances
        ``speed_tol``, ``marginal_tol``, ``defect_tol``, ``mass_tol`` replace the derived ones.

    Returns
    -------
    CheckReport
        ``passed`` when every sub-check passed; ``checks`` holds them.
    """
    unknown = set(tolerances) - set(TOLERANCE_NAMES)
    if unknown:
        raise TypeError(f"unknown tolerance argument(s) {sorted(unknown)}; expected among {list(TOLERANCE_NAMES)}")
    eta = as_curve_measure(eta)
    p = eta.norm.p if norm is None else parse_norm(norm, name="norm")
    if potential is not None:
        _check_potential(potential)
    seg = segment_analysis(eta, potential, p)
    checks = [check_curve_lipschitz(eta, p, speed_tol=tolerances.get("speed_tol"), _seg=seg)]
    if measures is not None:
        checks.append(check_marginals(eta, measures, times, p, marginal_tol=tolerances.get("marginal_tol")))
        checks.append(check_snapshot_lipschitz(measures, times, p, speed_tol=tolerances.get("speed_tol")))
    if potential is not None:
        checks.append(check_energy_dissipation(eta, potential, p, defect_tol=tolerances.get("defect_tol"), _seg=seg))
        checks.append(check_maximal_slope_mass(eta, potential, p, speed_tol=tolerances.get("speed_tol"),
                                               defect_tol=tolerances.get("defect_tol"),
                                               mass_tol=tolerances.get("mass_tol"), _seg=seg))
    n_ok = sum(bool(c.passed) for c in checks)
    return CheckReport("characterization", n_ok == len(checks), float(n_ok), float(len(checks)), ">=",
                       "every sub-check passes", worst={"failed": [c.name for c in checks if not c.passed]},
                       details={"n_curves": eta.n_curves, "n_times": int(eta.times.size), "norm": norm_name(p)},
                       checks=checks)


def check_flow(result, potential=None) -> CheckReport:
    """:func:`verify_characterization` of a computed flow (η = ``superpose(result)``).

    The dissipation checks run for the unconstrained flow, i.e. without a budget or while the
    budget cannot be active (T ≤ budget: ‖u(t) − x₀‖ ≤ t); with an active budget the flow is
    the one of V + the ball's indicator and only the Lipschitz check applies.
    """
    if not _is_flow_result(result):
        raise TypeError(f"result must be a FlowResult, got {type(result).__name__}")
    V = result.potential if potential is None else potential
    budget = getattr(result, "budget", None)
    active = budget is not None and float(result.T) > float(budget)
    return verify_characterization(result, potential=None if active else V)
