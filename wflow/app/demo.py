"""The ``wflow demo`` pipeline: simulate, check, plot, report.

:func:`run_demo` attacks the shipped two-moons classifier's test data as an ∞-flow of a particle
measure, checks the theorems on it with measured numbers, draws the figures and an animation
(:mod:`wflow.plotting`) and writes ``report.json`` and ``report.md``. All files go through
:class:`wflow.io.StagedOutput`, so an error leaves nothing half-written.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..adversarial.data import load_two_moons
from ..adversarial.distributional import distributional_attack, worst_case_loss
from ..adversarial.losses import make_loss
from ..adversarial.mlp import load_model
from ..flow import solve_flow
from ..io import StagedOutput, check_output_dir
from ..measures import ParticleMeasure
from ..plotting import (
    animate_measure,
    plot_attack_curves,
    plot_curve_measure,
    plot_energy_slope,
    plot_landscape,
    plot_snapshots,
    save_animation,
)
from ..verify import check_flow, check_held_out, measure_attack_gap
from .figures import ProbabilityField, save_staged_figure
from .reports import write_reports

__all__ = ["run_demo", "DEMO_FILES"]

#: files every demo run writes (figures, animation, reports)
DEMO_FILES = (
    "attack_landscape.png",
    "single_point.png",
    "snapshots.png",
    "attack_curves.png",
    "energy.png",
    "representing_measure.png",
    "animation.gif",
    "report.json",
    "report.md",
)


def run_demo(out="wflow-out", *, quick: bool = False, progress: bool = False, seed: int = 0,
             overwrite: bool = False) -> dict:
    """Run the demo and write its files into ``out``; returns the report dict.

    The demo: the shipped two-moons GELU classifier; its test data (true labels) as a uniform
    particle measure μ₀, attacked by the W∞ ∞-flow of 𝓔(ν) = −∫ℓ dν up to t = ε = 0.2 (ℓ∞,
    Euler = IFGSM with τ = ε/100, ``--quick``: ε/40); the representing measure η rebuilt from
    shuffled snapshots; and the checks, each with its measured figure and tolerance:

    - the rows of :func:`wflow.verify.check_flow` on the particle curves (1-Lipschitz curves,
      energy dissipation, maximal-slope mass), each with its derived tolerance;
    - ``held_out``: η glued from every other shuffled snapshot against the held-out snapshots
      (exact W∞, :func:`wflow.verify.check_held_out`);
    - ``attack_gap``: (worst case − attacked loss)/worst case, a measurement of the dynamics
      (no pass/fail), the worst case Σ_i sup_{B_ε(x_i)} ℓ by grid search.

    Parameters
    ----------
    out : path
        Output directory, written all-or-nothing; an existing one is replaced as a whole if it
        holds a previous wflow run (or is empty), else refused unless ``overwrite``.
    quick : bool
        Fewer points, larger steps, coarser grid search (well under 15 s).
    progress : bool
        Show tqdm progress bars.
    seed : int
        Seed of the snapshot shuffling.
    overwrite : bool
        Replace an occupied ``out`` that does not hold a previous wflow run.

    Raises
    ------
    wflow.io.OutputError
        ``out`` cannot receive the outputs (checked before the simulation).
    """
    seed = _seed(seed)
    check_output_dir(out, overwrite=overwrite)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    n = 200 if quick else 500
    eps = 0.2
    steps = 40 if quick else 100
    tau = eps / steps
    grid, refine = (21, 3) if quick else (33, 4)
    stages = tqdm(total=5, desc="demo", disable=not progress, leave=False)

    model = load_model("two_moons_gelu")
    data = load_two_moons()
    X, y = data["X_test"][:n], data["y_test"][:n]
    mu0 = ParticleMeasure(X)

    t0 = time.perf_counter()
    att = distributional_attack(model, mu0, y, eps=eps, tau=tau, n_winf=6, progress=progress)
    res = att.flow
    timings["attack_flow"] = time.perf_counter() - t0
    stages.update(1)

    t0 = time.perf_counter()
    worst = worst_case_loss(model, mu0, y, eps, grid=grid, refine=refine)
    timings["worst_case_grid_search"] = time.perf_counter() - t0
    stages.update(1)

    # the representing measure from shuffled, unlabelled snapshots (exact W∞ couplings)
    t0 = time.perf_counter()
    ks = np.unique(np.linspace(0, len(res.times) - 1, 17).round().astype(int))  # K = 16: 3 held-out levels
    snap_times = res.times[ks]
    rng = np.random.default_rng(seed)
    snaps = [ParticleMeasure(res.positions[k][perm], res.weights[perm])
             for k in ks for perm in [rng.permutation(n)]]
    # the flow's curves (η = superpose(res)): Lipschitz, dissipation and maximal-slope mass with
    # derived tolerances; then η glued from every other shuffled snapshot, measured on the
    # held-out ones (exact W∞); the attack's gap to the worst case is a measurement
    checks = list(check_flow(res).checks)
    held = check_held_out(snaps, snap_times, "linf")
    checks.append(held)
    eta = held.details.pop("_eta")
    timings["checks_and_superposition"] = time.perf_counter() - t0
    stages.update(1)

    attacked = float(att.expected_loss[-1])
    wc = worst.mean
    checks.append(measure_attack_gap(attacked, wc, grid=grid, refine=refine))

    # a single point as in the paper's figures: x₀ = (0.45, 0.3), ε = 0.25, τ = 0.025
    x_single = np.array([0.45, 0.3])
    y_single = float(model.predict(x_single[None])[0])
    V_single = -make_loss(model, y_single, "mse")
    single = [solve_flow(V_single, x_single, T=1.0, tau=0.025, budget=0.25),
              solve_flow(V_single, x_single, T=1.0, tau=0.025, budget=0.25, scheme="minmove")]
    single_labels = ["IFGSM, τ = 0.025", "minimizing movement, τ = 0.025"]

    report = {
        "wflow_version": __version__,
        "command": "demo",
        "quick": quick,
        "problem": {
            "description": (
                "distributional adversarial attack on the two-moons GELU classifier as a W∞ ∞-flow "
                "of the test-data measure (ℓ∞, Euler = IFGSM), run to t = ε"
            ),
            "model": "two_moons_gelu",
            "loss": "mse",
            "n_points": n,
            "eps": eps,
            "tau": tau,
            "norm": "linf",
            "scheme": "euler",
            "exact_winf": True,
            "worst_case_grid": f"{grid}x{grid}, {refine} refinements",
            "seed": seed,
        },
        "measured": {
            "clean_loss": float(att.expected_loss[0]),
            "attacked_loss": attacked,
            "worst_case_loss": wc,
            "clean_accuracy": float(att.accuracy[0]),
            "attacked_accuracy": float(att.accuracy[-1]),
            "max_displacement": float(att.displacement[-1]),
            "winf_mu0_mu_eps": float(att.winf[-1]) if len(att.winf) else None,
            "representing_measure_curves": int(eta.n_curves),
        },
        "checks": [c.to_dict() for c in checks],
        "all_passed": all(c.passed is not False for c in checks),
        "files": list(DEMO_FILES),
    }

    dpi = 70 if quick else 90
    field = ProbabilityField(model)
    with StagedOutput(out, overwrite=overwrite, info={"command": "demo", "wflow_version": __version__}) as st:
        t0 = time.perf_counter()
        sub = np.linspace(0, n - 1, 40 if quick else 80).round().astype(int)
        c0, c1 = sub[y[sub] == 0], sub[y[sub] == 1]
        save_staged_figure(st, "attack_landscape.png", plot_landscape(
            field, [res.positions[:, c0], res.positions[:, c1]], labels=["class 0", "class 1"],
            xlim=(-1.6, 2.6), ylim=(-1.2, 1.7), cmap="coolwarm", levels=20, colorbar_label="P(class 1 | x)", resolution=100 if quick else 160,
            title=f"attack flow to ε = {eps:g} on P(class 1 | x)"), dpi)
        save_staged_figure(st, "single_point.png", plot_landscape(
            V_single, single, budget=0.25, center=x_single, tau_boxes=[True] + [False] * (len(single) - 1),
            labels=single_labels,
            xlim=(0.1, 0.8), ylim=(-0.05, 0.65), resolution=80 if quick else 120,
            title="x₀ = (0.45, 0.3), ε = 0.25: V = −loss"), dpi)
        save_staged_figure(st, "snapshots.png", plot_snapshots(res, potential=field, n_panels=4), dpi)
        save_staged_figure(st, "attack_curves.png", plot_attack_curves(
            att.times, att.expected_loss, att.accuracy, worst_case=wc, eps=eps,
            winf_times=att.winf_times, winf=att.winf), dpi)
        save_staged_figure(st, "energy.png", plot_energy_slope(res), dpi)
        fig = plot_curve_measure(eta, potential=field, max_curves=600 if quick else 2000,
                                 title=f"η from {len(snaps)} shuffled snapshots: {eta.n_curves} curves")
        save_staged_figure(st, "representing_measure.png", fig, dpi)
        anim = animate_measure(res, potential=field, colors=y, max_frames=16 if quick else 30,
                               xlim=(-1.6, 2.6), ylim=(-1.2, 1.7))
        save_animation(anim, st.path("animation.gif"), fps=6, dpi=50 if quick else 60)
        timings["figures"] = time.perf_counter() - t0
        stages.update(2)
        stages.close()
        write_reports(st, report, timings, t_start)
    return report


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return int(seed)
