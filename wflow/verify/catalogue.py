"""The case catalogue behind ``wflow verify``: correct cases that must pass, mutants that must fail.

:func:`run_catalogue` returns one :class:`~wflow.verify.report.CheckReport` whose sub-reports are
the cases; its ``passed`` is True exactly when every correct case passes and every mutant is
caught, and ``details["score"]`` is "caught/total" for the mutants. Cases and their reasons:
``docs/verification.md`` §6.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..adversarial.data import load_two_moons
from ..adversarial.mlp import load_model
from ..flow import solve_flow
from ..measures import ParticleMeasure
from ..potentials import GaussianMixture, Quadratic
from ..superposition import CurveMeasure, superpose, superpose_snapshots
from .adversarial import check_minmove_step_is_worst_case
from .checks import verify_characterization
from .mutants import MUTANTS, frozen_coordinate, random_walk, slow_descent
from .refinement import check_convergence, check_dissipation_refinement, check_held_out
from .report import CheckReport

__all__ = ["run_catalogue", "correct_cases", "mutant_cases"]

_SEED = 20240605


def _setting(quick: bool):
    rng = np.random.default_rng(_SEED)
    n = 24 if quick else 40
    x0 = rng.uniform(-0.8, 0.8, (n, 2))
    w = rng.dirichlet(np.ones(n))
    return x0, w


def _shuffled(res, seed):
    rng = np.random.default_rng(seed)
    snaps = []
    for s in res.times:
        mu = res.measure(s)
        perm = rng.permutation(mu.n)
        snaps.append(ParticleMeasure(mu.points[perm], mu.weights[perm]))
    return snaps


def correct_cases(quick: bool = False):
    """(label, thunk) pairs; each thunk returns the characterization report of a correct flow."""
    x0, w = _setting(quick)
    mu0 = ParticleMeasure(x0, w)
    pots = {"quadratic": Quadratic.separable_from([1.0, 3.0]), "gaussian_mixture": GaussianMixture.default()}
    taus = (0.05, 0.01) if quick else (0.05, 0.01, 0.002)
    cases = []
    for pname, V in pots.items():
        for norm in ("linf", "l2", "l1"):
            for scheme in ("euler", "minmove"):
                for tau in taus:
                    if scheme == "minmove" and tau < 0.01:
                        continue

                    def thunk(V=V, norm=norm, scheme=scheme, tau=tau):
                        res = solve_flow(V, mu0, T=0.6, tau=tau, norm=norm, scheme=scheme)
                        return verify_characterization(res, potential=V)

                    cases.append((f"{scheme}[{pname},{norm},tau={tau:g}]", thunk))

    def from_snapshots(V=pots["gaussian_mixture"]):
        # η glued from shuffled (unlabelled) snapshots of every stored time, checked against them.
        # Minimizing movement (no chattering): glued from a chattering Euler flow, W∞-optimal
        # couplings may swap particles inside one chattering band, and such glued curves are not
        # solutions at the scale τ (the check says so: docs/verification.md §5)
        res = solve_flow(V, x0, T=0.3, tau=0.02, scheme="minmove")
        snaps = _shuffled(res, 1)
        eta = superpose_snapshots(snaps, res.times)
        return verify_characterization(eta, snaps, res.times, potential=V)

    cases.append(("snapshots[minmove,gaussian_mixture,linf,tau=0.02,shuffled]", from_snapshots))
    cases += _limit_cases(quick, mutant=False)
    return cases


def _limit_cases(quick: bool, mutant: bool):
    """τ-refinement, held-out and adversarial theorem rows (correct, or their mutants)."""

    x0, _ = _setting(quick)
    Q, GM = Quadratic.separable_from([1.0, 3.0]), GaussianMixture.default()
    taus = [0.04, 0.02, 0.01, 0.005]
    stiff = Quadratic.separable_from([400.0, 1.0])
    xs = np.random.default_rng(_SEED + 1).uniform(-1.0, 1.0, (50, 2))
    stiff_taus = [0.01, 0.005, 0.0025, 0.00125, 0.000625]

    def held(make):
        c = make(GM, x0, 0.64, 0.01)
        ts = c.times[::4]
        return check_held_out([c.marginal(s) for s in ts], ts, "linf", keep_eta=False)

    def adversarial(step_tau=None):
        data = load_two_moons()
        n = 40 if quick else 100
        return check_minmove_step_is_worst_case(load_model("two_moons_gelu"), data["X_test"][:n],
                                                data["y_test"][:n], 0.1, grid=33, refine=3, step_tau=step_tau)

    if not mutant:
        slow = [] if quick else [  # the global inner solver at τ/16 costs ~15 s
            ("convergence[euler,gaussian_mixture,l2,minmove global]",
             lambda: check_convergence(GM, x0[:3], 0.3, taus[:3], norm="l2", reference="minmove_global"))]
        return slow + [
            ("convergence[euler,quadratic,linf,closed form]", lambda: check_convergence(Q, x0, 0.8, taus)),
            # ℓ2: solutions are unique (in ℓ∞ and ℓ1 they need not be, and the two schemes may
            # select different ones: docs/verification.md §5)
            ("convergence[minmove,quadratic,l2,euler at τ/8]",
             lambda: check_convergence(Q, x0[:8], 0.6, taus[:3], norm="l2", scheme="minmove",
                                       reference="other_scheme")),
            ("dissipation_refinement[euler,stiff quadratic,linf]",
             lambda: check_dissipation_refinement(stiff, xs, 0.5, stiff_taus)),
            ("held_out[gaussian_mixture,linf]", lambda: held(lambda *a: superpose(solve_flow(*a)))),
            ("minmove_step_is_worst_case[two_moons_gelu,eps=0.1]", adversarial),
        ]
    return [
        ("convergence:ascent_scheme",
         lambda: check_convergence(Q, x0, 0.8, taus, flows=lambda tau: solve_flow(-1.0 * Q, x0, 0.8, tau))),
        ("convergence:slow_descent",
         lambda: check_convergence(Q, x0, 0.8, taus, flows=lambda tau: slow_descent(Q, x0, 0.8, tau))),
        ("dissipation_refinement:frozen_coordinate_stiff",
         lambda: check_dissipation_refinement(stiff, xs, 0.5, stiff_taus,
                                              flows=lambda tau: frozen_coordinate(stiff, xs, 0.5, tau, coordinate=1))),
        ("held_out:random_walk", lambda: held(random_walk)),
        ("minmove_step_is_worst_case:step_tau=eps/2", lambda: adversarial(0.05)),
    ]


def mutant_cases(quick: bool = False):
    """(label, thunk) pairs; each thunk returns the characterization report of a mutant."""
    x0, w = _setting(quick)
    V = GaussianMixture.default()
    T, tau = 0.6, 0.01
    cases = []
    for name, (make, against_snapshots) in MUTANTS.items():
        def thunk(make=make, against=against_snapshots, name=name):
            eta = make(V, x0, T, tau, "linf", weights=w)
            if name != "permuted_weights":
                eta = CurveMeasure(eta.curves, w, eta.times, eta.norm)
            if not against:
                return verify_characterization(eta, potential=V)
            good = solve_flow(V, ParticleMeasure(x0, w), T, tau)
            # two snapshot times (T/2, T): exact W∞ between differently weighted measures on the
            # same atoms (t = 0 for permuted weights) takes ~15 s in wflow.transport today
            keep = [len(good.times) // 2, len(good.times) - 1]
            ts = good.times[keep]
            snaps = [mu for k, mu in enumerate(_shuffled(good, 2)) if k in keep]
            return verify_characterization(eta, snaps, ts, potential=V)

        cases.append((name, thunk))
    cases += _limit_cases(quick, mutant=True)
    return cases


def run_catalogue(quick: bool = False, *, progress: bool = False) -> CheckReport:
    """Run every correct case and every mutant with default tolerances.

    Parameters
    ----------
    quick : bool
        Fewer particles and step sizes.
    progress : bool
        A tqdm bar over the cases.

    Returns
    -------
    CheckReport
        ``checks``: one report per case (a correct case passes when its characterization
        passes; a mutant passes — is caught — when its characterization fails).
        ``details``: ``score`` ("caught/total"), ``caught``, ``n_mutants``, ``n_correct``,
        ``correct_passed``, ``seconds``.
    """
    t0 = time.perf_counter()
    good, bad = correct_cases(quick), mutant_cases(quick)
    rows = []
    with tqdm(total=len(good) + len(bad), desc="verify", disable=not progress, leave=False) as bar:
        for label, thunk in good:
            r = thunk()
            rows.append(CheckReport(f"correct:{label}", bool(r.passed), r.measured, r.tolerance, ">=",
                                    "every sub-check passes", worst=r.worst, checks=r.checks))
            bar.update(1)
        for label, thunk in bad:
            r = thunk()
            caught = not r.passed
            by = r.failed if r.checks else ([] if r.passed else [r.name])
            rows.append(CheckReport(f"mutant:{label}", caught, float(len(by)), 1.0, ">=",
                                    "at least one sub-check fails", worst={"caught_by": by},
                                    checks=r.checks))
            bar.update(1)
    n_caught = sum(r.passed for r in rows if r.name.startswith("mutant:"))
    n_good = sum(r.passed for r in rows if r.name.startswith("correct:"))
    return CheckReport(
        "catalogue", n_caught == len(bad) and n_good == len(good), float(n_caught + n_good),
        float(len(bad) + len(good)), ">=", "every correct case passes and every mutant is caught",
        worst={"failed": [r.name for r in rows if not r.passed]},
        details={"score": f"{n_caught}/{len(bad)}", "caught": n_caught, "n_mutants": len(bad),
                 "correct_passed": n_good, "n_correct": len(good), "quick": quick,
                 "seconds": time.perf_counter() - t0},
        checks=rows,
    )
